"""One order, end to end through the real worker: dispatch plans it with OR-Tools, the rider
goes out, arrives (geofence from pings), hands over with the customer's OTP, and ClickHouse
shows it delivered."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from harness import Kafka, isolated_settings, new_id, order_created, shift_started

from infra.kafka import confluent_config
from infra.settings import Settings
from projections.writer import ProjectionWriter
from schemas import events as ev
from schemas import topics as tp
from streams.domain.orders import otp


def test_order_flows_from_created_to_delivered_into_clickhouse(settings: Settings, kafka: Kafka, worker: object,
                                                               chdb_client: object) -> None:
    hub = f"hub-{new_id()[:8]}"
    order = order_created(hub_id=hub)
    rider = shift_started(hub)
    kafka.produce("riders", rider)
    kafka.produce("inbox", order)

    route = kafka.wait_for("routes", lambda e: e.rider_id == rider.rider_id)[0]
    assert [s.order_id for s in route.stops] == [order.order_id]
    kafka.wait_for("orders", lambda e: isinstance(e, ev.OrderAssigned) and e.order_id == order.order_id)

    t = route.planned_start
    kafka.produce("inbox", ev.StatusChanged(event_id=new_id(), occurred_at=t, order_id=order.order_id,
                                            to_status=ev.OrderStatus.OUT_FOR_DELIVERY, rider_id=rider.rider_id))
    notice = kafka.wait_for("notifications", lambda e: isinstance(e, ev.OtpIssued) and e.order_id == order.order_id)[0]
    code = otp.open_sealed(otp.key_bytes(settings.otp_key), notice.otp_sealed).decode()
    assert len(code) == 6 and code.isdigit()

    for i in range(5):  # 40 s standing at the door
        at = t + timedelta(minutes=10, seconds=10 * i)
        kafka.produce("gps", ev.GpsPing(event_id=new_id(), occurred_at=at, rider_id=rider.rider_id, device_id="d1",
                                        device_time=at, lat=order.drop.lat, lon=order.drop.lon, accuracy_m=5.0,
                                        speed_mps=0.0))
    kafka.wait_for("orders", lambda e: isinstance(e, ev.StatusChanged) and e.order_id == order.order_id
                   and e.to_status is ev.OrderStatus.ARRIVED)
    kafka.produce("inbox", ev.PodSubmitted(event_id=new_id(), occurred_at=t + timedelta(minutes=11),
                                           order_id=order.order_id, rider_id=rider.rider_id,
                                           otp_hash=otp.hash_otp(code, notice.otp_salt)))
    kafka.wait_for("orders", lambda e: isinstance(e, ev.StatusChanged) and e.order_id == order.order_id
                   and e.to_status is ev.OrderStatus.DELIVERED)

    own = isolated_settings(settings, "flow")
    writer = ProjectionWriter(client=chdb_client, database=own.clickhouse_database,
                              consumer_config=confluent_config(settings, **{"group.id": f"{own.app_id}-proj"}),
                              topics=[settings.topic(s.name) for s in tp.PROJECTED], flush_s=0.3)
    writer.create_tables()
    writer.assign()
    stop = threading.Event()
    thread = threading.Thread(target=writer.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        row = None
        while time.monotonic() < deadline:
            with writer.lock:
                rows = chdb_client.query(  # type: ignore[attr-defined]
                    f"SELECT status, rider_id, attempts, delivered_at IS NOT NULL, arrived_at IS NOT NULL "
                    f"FROM {own.clickhouse_database}.order_state FINAL WHERE order_id = %(o)s",
                    parameters={"o": order.order_id}).result_rows
            row = rows[0] if rows else None
            if row and row[0] == "delivered":
                break
            time.sleep(0.3)
        assert row == ("delivered", rider.rider_id, 1, True, True)
        with writer.lock:
            types = dict(chdb_client.query(  # type: ignore[attr-defined]
                f"SELECT event_type, count() FROM {own.clickhouse_database}.events FINAL WHERE stream_key = %(o)s "
                f"GROUP BY event_type", parameters={"o": order.order_id}).result_rows)
        live = {k: types.pop(k) for k in ("EtaUpdated", "CustomerNotified") if k in types}
        assert types == {"OrderCreated": 1, "OrderAssigned": 1, "StatusChanged": 3, "PodSubmitted": 1,
                         "PodAccepted": 1, "OtpIssued": 1}
        assert live.get("EtaUpdated", 0) >= 1 and live.get("CustomerNotified", 0) >= 1  # tracking and notices
    finally:
        stop.set()
        thread.join(10)
        writer.close()
