"""``milestream bench eta``'s scoring rules and a small end-to-end day."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from benchmarks import eta as bench_eta
from schemas import events as ev
from simulator.truth import GpsNoise, GroundTruthDay, StopVisit, TrueSpeeds
from simulator.world import offset_point
from solver.travel import PROFILES
from streams.domain.tracking import eta

T0 = datetime.fromtimestamp(0, UTC)


def visit(stop_id: str, arrival: float, departure: float, *, hub: bool = False, sequence: int = 0) -> StopVisit:
    return StopVisit(rider_id="r1", route_id="route", stop_id=stop_id, is_hub=hub, sequence=sequence, lat=0.0,
                     lon=0.0, arrival_s=arrival, departure_s=departure, planned_service_s=60.0)


def seen(fence_id: str, at: float) -> bench_eta.Detection:
    return bench_eta.Detection(rider_id="r1", fence_id=fence_id, is_hub=fence_id == "hub", at_s=at)


def test_arrivals_count_each_visit_once_and_leave_out_the_shift_start() -> None:
    visits = [visit("hub", 0.0, 300.0, hub=True, sequence=-1), visit("a", 1_000.0, 1_100.0),
              visit("b", 2_000.0, 2_100.0, sequence=1), visit("hub", 3_000.0, 3_200.0, hub=True, sequence=2)]
    detections = [
        seen("hub", 10.0),  # the shift start: in neither count
        seen("a", 990.0), seen("a", 1_050.0),  # the second fire of one visit is a false one
        seen("b", 1_700.0),  # 300 s early: not this visit
        seen("hub", 3_030.0),
    ]
    score = bench_eta.score_arrivals(visits, detections)
    assert (score["detected"], score["matched"], score["true_visits"]) == (4, 2, 3)
    assert score["precision"] == pytest.approx(0.5)
    assert score["recall"] == pytest.approx(2 / 3)
    assert score["median_delay_s"] == pytest.approx(20.0)  # |-10| and 30
    assert score["median_delay_signed_s"] == pytest.approx(10.0)


def test_baseline_runs_straight_lines_via_the_stops_at_one_speed_plus_service() -> None:
    hub = (12.97, 77.59)
    stops = [offset_point(hub[0], hub[1], 1_000.0, 0.0), offset_point(hub[0], hub[1], 1_000.0, 2_000.0)]
    planned = tuple(ev.PlannedStop(order_id=f"o{i}", kind=ev.StopKind.DROP, lat=p[0], lon=p[1],
                                   planned_arrival=T0, service_time_s=120)
                    for i, p in enumerate(stops))
    route = ev.RoutePlanned(event_id="e", occurred_at=T0, rider_id="r1",
                            route_id="route", hub_id="hub", stops=planned, start=ev.GeoPoint(lat=hub[0], lon=hub[1]),
                            planned_start=T0,
                            planned_end=T0, distance_m=0.0)
    with_service, travel = bench_eta.baseline_etas(eta.eta_route(route, "car", {}), 0, hub, 100.0, speed_mps=2.0)
    assert with_service[0] == pytest.approx(100.0 + 500.0, rel=2e-3)  # 1 km at 2 m/s
    assert with_service[1] == pytest.approx(100.0 + 500.0 + 120.0 + 1_000.0, rel=2e-3)  # + service + 2 km
    assert travel[1] == pytest.approx(with_service[1] - 120.0)


def test_the_naive_baseline_is_straight_lines_at_the_profile_speed_without_service() -> None:
    # a configured speed, not fitted: the baseline, against which the target is set
    assert bench_eta.naive_speeds()["bike"] == PROFILES["bike"].speed_mps
    truth = {("r1", 0): 1_000.0, ("r1", 1): 2_000.0}
    samples = [bench_eta.Sample(rider_id="r1", index=i, at_s=0.0, p50_s=a + 100, p90_s=a + 400, shown_p50_s=math.nan,
                                baseline_s=a - 50, baseline_travel_s=a - 300, naive_s=a - 600)
               for (_, i), a in truth.items()]
    visits = [visit("a", 1_000.0, 1_100.0), visit("b", 2_000.0, 2_100.0, sequence=1)]
    score = bench_eta.score_etas(bench_eta_day(visits), samples)
    assert score["baseline_mae_s"] == pytest.approx(600.0)  # the naive one
    assert score["strong_baseline_mae_s"] == pytest.approx(50.0)
    assert score["eta_mae_s"] == pytest.approx(100.0)


def bench_eta_day(visits: list[StopVisit]) -> GroundTruthDay:
    return GroundTruthDay(seed=0, noise=GpsNoise(), speeds=TrueSpeeds(), riders=(), visits=tuple(visits),
                          drive_bys=(), pings=())


def test_a_small_day_is_scored_with_every_key_and_sane_figures() -> None:
    messages: list[str] = []
    result = bench_eta.run(seed=3, riders=2, stops=6, noise_levels=(10, 50), warmup_days=1,
                           progress=messages.append)
    for key in ("eta_mae_s", "baseline_mae_s", "eta_p90_abs_err_s", "within_5min", "band_coverage"):
        assert math.isfinite(result[key]) and result[key] >= 0
    assert set(result["arrivals"]) == {"10", "50"}  # the ETA's 30 m day is not an arrival level here
    assert result["pairs"] > 50
    assert result["eta_p90_abs_err_s"] >= result["eta_mae_s"] * 0.5
    assert result["share_between_p50_p90"] <= result["band_coverage"] == result["share_before_p90"] <= 1.0
    clean = result["arrivals"]["10"]
    assert clean["true_visits"] == 2 * (6 + 1)  # every stop and the hub at the end
    assert clean["recall"] >= 0.7 and clean["precision"] >= 0.7
    assert 0.0 <= clean["median_delay_s"] < 120.0
    assert len(messages) == 1 + 3  # one warm-up day, the measured day at 10, 30 and 50 m
    assert result["mae_ratio"] == pytest.approx(result["eta_mae_s"] / result["baseline_mae_s"])
    assert result["strong_mae_ratio"] == pytest.approx(result["eta_mae_s"] / result["strong_baseline_mae_s"])
    assert result["naive_mps"] == {name: p.speed_mps for name, p in PROFILES.items()}
    lines = bench_eta.report(result)
    assert any("MAE ratio to the naive baseline" in line and "to the strong baseline" in line for line in lines)
    assert any(line.strip().startswith("10 m") for line in lines)
