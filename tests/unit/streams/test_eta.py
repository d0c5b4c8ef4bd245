"""ETA bias fixes: skewed legs and services learned as ratios of sums, the fleet leg factor kept off
the leg under way, and the band calibrated per stops ahead as well as per horizon."""

from __future__ import annotations

import dataclasses
import math

import pytest
from test_eta_model import HUB, POINTS, at, planned

from solver.geo import haversine_m
from streams.domain.tracking import eta

SHARP = eta.SpeedParams(leg_weight_s=1.0, service_weight_s=1.0)  # next to no prior: the data speak


def test_a_fleet_that_detours_now_and_then_learns_the_mean_leg_not_the_median() -> None:
    # four direct legs and one detour at five times the time: an ETA summing legs needs 1.8 x
    legs = [eta.LegSample(vehicle_type="van", at_s=at(10) + k, model_s=600.0, actual_s=600.0) for k in range(4)]
    legs.append(eta.LegSample(vehicle_type="van", at_s=at(10) + 5, model_s=600.0, actual_s=3_000.0))
    model = eta.learn_legs(eta.SpeedModel(params=SHARP), legs)
    assert math.exp(model.leg_log_factor("van", at(10) + 5)) == pytest.approx(1.8, rel=1e-3)
    assert model.leg_log_factor("car", at(10)) == 0.0  # other vehicles keep their prior


def test_services_learn_their_mean_ratio_too() -> None:
    samples = [eta.ServiceSample(at_s=at(10), planned_s=100.0, actual_s=a) for a in (50.0, 100.0, 300.0)]
    model = eta.learn_services(eta.SpeedModel(params=SHARP), samples)
    assert math.exp(model.service_log_factor(at(10))) == pytest.approx(450 / 300, rel=1e-2)


def test_the_fleet_leg_factor_times_later_legs_but_not_the_leg_under_way() -> None:
    route = eta.eta_route(planned(POINTS, service_s=0), "scooter", {})
    plain = eta.SpeedModel(params=SHARP)
    slow = eta.learn_legs(plain, [eta.LegSample(vehicle_type="scooter", at_s=at(11), model_s=1_000.0,
                                                actual_s=1_500.0)])
    before = eta.route_etas(route, 0, HUB, at(11), plain)
    after = eta.route_etas(route, 0, HUB, at(11), slow)
    # under way: the rider's position already tells how far is left; detours are in the later legs
    assert after[0].model_s == pytest.approx(before[0].model_s)
    later = after[1].model_s - after[0].model_s
    assert later == pytest.approx(1.5 * (before[1].model_s - before[0].model_s), rel=1e-3)


def test_the_leg_model_time_kept_for_learning_has_no_fleet_factor_in_it() -> None:
    route = eta.eta_route(planned(POINTS), "scooter", {})
    slow = eta.learn_legs(eta.SpeedModel(params=SHARP), [eta.LegSample(vehicle_type="scooter", at_s=at(11),
                                                                       model_s=1_000.0, actual_s=2_000.0)])
    state, etas = eta.update(eta.start_route(route, at(11)), at(11), HUB, slow, eta.Calibration())
    assert state.leg_model_s == pytest.approx(etas[0].model_s)  # else the factor would feed on itself


def test_estimates_know_how_many_stops_ahead_they_are_and_calibrate_apart() -> None:
    route = eta.eta_route(planned(POINTS), "scooter", {})
    etas = eta.route_etas(route, 1, POINTS[0], at(11), eta.SpeedModel())
    assert [e.ahead for e in etas] == [0, 1, 2, 3]
    assert eta.calibration_bucket(600.0, 0) != eta.calibration_bucket(600.0, 1)
    assert eta.calibration_bucket(600.0, 8) == eta.calibration_bucket(600.0, 30)  # far stops share one
    calibration = eta.Calibration()
    late = etas[0]
    for _ in range(200):  # the stop under way keeps arriving 50 % late; the others are not seen
        calibration = eta.observe_arrival(calibration, late, late.from_s + 1.5 * late.model_s)
    b0 = eta.calibration_bucket(late.model_s, 0)
    b1 = eta.calibration_bucket(late.model_s, 1)
    assert calibration.r90[b1] == eta.Calibration().r90[b1]  # untouched
    assert calibration.r90[b0] == pytest.approx(1.5, rel=0.05)  # the band of the leg under way: its own errors
    assert calibration.r50[b0] == 1.0  # the p50 stays the model's unless recentre is asked for
    recentring = eta.Calibration(params=eta.CalibrationParams(recentre=True))
    for _ in range(200):
        recentring = eta.observe_arrival(recentring, late, late.from_s + 1.5 * late.model_s)
    assert recentring.r50[b0] == pytest.approx(1.5, rel=0.05)


def test_one_detour_does_not_slow_the_rest_of_the_route_much() -> None:
    detour = eta.Pace().with_travel(300.0, 1_500.0)  # one 5 min leg took 25 min
    slow = eta.Pace().with_travel(300.0, 420.0)  # a leg 40 % slower than typical
    assert detour.travel_log() == pytest.approx(slow.travel_log())  # both clipped at +0.3
    assert 0.0 < detour.travel_log() < 0.05
    assert eta.Pace().with_service(100.0, 50.0).service_log() < 0.0


def leg(rider: str, vehicle: str, ratio: float, k: int) -> eta.LegSample:
    return eta.LegSample(vehicle_type=vehicle, at_s=at(10) + k, model_s=300.0, actual_s=300.0 * ratio, rider_id=rider)


