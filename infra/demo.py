"""The demo day: a simulated delivery day played through the whole stack (embedded broker, workers,
projection), its KPIs read back from ClickHouse, so one command shows the system end to end.

Two scenarios: ``default``, the short day (one hub, every order created at the start, played fast)
and ``continuous``, a whole operating day (two hubs, orders all day, hyperlocal pickups, changes,
re-attempts, breaks; :mod:`simulator.continuous`), scored by :mod:`simulator.scorecard`."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

from infra.settings import Settings

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 3.0
SCENARIOS = ("default", "continuous")
# Per scenario: orders, riders, simulated seconds per wall second, wall timeout. The continuous day
# measures assignment latency in event time, and the workers' wall latency (batch window, solve,
# Kafka hops: about a second) is multiplied by the speedup: at 30x a second of it is 30 s of event time.
SCENARIO_DEFAULTS: dict[str, tuple[int, int, float, float]] = {
    "default": (200, 10, 300.0, 600.0), "continuous": (1000, 48, 30.0, 3600.0)}
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
    scenario: str = "default"
    hub_policies: str | None = None  # MILESTREAM_HUB_POLICIES for this day (None: the environment's)

    @classmethod
    def of(cls, scenario: str, **given: Any) -> DemoDay:
        """A day of ``scenario`` with its defaults for what is not given (None counts as not given)."""
        if scenario not in SCENARIOS:
            raise ValueError(f"--scenario {scenario!r} is not one of {', '.join(SCENARIOS)}")
        orders, riders, speedup, timeout_s = SCENARIO_DEFAULTS[scenario]
        values = {"orders": orders, "riders": riders, "speedup": speedup, "timeout_s": timeout_s}
        values.update({k: v for k, v in given.items() if v is not None})
        day = cls(scenario=scenario, **values)
        if day.orders < 1 or day.riders < 1 or not day.speedup > 0:
            raise ValueError("--orders and --riders must be at least 1 and --speedup positive")
        return day


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
    scenario: str = "default"
    scorecard: dict[str, Any] = field(default_factory=dict)  # simulator.scorecard's figures
    run: dict[str, Any] = field(default_factory=dict)  # seed, speedup, hub policies, stalled, anomalies

    @property
    def ok(self) -> bool:
        """Nothing lost on the way to ClickHouse, and every order settled (delivered, returned to the
        hub after its last attempt, or cancelled); the continuous day also wants no dead letter."""
        k = self.kpis
        settled = k.get("settled", k["delivered"] + k["failed"] + k["cancelled"]) == k["orders_created"]
        clean = not self.dead_letters or self.scenario == "default"
        return self.events_produced == self.events_in_clickhouse and settled and clean

    def to_dict(self) -> dict[str, Any]:
        """One flat object: the scorecard's figures, ClickHouse's counts over them (the projection
        is the record), then the run's."""
        return {**self.scorecard, **{k: (float(v) if isinstance(v, float) else v) for k, v in self.kpis.items()},
                "events_produced": self.events_produced, "events_in_clickhouse": self.events_in_clickhouse,
                "dead_letters": dict(self.dead_letters), "distance_km_per_rider": dict(self.distance_km_per_rider),
                **self.run, "ok": self.ok, "elapsed_s": self.elapsed_s, "data_dir": str(self.data_dir)}


REATTEMPT_AFTER_MIN = 45.0  # the continuous day's same-day re-attempts open this long after the failure...
LAST_REATTEMPT_BEFORE_END_MIN = 150.0  # ...and none opens later than this before the last shift ends
DEPARTURE_WAVE_MIN = 20.0  # a rider with hub parcels waits at the hub up to this long for more (hub policy hold_min)


def day_policies(document: str, shifts: Sequence[Any]) -> str:
    """The hub policies for the continuous day: what the caller gave, with same-day re-attempts that
    still fit in the day (unless the caller set them): a failure too late for one goes back to the hub;
    and departure waves (``hold_min``), which a day of orders arriving one by one needs."""
    doc = json.loads(document) if document.strip() else {}
    last = max(s.shift_end for s in shifts) - timedelta(minutes=LAST_REATTEMPT_BEFORE_END_MIN)
    reattempt = doc.setdefault("default", {}).setdefault("reattempt", {})
    reattempt.setdefault("same_day_after_min", REATTEMPT_AFTER_MIN)
    doc["default"].setdefault("hold_min", DEPARTURE_WAVE_MIN)
    reattempt.setdefault("same_day_latest_min", last.astimezone(UTC).hour * 60 + last.astimezone(UTC).minute)
    return json.dumps(doc)


