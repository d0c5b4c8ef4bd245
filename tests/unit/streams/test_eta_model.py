"""ETA model: priors per vehicle and hour, speeds learned per cell and forgotten, route ETAs with
service times and waits, the p50-p90 band and its calibration, rider pace, when to emit."""

from __future__ import annotations

import dataclasses
import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from h3.api import basic_int as h3_int

from schemas import events as ev
from solver.geo import haversine_m
from solver.travel import PROFILES
from streams.domain.tracking import eta

T0 = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)  # local midnight (utc_offset_s=0)
MIDNIGHT = T0.timestamp()
HUB = (12.9716, 77.5946)


def at(hour: float) -> float:
    return MIDNIGHT + hour * 3600


def offset(north_m: float, east_m: float, origin: tuple[float, float] = HUB) -> tuple[float, float]:
    lat, lon = origin
    return lat + north_m / 111_320.0, lon + east_m / (111_320.0 * math.cos(math.radians(lat)))


def planned(points: list[tuple[float, float]], service_s: int = 120, route_id: str = "route-1") -> ev.RoutePlanned:
    stops = tuple(ev.PlannedStop(order_id=f"ord-{i + 1}", kind=ev.StopKind.DROP, lat=lat, lon=lon,
                                 planned_arrival=T0, service_time_s=service_s) for i, (lat, lon) in enumerate(points))
    return ev.RoutePlanned(event_id=f"{route_id}-planned", occurred_at=T0, rider_id="rider-1", route_id=route_id,
                           hub_id="hub-1", stops=stops, start=ev.GeoPoint(lat=HUB[0], lon=HUB[1]), planned_start=T0,
                           planned_end=T0 + timedelta(hours=2), distance_m=0.0)


POINTS = [offset(1000, 0), offset(1000, 1200), offset(2500, 1200), offset(2500, 3000), offset(4000, 3000)]


def estimate(p50_s: float, p90_s: float, from_s: float = 0.0, index: int = 0) -> eta.StopEta:
    return eta.StopEta("ord-1", index, from_s, p50_s - from_s, p50_s, p90_s)


def test_prior_speed_follows_the_vehicle_profile_and_hour() -> None:
    model = eta.SpeedModel()
    assert model.speed_mps("bike", *HUB, at(12)) == pytest.approx(4.2)
    assert model.speed_mps("car", *HUB, at(12)) == pytest.approx(7.5)
    assert model.speed_mps("car", *HUB, at(8.5)) == pytest.approx(7.5 * 0.7)  # rush hour
    assert model.speed_mps("van", *HUB, at(23)) == pytest.approx(6.5 * 1.2)  # empty night streets


def test_learning_pulls_a_cell_toward_what_riders_drove_and_forgetting_brings_it_back() -> None:
    model = eta.SpeedModel()
    cell = h3_int.latlng_to_cell(*HUB, model.params.resolution)
    slow = [eta.SpeedSample(vehicle_type="car", cell=cell, at_s=at(12) + 10 * i, speed_mps=4.0, weight_s=10.0)
            for i in range(360)]  # an hour of driving at 4 m/s where the prior says 7.5
    learned = eta.learn_speeds(model, slow)
    speed = learned.speed_mps("car", *HUB, at(12.5))
    assert 4.0 < speed < 5.0
    elsewhere = learned.speed_mps("car", *offset(8000, 8000), at(12.5))
    assert speed < elsewhere < 7.5  # noon looks slow for cars everywhere, but most of all where it was seen
    assert learned.speed_mps("car", *offset(8000, 8000), at(15)) == pytest.approx(7.5)  # nothing seen: the prior
    assert learned.speed_mps("car", *HUB, at(15)) < 7.0  # the cell is slow at other hours too, less surely
    assert learned.speed_mps("bike", *offset(8000, 8000), at(12.5)) == pytest.approx(4.2)
    assert model.speed_mps("car", *HUB, at(12.5)) == pytest.approx(7.5)  # the old model is unchanged
    forgotten = eta.refresh(learned, at(12) + 30 * 86_400)  # a month with no data there
    assert forgotten.speed_mps("car", *HUB, at(12)) == pytest.approx(7.5, rel=0.01)


