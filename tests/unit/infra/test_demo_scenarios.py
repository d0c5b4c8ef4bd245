"""`milestream demo --scenario`: each scenario's defaults, the flags that override them, and the
verdict of a continuous day (every order settled, nothing lost, no dead letter)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.cli import build_parser
from infra.demo import DemoDay, DemoSummary


def test_the_default_demo_keeps_its_short_fast_day() -> None:
    args = build_parser().parse_args(["demo"])
    day = DemoDay.of(args.scenario, orders=args.orders, riders=args.riders, speedup=args.speedup, timeout_s=args.timeout)
    assert (day.scenario, day.orders, day.riders, day.speedup, day.timeout_s) == ("default", 200, 10, 300.0, 600.0)


def test_the_continuous_day_defaults_to_a_thousand_orders_32_riders_at_30x() -> None:
    args = build_parser().parse_args(["demo", "--scenario", "continuous", "--json"])
    day = DemoDay.of(args.scenario, orders=args.orders, riders=args.riders, speedup=args.speedup, timeout_s=args.timeout)
    assert (day.orders, day.riders, day.speedup) == (1000, 48, 30.0) and args.json
    # a wall second of the workers' latency is at most 30 s of event time
    assert day.speedup <= 30


def test_flags_override_the_scenarios_defaults() -> None:
    args = build_parser().parse_args(["demo", "--scenario", "continuous", "--orders", "300", "--riders", "12",
                                      "--speedup", "60", "--seed", "3"])
    day = DemoDay.of(args.scenario, orders=args.orders, riders=args.riders, speedup=args.speedup, seed=args.seed)
    assert (day.orders, day.riders, day.speedup, day.seed) == (300, 12, 60.0, 3)


@pytest.mark.parametrize("bad", [{"scenario": "weekend"}, {"orders": 0}, {"speedup": 0.0}])
def test_a_day_that_cannot_be_played_is_refused_with_a_sentence(bad: dict[str, Any]) -> None:
    scenario = bad.pop("scenario", "continuous")
    with pytest.raises(ValueError):
        DemoDay.of(scenario, **bad)


def test_bench_day_takes_seeds_and_a_shorter_day() -> None:
    args = build_parser().parse_args(["bench", "day", "--seeds", "2", "--orders", "200", "--speedup", "60"])
    assert (args.seeds, args.first_seed, args.orders, args.speedup) == (2, 7, 200, 60.0)


def summary(**over: Any) -> DemoSummary:
    kpis = {"orders_created": 10, "delivered": 7, "failed": 1, "cancelled": 1, "in_progress": 0, "settled": 10,
            "returned": 1, "failed_open": 0}
    fields: dict[str, Any] = {"kpis": kpis, "distance_km_per_rider": {}, "events_produced": 5, "events_in_clickhouse": 5,
                              "dead_letters": {}, "elapsed_s": 1.0, "data_dir": Path("/tmp/d"), "scenario": "continuous",
                              "scorecard": {"assign_median_s": 12.0, "delivered": 6}, "run": {"seed": 7}}
    fields.update(over)
    return DemoSummary(**fields)


def test_a_continuous_day_is_ok_only_settled_complete_and_without_dead_letters() -> None:
    assert summary().ok
    assert not summary(dead_letters={"invalid": 1}).ok
    assert summary(dead_letters={"invalid": 1}, scenario="default").ok  # the short day never judged them
    assert not summary(kpis={**summary().kpis, "settled": 9, "failed_open": 1}).ok


def test_the_json_summary_puts_clickhouses_counts_over_the_scorecards() -> None:
    d = summary().to_dict()
    assert d["assign_median_s"] == 12.0 and d["delivered"] == 7 and d["seed"] == 7 and d["ok"] is True


def test_the_continuous_day_keeps_same_day_reattempts_inside_the_day_unless_told_otherwise() -> None:
    import json
    from datetime import UTC, datetime

    from infra.demo import day_policies
    from schemas import events as ev

    end = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)
    shifts = [ev.RiderShiftStarted(event_id="s", occurred_at=end, rider_id="r", hub_id="h",
                                   vehicle_type=ev.VehicleType.BIKE, capacity_weight_kg=1, capacity_volume_l=1,
                                   capacity_units=1, shift_start=end, shift_end=end, start=ev.GeoPoint(lat=0, lon=0))]
    doc = json.loads(day_policies("", shifts))
    assert doc["default"]["reattempt"] == {"same_day_after_min": 45.0, "same_day_latest_min": 19 * 60 + 30}
    mine = json.loads(day_policies('{"default": {"learned_speeds": false, "reattempt": {"same_day_latest_min": 600}}}',
                                   shifts))
    assert mine["default"]["learned_speeds"] is False and mine["default"]["reattempt"]["same_day_latest_min"] == 600