def run_demo(day: DemoDay, progress: Callable[[str], None] | None = None) -> DemoSummary:
    """Start the stack, play the day, wait until ClickHouse holds every produced event (or give up
    after ``DRAIN_TIMEOUT_S``), read the KPIs back and stop the stack."""
    from infra.kafka import confluent_config
    from infra.stack import Stack, count_events
    from projections import kpi
    from schemas import Codec
    from schemas import topics as tp
    from simulator.continuous import ContinuousConfig, make_continuous_day
    from simulator.runner import DayRunner
    from simulator.world import DayConfig, make_day

    started = time.monotonic()
    data_dir = day.data_dir or Path(tempfile.mkdtemp(prefix="milestream-demo-"))
    # One OTP key for the day (the environment's, or one drawn here), handed to every process it starts.
    settings = Settings.from_env(data_dir=str(data_dir)).with_otp_key()
    if day.hub_policies is not None:
        settings = dataclasses.replace(settings, hub_policies=day.hub_policies)
    policies = settings.parsed_hub_policies()  # the workers read the same (settings reach them as env)
    if day.scenario == "continuous":
        world = make_continuous_day(ContinuousConfig(seed=day.seed, orders=day.orders, riders=day.riders,
                                                     horizon_min=min(policies.default.horizon_min, 24 * 60.0)))
        settings = dataclasses.replace(settings, hub_policies=day_policies(settings.hub_policies, world.shifts))
    else:
        world = make_day(DayConfig(seed=day.seed, orders=day.orders, riders=day.riders))
    if progress:
        progress(f"milestream demo ({day.scenario}): {day.orders} orders, {len(world.shifts)} riders, {len(world.hubs)} "
                 f"hub(s), seed {day.seed}, {day.speedup:g}x time; data in {data_dir}")
    stack = Stack(settings)
    stack.start(with_sql_endpoint=False)
    s = stack.settings
    db = s.clickhouse_database
    if progress:
        progress(f"  broker {s.kafka_bootstrap}, worker pids {stack.worker_pids}, ClickHouse "
                 f"{s.display('resolved_clickhouse_dsn')}")
    try:
        runner = DayRunner(day=world, kafka=confluent_config(s), topic=s.topic, otp_key=s.otp_key, speedup=day.speedup,
                           codec=Codec(registry=s.registry_client(), fetch_on_decode=False), policies=policies)
        done = threading.Event()

        def report() -> None:
            assert progress is not None
            every = PROGRESS_EVERY_S if day.scenario == "default" else 3 * PROGRESS_EVERY_S
            while not done.wait(every):
                p = runner.progress
                w = stack.writer.stats if stack.writer else None
                progress(f"  [{time.monotonic() - started:5.0f}s] sim {runner.clock.now():%H:%M} | created "
                         f"{p.created}/{p.orders} | routes {p.routes} | delivered {p.delivered} failed {p.failed} "
                         f"settled {p.settled} | riders on shift {p.riders_on_shift}, home {p.riders_done} | "
                         f"produced {p.produced} | projected {w.events if w else 0}"
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
            outcomes = kpi.query_dicts(stack.client, kpi.order_outcomes_sql(db))[0]
            kpis.update({k: outcomes[k] for k in ("settled", "returned", "failed_open")})
            distance = kpi.query_dicts(stack.client, kpi.distance_per_rider_sql(db))
            dead = kpi.query_dicts(stack.client, kpi.dead_letters_by_kind_sql(db))
    finally:
        stack.stop()
    p = runner.progress
    run = {"scenario": day.scenario, "seed": day.seed, "speedup": day.speedup, "hubs": len(world.hubs),
           "riders": len(world.shifts), "hub_policies": settings.hub_policies or "{}", "stalled": p.stalled,
           "rider_app_anomalies": dict(p.anomalies),
           # wall seconds the simulated world stood still waiting for the pipeline (OTP notices, the ledger)
           "clock_stood_s": round(runner.clock.stood_s, 1)}
    return DemoSummary(kpis=kpis, events_produced=produced, events_in_clickhouse=in_ch,
                       dead_letters={d["error_kind"]: d["n"] for d in dead},
                       distance_km_per_rider={d["rider_id"]: float(d["km"]) for d in distance},
                       elapsed_s=round(time.monotonic() - started, 1), data_dir=data_dir, scenario=day.scenario,
                       scorecard=runner.scorecard.summary(), run=run)