def test_a_slow_neighbourhood_is_learned_as_a_whole_not_street_by_street() -> None:
    """Congestion differs by neighbourhood (~5 km2), so speeds seen in one part of it carry to the rest."""
    model = eta.SpeedModel()
    home = h3_int.latlng_to_cell(*HUB, model.params.resolution)
    streets = {h3_int.latlng_to_cell(*HUB, 8)}
    other = next(p for p in (offset(n, e) for n in range(-900, 901, 150) for e in range(-900, 901, 150))
                 if h3_int.latlng_to_cell(*p, model.params.resolution) == home
                 and h3_int.latlng_to_cell(*p, 8) not in streets)
    slow = [eta.SpeedSample(vehicle_type="car", cell=home, at_s=at(12) + 10 * i, speed_mps=4.0, weight_s=10.0)
            for i in range(360)]
    learned = eta.learn_speeds(model, slow)
    assert learned.speed_mps("car", *other, at(12.5)) == pytest.approx(learned.speed_mps("car", *HUB, at(12.5)))
    assert learned.speed_mps("car", *other, at(12.5)) < 5.0


def test_segment_sample_keeps_travel_and_drops_dwell_jumps_and_gaps() -> None:
    model = eta.SpeedModel()
    a, b = HUB, offset(70, 0)
    moving = eta.segment_sample(model, "scooter", a, 0.0, b, 10.0, accuracy_m=8.0)
    assert moving is not None and moving.speed_mps == pytest.approx(7.0, rel=0.01) and moving.weight_s == 10.0
    assert eta.segment_sample(model, "scooter", a, 0.0, offset(3, 0), 10.0) is None  # standing at a door
    assert eta.segment_sample(model, "scooter", a, 0.0, offset(2000, 0), 10.0) is None  # GPS jump
    assert eta.segment_sample(model, "scooter", a, 0.0, offset(700, 0), 600.0) is None  # gap: path unknown
    assert eta.segment_sample(model, "scooter", a, 0.0, b, 10.0, accuracy_m=50.0) is None  # fixes too fuzzy


def test_route_etas_grow_along_the_route_and_include_service_times() -> None:
    model = eta.SpeedModel()
    quick = eta.route_etas(eta.eta_route(planned(POINTS, service_s=0), "scooter", {}), 0, HUB, at(12), model)
    slow = eta.route_etas(eta.eta_route(planned(POINTS, service_s=300), "scooter", {}), 0, HUB, at(12), model)
    assert [e.order_id for e in slow] == [f"ord-{i}" for i in range(1, 6)]
    assert all(a.p50_s < b.p50_s for a, b in zip(slow, slow[1:], strict=False))
    assert all(e.p90_s >= e.p50_s > at(12) for e in slow)
    for i, (q, s) in enumerate(zip(quick, slow, strict=True)):
        assert s.model_s - q.model_s == pytest.approx(300 * i)  # the services of the stops before
    first_leg = haversine_m(HUB, POINTS[0]) * PROFILES["scooter"].circuity / PROFILES["scooter"].speed_mps
    assert quick[0].model_s == pytest.approx(first_leg)
    later = eta.route_etas(eta.eta_route(planned(POINTS, service_s=300), "scooter", {}), 2, POINTS[1], at(12), model)
    assert [e.index for e in later] == [2, 3, 4]


def test_a_rider_early_for_a_window_waits_for_it() -> None:
    opens = at(13)
    route = eta.eta_route(planned(POINTS), "scooter", {"ord-2": (opens, opens + 1800)})
    etas = eta.route_etas(route, 0, HUB, at(12), eta.SpeedModel())
    assert etas[1].p50_s < opens  # arrives early...
    assert etas[2].model_s > opens + 120 - at(12)  # ...and leaves only after the window opens and the service


def test_calibration_widens_the_band_when_arrivals_miss_a_lot() -> None:
    calm = eta.Calibration()
    route = eta.eta_route(planned(POINTS), "scooter", {})
    rng = random.Random(7)
    rough = calm
    for _ in range(300):
        e = eta.route_etas(route, 0, HUB, 0.0, eta.SpeedModel(), calibration=rough)[2]  # ~15-30 min ahead
        rough = eta.observe_arrival(rough, e, e.model_s * math.exp(rng.gauss(0.2, 0.5)))
    b = eta.calibration_bucket(e.model_s, e.ahead)
    assert rough.q90[b] - rough.q50[b] > 1.5 * (calm.q90[b] - calm.q50[b])
    assert rough.q50[b] == pytest.approx(0.2, abs=0.1)  # the bias is measured (it moves the p50 only if recentre)
    before = eta.route_etas(route, 0, HUB, 0.0, eta.SpeedModel(), calibration=calm)[2]
    after = eta.route_etas(route, 0, HUB, 0.0, eta.SpeedModel(), calibration=rough)[2]
    assert after.p90_s - after.p50_s > before.p90_s - before.p50_s


