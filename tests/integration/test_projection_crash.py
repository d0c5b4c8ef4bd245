"""Killing the projection after a ClickHouse insert and before its offset commit, then
restarting it, leaves counts exact: the uncommitted batch is replayed and collapses."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from harness import Kafka, isolated_settings, new_id, now, order_created

from infra.kafka import confluent_config, ensure_topics
from infra.settings import Settings
from projections import kpi
from projections.writer import ProjectionWriter
from schemas import events as ev
from schemas import topics as tp
from solver.geo import haversine_m


class Killed(BaseException):
    """Stands for SIGKILL: nothing after the insert runs, no commit, no clean-up."""


def _writer(settings: Settings, client: Any, **kw: Any) -> ProjectionWriter:
    w = ProjectionWriter(client=client, database=settings.clickhouse_database,
                         consumer_config=confluent_config(settings, **{"group.id": f"{settings.app_id}-projections"}),
                         topics=[settings.topic(s.name) for s in tp.PROJECTED], batch_size=50, flush_s=0.2, **kw)
    w.create_tables()
    w.assign()
    return w


def _scalar(client: Any, sql: str) -> Any:
    return client.query(sql).result_rows[0][0]


def test_kill_between_insert_and_commit_then_restart_counts_exact(settings: Settings, chdb_client: Any) -> None:
    own = isolated_settings(settings, "crash")
    ensure_topics(own)
    kafka = Kafka(own)
    db = own.clickhouse_database
    t = now()
    orders = [order_created() for _ in range(20)]
    expected_ids: set[str] = set()
    for o in orders:  # a ledger as the lifecycle writes it
        steps: list[ev.Event] = [
            o,
            ev.OrderAssigned(event_id=new_id(), occurred_at=t, order_id=o.order_id, rider_id="r1", route_id="R",
                             sequence=1, planned_arrival=t),
            ev.StatusChanged(event_id=new_id(), occurred_at=t, order_id=o.order_id, from_status=ev.OrderStatus.ASSIGNED,
                             to_status=ev.OrderStatus.OUT_FOR_DELIVERY),
            ev.StatusChanged(event_id=new_id(), occurred_at=t, order_id=o.order_id,
                             from_status=ev.OrderStatus.OUT_FOR_DELIVERY, to_status=ev.OrderStatus.DELIVERED),
        ]
        for e in steps:
            kafka.produce("orders", e)
            expected_ids.add(e.event_id)
    pings = [ev.GpsPing(event_id=new_id(), occurred_at=t, rider_id="r1", device_id="d", device_time=t + timedelta(seconds=i),
                        lat=12.97 + i * 1e-4, lon=77.59) for i in range(300)]
    for p in pings:
        kafka.produce("gps", p)
        expected_ids.add(p.event_id)
    kafka.produce("gps", pings[0])  # a device re-send: same event twice on the topic

    batch_sizes: list[int] = []

    def die_on_third_insert(n: int) -> None:
        batch_sizes.append(n)
        if len(batch_sizes) == 3:
            raise Killed

    first = _writer(own, chdb_client, after_insert=die_on_third_insert)
    with pytest.raises(Killed):
        while True:
            first.step()
    first.close()  # the consumer leaves; its last batch was inserted but never committed
    assert _scalar(chdb_client, f"SELECT count() FROM {db}.events") == sum(batch_sizes)  # all three inserted
    committed = batch_sizes[0] + batch_sizes[1]
    total = len(expected_ids) + 1  # plus the re-sent ping

    second = _writer(own, chdb_client)
    stop = threading.Event()
    thread = threading.Thread(target=second.run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while second.stats.events < total - committed and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # nothing more should arrive
    stop.set()
    thread.join(10)
    second.close()

    # The restarted writer began at the last commit (after batch 2): batch 3 was projected twice.
    assert second.stats.events == total - committed
    assert _scalar(chdb_client, f"SELECT count() FROM {db}.events FINAL") == len(expected_ids)
    assert _scalar(chdb_client, f"SELECT uniqExact(event_id) FROM {db}.events") == len(expected_ids)
    assert _scalar(chdb_client, f"SELECT count() FROM {db}.gps_pings FINAL") == len(pings)
    states = chdb_client.query(f"SELECT status, attempts, count() FROM {db}.order_state FINAL GROUP BY status, attempts"
                               ).result_rows
    assert states == [("delivered", 1, len(orders))]

    # The KPI queries, run on real ClickHouse over data whose answers are known.
    kpis = kpi.query_dicts(chdb_client, kpi.order_kpis_sql(db))[0]
    assert (kpis["orders_created"], kpis["delivered"], kpis["failed"], kpis["first_attempt_success_pct"]) == (20, 20, 0, 100.0)
    assert kpis["on_time_pct"] == 100.0  # delivered at t, window ends at 23:59 of that day
    step_m = haversine_m((12.97, 77.59), (12.97 + 1e-4, 77.59))  # 11.1 m a second: beyond the 10 m default jitter
    [rider] = kpi.query_dicts(chdb_client, kpi.distance_per_rider_sql(db))
    # geoDistance approximates the WGS-84 ellipsoid (a degree of latitude here is ~110.6 km, the
    # tracker's sphere says 111.2 km): the two agree within 1%.
    assert rider["rider_id"] == "r1" and rider["km"] == pytest.approx(299 * step_m / 1000, rel=0.01)