def test_a_rider_factor_is_the_riders_median_leg_against_the_fleets_not_their_detours() -> None:
    fleet = [leg(f"r{k % 5}", "car", 1.0, k) for k in range(200)]
    fast = [leg("fast", "car", 0.7, 300 + k) for k in range(40)]  # 30 % quicker on every leg
    unlucky = [leg("unlucky", "car", 4.0 if k % 4 == 0 else 1.0, 400 + k) for k in range(40)]  # many detours
    model = eta.learn_legs(eta.SpeedModel(), fleet + fast + unlucky)
    assert math.exp(model.rider_log["fast"]) == pytest.approx(0.7 * 40 / 60 + 1 * 20 / 60, abs=0.04)  # shrunk
    assert abs(model.rider_log["unlucky"]) < 0.03
    assert abs(model.typical_log["car"]) < 0.03  # the typical leg is direct; the mean has the detours
    assert model.leg_log_factor("car", at(10) + 500) > 0.05  # what sums of legs need
    paces = dict(eta.travel_times(model, "car", at(10), ["fast", "unlucky", "r0", "nobody"]).rider_factors)
    assert paces["fast"] == round(math.exp(model.rider_log["fast"]), 3) and "nobody" not in paces  # for planners
    assert eta.travel_times(model, "car", at(10)).rider_factors == ()
    route = eta.eta_route(planned(POINTS), "car", {})
    mine = dataclasses.replace(route, rider_id="fast")
    assert eta.route_etas(mine, 0, HUB, at(11), model)[-1].model_s < eta.route_etas(route, 0, HUB, at(11), model)[-1].model_s


def test_a_leg_is_learned_against_the_planned_stop_to_stop_time_not_from_where_departure_was_seen() -> None:
    route = eta.eta_route(planned(POINTS), "scooter", {})
    slow_cell = eta.SpeedSample(vehicle_type="scooter", cell=route.stops[1].leg_cells[0], at_s=at(10), speed_mps=2.0,
                                weight_s=600.0)
    model = eta.learn_speeds(eta.SpeedModel(), [slow_cell])  # the cell model and the hour's speed now differ
    state = eta.start_route(route, at(11))
    state, _, _ = eta.arrived(state, 0, at(11) + 600, model)
    state, _ = eta.departed(state, at(11) + 720, model)
    seen_at = offset_toward(POINTS[0], POINTS[1], 150.0)  # the geofence says "left" 150 m down the road
    state, _ = eta.update(state, at(11) + 750, seen_at, model, eta.Calibration())
    assert state.leg_model_s == pytest.approx(eta.leg_seconds(model, route, 1, at(11) + 720))
    state, _, sample = eta.arrived(state, 1, at(11) + 1_000, model)
    assert sample is not None and sample.model_s == pytest.approx(eta.leg_seconds(model, route, 1, at(11) + 720))
    assert sample.rider_id == "rider-1"
    # and against what a planner said of it: great circle stop to stop at the hour's speed
    assert sample.plan_s == pytest.approx(model.plan_seconds("scooter", haversine_m(POINTS[0], POINTS[1]), at(11) + 720))
    assert sample.plan_s < 0.9 * sample.model_s


def offset_toward(a: tuple[float, float], b: tuple[float, float], metres: float) -> tuple[float, float]:
    f = metres / haversine_m(a, b)
    return a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f


def test_one_arrival_weighs_once_in_a_bucket_however_many_estimates_it_kept() -> None:
    far = [eta.StopEta("o", 12, 100.0 * k, 5_000.0, 0.0, 0.0, 9 + k % 3) for k in range(30)]  # all ahead >= 8
    b = eta.calibration_bucket(5_000.0, 9)
    assert {eta.calibration_bucket(e.model_s, e.ahead) for e in far} == {b}
    one = eta.observe_arrivals(eta.Calibration(), far, 9_000.0)
    start = sum(eta.Calibration().counts[b])
    assert sum(one.counts[b]) == pytest.approx(start * (1 - 1 / one.params.memory) + 1.0)
    each = eta.Calibration()
    for e in far:
        each = eta.observe_arrival(each, e, 9_000.0)
    assert sum(each.counts[b]) > sum(one.counts[b]) + 20  # estimate by estimate: 30 arrivals' worth
    assert one.q90[b] > eta.Calibration().q90[b]  # late: the band widens either way


def test_a_first_leg_whose_start_nobody_saw_is_timed_but_not_learned() -> None:
    # a re-plan reaches a rider half way to its first stop: the planned start is behind it, so the
    # leg's time against the whole planned leg would make the fleet look fast
    route = eta.eta_route(planned(POINTS), "scooter", {})
    model = eta.SpeedModel(params=SHARP)
    for seen, learns in ((True, True), (False, False)):
        state, etas = eta.update(eta.start_route(route, at(11), seen=seen), at(11), HUB, model, eta.Calibration())
        assert etas  # timed either way
        arrived, _, leg = eta.arrived(state, 0, at(11) + 300, model)
        assert (leg is not None) is learns
        # the next leg starts at a departure the tracker saw: learned again
        left, _ = eta.departed(dataclasses.replace(arrived, at_stop_since_s=at(11) + 300), at(11) + 400, model)
        state, _ = eta.update(left, at(11) + 400, (POINTS[0][0], POINTS[0][1]), model, eta.Calibration())
        assert eta.arrived(state, 1, at(11) + 900, model)[2] is not None