def test_calibrated_band_covers_ninety_percent_of_arrivals() -> None:
    rng = random.Random(11)
    calibration = eta.Calibration(params=eta.CalibrationParams(recentre=True))
    for _ in range(1500):
        model_s = rng.uniform(400, 880)
        e = eta.StopEta("o", 2, 0.0, model_s, model_s, model_s, 2)
        calibration = eta.observe_arrival(calibration, e, model_s * math.exp(rng.gauss(0.1, 0.3)))
    route = eta.eta_route(planned(POINTS), "scooter", {})
    e = eta.route_etas(route, 0, HUB, 0.0, eta.SpeedModel(), calibration=calibration)[2]
    assert eta.calibration_bucket(e.model_s, e.ahead) == eta.calibration_bucket(600.0, 2)
    actual = [e.model_s * math.exp(rng.gauss(0.1, 0.3)) for _ in range(4000)]
    assert 0.85 <= sum(a <= e.p90_s for a in actual) / len(actual) <= 0.95
    assert 0.45 <= sum(a <= e.p50_s for a in actual) / len(actual) <= 0.55


def test_pace_learns_a_slow_rider_and_pushes_the_later_stops_back() -> None:
    model = eta.SpeedModel()
    route = eta.eta_route(planned(POINTS), "scooter", {})
    state = eta.start_route(route, at(12))
    state, first = eta.update(state, at(12), HUB, model, eta.Calibration())
    leg_s = first[0].model_s
    state, scored, leg = eta.arrived(state, 0, at(12) + 1.6 * leg_s, model)
    assert leg is not None and leg.actual_s == pytest.approx(1.6 * leg.model_s)
    assert [e.index for e in scored] == [0]
    assert 0.0 < state.pace.travel_log() < state.pace.clip_log  # clipped and shrunk: one leg may be a detour
    state, service = eta.departed(state, at(12) + 1.6 * leg_s + 120, model)
    assert service is not None and service.actual_s == pytest.approx(120)
    now = at(12) + 1.6 * leg_s + 120
    fresh = eta.route_etas(route, 1, POINTS[0], now, model)
    paced = eta.route_etas(route, 1, POINTS[0], now, model, state.pace)
    assert all(p.p50_s > f.p50_s for p, f in zip(paced, fresh, strict=True))
    fleet = eta.learn_legs(model, [leg])  # the fleet learns too
    assert fleet.leg_log_factor("scooter", now) > 0


def test_should_emit_first_estimates_real_moves_and_window_crossings() -> None:
    now = 0.0
    old = estimate(1200, 1500, now)
    assert eta.should_emit(None, old)
    assert not eta.should_emit(old, estimate(1250, 1550, now))  # 50 s: under the 60 s floor
    assert eta.should_emit(old, estimate(1400, 1700, now))  # 200 s > 10 % of 1,400 s
    far = estimate(6000, 7000, now)
    assert not eta.should_emit(far, estimate(6500, 7500, now))  # 500 s < 10 % of 6,500 s
    assert eta.should_emit(far, estimate(6700, 7700, now))
    assert eta.should_emit(old, estimate(1210, 1610, now), window_end_s=1550)  # p90 now past the promise
    assert eta.should_emit(estimate(1210, 1610, now), old, window_end_s=1550)  # and back inside it
    assert not eta.should_emit(old, estimate(1210, 1520, now), window_end_s=1550)


