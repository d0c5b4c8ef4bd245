"""The demo day: a simulated delivery day played through the whole stack (embedded broker, worker,
projection), its KPIs read back from ClickHouse, so one command shows the system end to end."""

from __future__ import annotations

import asyncio
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.settings import Settings

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 3.0
DRAIN_TIMEOUT_S = 60.0  # the worker's last outputs and the projection after the simulator stops


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoDay:
    """What to play: the simulated day and how long to wait for it."""

    orders: int = 200
    riders: int = 10
    seed: int = 7
    speedup: float = 240.0
    timeout_s: float = 600.0
    data_dir: Path | None = None  # None: a fresh temporary directory


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoSummary:
    """What the day left in ClickHouse, next to what was produced."""

    kpis: dict[str, Any]
    distance_km_per_rider: dict[str, float]
    events_produced: int
    events_in_clickhouse: int
    dead_letters: dict[str, int]
    elapsed_s: float
    data_dir: Path

    @property
    def ok(self) -> bool:
        """Nothing lost on the way to ClickHouse, and every order settled."""
        k = self.kpis
        settled = k["delivered"] + k["failed"] + k["cancelled"] == k["orders_created"]
        return self.events_produced == self.events_in_clickhouse and settled

    def to_dict(self) -> dict[str, Any]:
        return {**{k: (float(v) if isinstance(v, float) else v) for k, v in self.kpis.items()},
                "events_produced": self.events_produced, "events_in_clickhouse": self.events_in_clickhouse,
                "dead_letters": dict(self.dead_letters), "distance_km_per_rider": dict(self.distance_km_per_rider),
                "elapsed_s": self.elapsed_s, "data_dir": str(self.data_dir)}


def run_demo(day: DemoDay, progress: Callable[[str], None] | None = None) -> DemoSummary:
    """Start the stack, play the day, wait until ClickHouse holds every produced event (or give up
    after ``DRAIN_TIMEOUT_S``), read the KPIs back and stop the stack."""
    from infra.kafka import confluent_config
    from infra.stack import Stack, count_events
    from projections import kpi
    from schemas import Codec
    from schemas import topics as tp
    from simulator.runner import DayRunner
    from simulator.world import DayConfig, make_day

    started = time.monotonic()
    data_dir = day.data_dir or Path(tempfile.mkdtemp(prefix="milestream-demo-"))
    # One OTP key for the day (the environment's, or one drawn here), handed to every process it starts.
    settings = Settings.from_env(data_dir=str(data_dir)).with_otp_key()
    if progress:
        progress(f"milestream demo: {day.orders} orders, {day.riders} riders, 1 hub, seed {day.seed}, "
                 f"{day.speedup:g}x time; data in {data_dir}")
    stack = Stack(settings)
    stack.start(with_sql_endpoint=False)
    s = stack.settings
    db = s.clickhouse_database
    if progress:
        progress(f"  broker {s.kafka_bootstrap}, worker pids {stack.worker_pids}, ClickHouse "
                 f"{s.display('resolved_clickhouse_dsn')}")
    try:
        world = make_day(DayConfig(seed=day.seed, orders=day.orders, riders=day.riders))
        runner = DayRunner(day=world, kafka=confluent_config(s), topic=s.topic, otp_key=s.otp_key, speedup=day.speedup,
                           codec=Codec(registry=s.registry_client(), fetch_on_decode=False))
        done = threading.Event()

        def report() -> None:
            assert progress is not None
            while not done.wait(PROGRESS_EVERY_S):
                p = runner.progress
                w = stack.writer.stats if stack.writer else None
                progress(f"  [{time.monotonic() - started:5.0f}s] sim {runner.clock.now():%H:%M} | routes {p.routes} | "
                         f"delivered {p.delivered} failed {p.failed} settled {p.settled}/{p.orders} | riders home "
                         f"{p.riders_done} | produced {p.produced} | projected {w.events if w else 0}"
                         + ("" if stack.worker_alive() else " | WORKER DOWN"))

        if progress:
            threading.Thread(target=report, daemon=True).start()
        try:
            asyncio.run(runner.run(timeout_s=day.timeout_s, alive=stack.worker_alive))
        finally:
            done.set()
        # Everything produced is now in Kafka; wait for the worker's last outputs and the projection.
        projected = [s.topic(t.name) for t in tp.PROJECTED]
        produced = in_ch = -1
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < deadline:
            produced = count_events(s, projected)
            with stack.lock:
                in_ch = int(stack.client.query(kpi.events_in_clickhouse_sql(db)).result_rows[0][0])
            if produced == in_ch and produced == count_events(s, projected):
                break
            time.sleep(1.0)
        with stack.lock:
            kpis = kpi.query_dicts(stack.client, kpi.order_kpis_sql(db))[0]
            distance = kpi.query_dicts(stack.client, kpi.distance_per_rider_sql(db))
            dead = kpi.query_dicts(stack.client, kpi.dead_letters_by_kind_sql(db))
    finally:
        stack.stop()
    return DemoSummary(kpis=kpis, events_produced=produced, events_in_clickhouse=in_ch,
                       dead_letters={d["error_kind"]: d["n"] for d in dead},
                       distance_km_per_rider={d["rider_id"]: float(d["km"]) for d in distance},
                       elapsed_s=round(time.monotonic() - started, 1), data_dir=data_dir)