def test_update_emits_only_what_moved_and_due_limits_the_work() -> None:
    model = eta.SpeedModel()
    route = eta.eta_route(planned(POINTS), "scooter", {})
    state = eta.start_route(route, at(12))
    assert eta.due(state, at(12), HUB)
    state, out = eta.update(state, at(12), HUB, model, eta.Calibration())
    assert [e.index for e in out] == [0, 1, 2, 3, 4]  # first estimates
    assert not eta.due(state, at(12) + 10, HUB)  # 10 s later, same place
    assert eta.due(state, at(12) + 10, offset(400, 0))  # moved 400 m
    assert eta.due(state, at(12) + 40, HUB)
    state, out = eta.update(state, at(12) + 40, offset(100, 0), model, eta.Calibration())
    assert out == []  # on course: nothing worth telling anyone
    state, out = eta.update(state, at(12) + 900, offset(100, 0), model, eta.Calibration())
    assert [e.index for e in out] == [0, 1, 2, 3, 4]  # stuck for 15 minutes: everything moved
    state, _, _ = eta.arrived(state, 0, at(12) + 1000, model)
    assert eta.due(state, at(12) + 1001, POINTS[0])  # a completed stop is reflected at once


@pytest.mark.parametrize("lat", [0.0, 12.97, 52.5, 69.6])
def test_due_after_a_move_agrees_with_the_great_circle_at_the_threshold(lat: float) -> None:
    # due() screens most pings with a cheaper bound before the great circle: the bound must never
    # hide a move of moved_m, whatever the direction and latitude
    route = eta.eta_route(planned(POINTS), "scooter", {})
    origin = (lat, 77.5946)
    state = dataclasses.replace(eta.start_route(route, at(12)), computed_at_s=at(12), computed_at=origin)
    moved = eta.EmitParams().moved_m
    for bearing in range(0, 360, 15):
        for metres in (moved - 0.5, moved + 0.5):
            north, east = metres * math.cos(math.radians(bearing)), metres * math.sin(math.radians(bearing))
            here = offset(north, east, origin)
            assert eta.due(state, at(12) + 10, here) == (haversine_m(origin, here) >= moved), (bearing, metres)


def _true_seconds(a: tuple[float, float], b: tuple[float, float], zone: tuple[float, float], hour: int) -> float:
    """Ground truth: the car's prior speed, 30 % slower within 2.5 km of the zone centre."""
    profile = PROFILES["car"]
    n = 40
    total = 0.0
    step = haversine_m(a, b) * profile.circuity / n
    for k in range(n):
        f = (k + 0.5) / n
        p = (a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f)
        v = profile.speed_mps * profile.hourly_factors[hour] * (0.7 if haversine_m(p, zone) < 2500 else 1.0)
        total += step / v
    return total


def test_a_day_of_learning_beats_the_prior_where_a_zone_is_slower() -> None:
    rng = random.Random(42)
    zone = offset(3000, 3000)

    def point() -> tuple[float, float]:
        return offset(rng.uniform(-2000, 8000), rng.uniform(-2000, 8000))

    model = eta.SpeedModel()
    for hour in range(8, 18):  # riders crossing the city all day, pings every 10 s
        samples = []
        for _ in range(30):
            a, b = point(), point()
            n = max(1, int(_true_seconds(a, b, zone, hour) // 10))
            for k in range(n):
                f = (k + 0.5) / n
                p = (a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f)
                v = PROFILES["car"].speed_mps * PROFILES["car"].hourly_factors[hour]
                v *= (0.7 if haversine_m(p, zone) < 2500 else 1.0) * math.exp(rng.gauss(0, 0.2))
                samples.append(eta.SpeedSample(vehicle_type="car", cell=h3_int.latlng_to_cell(*p, model.params.resolution),
                                               at_s=at(hour) + 3600 * f, speed_mps=v, weight_s=10.0))
        model = eta.learn_speeds(model, samples)
    errors: dict[str, list[float]] = {"prior": [], "learned": []}
    for i in range(150):  # next day, 10:00-17:00: riders heading to stops
        hour = 10 + i % 7
        a, b = point(), point()
        route = eta.eta_route(planned([b], route_id=f"r{i}"), "car", {})
        truth = _true_seconds(a, b, zone, hour)
        for name, m in (("prior", eta.SpeedModel()), ("learned", model)):
            errors[name].append(abs(eta.route_etas(route, 0, a, at(24 + hour), m)[0].model_s - truth))
    mae = {k: sum(v) / len(v) for k, v in errors.items()}
    assert mae["learned"] < 0.7 * mae["prior"]
