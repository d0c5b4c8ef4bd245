"""The simulator's ground truth: hidden speeds, true tracks, phone noise, and a whole scored day."""

from __future__ import annotations

import math
import random
import statistics
from collections import defaultdict

import pytest
from h3.api import basic_int as h3_int

from schemas import Codec
from schemas import events as ev
from schemas.rules import check
from simulator import truth as tr
from simulator.world import offset_point
from solver.geo import haversine_m
from solver.travel import PROFILES

HUB = (12.9716, 77.5946)
NIGHT = 1_795_996_800.0 + 3 * 3600  # 2026-11-29 03:00 UTC: far from every rush
EXACT = tr.TrueSpeeds(leg_sigma=0.0, pace_sigma=0.0)  # no random draws on top of the field
NO_LIGHTS = tr.RoadParams(light_wait_prob=0.0)
CLEAN = tr.GpsNoise(sigma_m=30.0, outlier_prob=0.0, gap_prob=0.0, duplicate_prob=0.0, out_of_order_prob=0.0)


def at_hour(hour: float) -> float:
    return NIGHT - 3 * 3600 + hour * 3600


def leg_from(centre: tuple[float, float], length_m: float, depart_s: float, speeds: tr.TrueSpeeds = EXACT,
             vehicle: str = ev.VehicleType.CAR, seed: int = 1) -> tr.Leg:
    a = offset_point(*centre, -length_m / 2, -length_m / 4)
    b = offset_point(*centre, length_m / 2, length_m / 4)
    return tr.drive_leg(speeds, vehicle, "rider-x", a, b, depart_s, random.Random(seed), road=NO_LIGHTS)


def standing_fixes(n: int, interval: float = 5.0) -> list[tr.TrueFix]:
    return [tr.TrueFix(NIGHT + k * interval, HUB[0], HUB[1], 0.0, None) for k in range(n)]


def observe(noise: tr.GpsNoise, fixes: list[tr.TrueFix], seed: int = 3) -> list[tr.ObservedPing]:
    return noise.observe(fixes, random.Random(seed), rider_id="rider-x", id_prefix="p", ping_interval_s=5.0)


@pytest.fixture(scope="module")
def day() -> tr.GroundTruthDay:
    return tr.truth_day(11, riders=3, stops_per_rider=12, noise_m=0.0)


# ---- the hidden speed field -------------------------------------------------------------------


def test_time_of_day_changes_leg_durations_by_the_hidden_curve() -> None:
    peak, noon = leg_from(HUB, 1_500, at_hour(9.75)), leg_from(HUB, 1_500, at_hour(12.0))
    assert peak.road_m == pytest.approx(noon.road_m)
    expected = EXACT.time_factor("car", at_hour(12.0)) / EXACT.time_factor("car", at_hour(9.75))
    assert (peak.arrive_s - peak.depart_s) / (noon.arrive_s - noon.depart_s) == pytest.approx(expected, rel=0.03)
    assert expected > 1.7  # a car loses about half its speed at the peak


def test_the_hidden_curve_is_not_the_planners() -> None:
    car = PROFILES["car"]
    truth = [EXACT.time_factor("car", at_hour(h)) for h in (8.0, 10.5)]
    planner = [car.hourly_factors[8], car.hourly_factors[10]]
    assert planner[0] < planner[1]  # the planner thinks 08:00 is rush and 10:30 is clear
    assert truth[0] > truth[1]  # the truth peaks later: 08:00 still flows, 10:30 is jammed
    assert EXACT.time_factor("bike", at_hour(9.75)) > 0.9 > EXACT.time_factor("scooter", at_hour(9.75))


def zone_cells(speeds: tr.TrueSpeeds) -> dict[int, float]:
    centre = h3_int.latlng_to_cell(*HUB, speeds.zone_resolution)
    return {c: speeds.zone_factor(*h3_int.cell_to_latlng(c)) for c in h3_int.grid_disk(centre, 10)}


def test_zones_are_seeded_and_some_are_30_to_40_percent_slower() -> None:
    zones = zone_cells(tr.TrueSpeeds())
    assert zones == zone_cells(tr.TrueSpeeds())
    assert zones != zone_cells(tr.TrueSpeeds(seed=99))
    slow = [f for f in zones.values() if f < 0.8]
    fast = [f for f in zones.values() if f > 1.08]
    assert all(0.6 <= f <= 0.7 for f in slow)
    assert len(slow) / len(zones) == pytest.approx(0.25, abs=0.07)
    assert len(fast) / len(zones) == pytest.approx(0.2, abs=0.07)


def test_zone_factor_changes_leg_durations() -> None:
    zones = zone_cells(EXACT)
    durations = {}
    for name, pick in (("slow", min), ("fast", max)):
        cell = pick(zones, key=zones.__getitem__)
        leg = leg_from(h3_int.cell_to_latlng(cell), 600, NIGHT)
        assert all(h3_int.latlng_to_cell(k.lat, k.lon, 7) == cell for k in leg.knots)
        expected_s = leg.road_m / (EXACT.base_mps["car"] * EXACT.time_factor("car", NIGHT) * zones[cell])
        assert leg.arrive_s - leg.depart_s == pytest.approx(expected_s, rel=1e-3)
        durations[name] = (leg.arrive_s - leg.depart_s) / leg.road_m
    assert durations["slow"] > 1.5 * durations["fast"]
    slow_cell = min(zones, key=zones.__getitem__)
    bike = leg_from(h3_int.cell_to_latlng(slow_cell), 600, NIGHT, vehicle=ev.VehicleType.BIKE)
    bike_s = bike.road_m / (EXACT.base_mps["bike"] * EXACT.time_factor("bike", NIGHT))
    assert bike.arrive_s - bike.depart_s == pytest.approx(bike_s / zones[slow_cell] ** 0.4, rel=1e-3)  # bikes weave


def test_rider_pace_is_fixed_per_rider_and_lognormal_around_one() -> None:
    speeds = tr.TrueSpeeds()
    paces = [speeds.pace(f"rider-{i}") for i in range(600)]
    assert paces == [tr.TrueSpeeds().pace(f"rider-{i}") for i in range(600)]
    logs = [math.log(p) for p in paces]
    assert statistics.fmean(logs) == pytest.approx(0.0, abs=0.02)
    assert statistics.pstdev(logs) == pytest.approx(speeds.pace_sigma, rel=0.15)


def test_leg_noise_and_lights_only_slow_or_speed_a_leg_as_drawn() -> None:
    noisy = tr.TrueSpeeds(leg_sigma=0.1, pace_sigma=0.0)
    times = [leg_from(HUB, 1_000, NIGHT, noisy, seed=s) for s in range(200)]
    ratios = [math.log((lg.arrive_s - lg.depart_s) / lg.road_m) for lg in times]
    assert statistics.pstdev(ratios) == pytest.approx(0.1, rel=0.25)


# ---- true tracks ------------------------------------------------------------------------------


def test_legs_follow_a_street_grid_with_urban_circuity() -> None:
    rng = random.Random(5)
    circuities = []
    for _ in range(200):
        r, theta = rng.uniform(500, 3_000), rng.uniform(0, 2 * math.pi)
        end = offset_point(*HUB, r * math.cos(theta), r * math.sin(theta))
        leg = tr.drive_leg(EXACT, "scooter", "rider-x", HUB, end, NIGHT, rng)
        assert (leg.knots[0].lat, leg.knots[0].lon) == HUB and (leg.knots[-1].lat, leg.knots[-1].lon) == end
        circuities.append(leg.circuity)
    # (local metres use world.offset_point's 111,320 m/degree, 0.1 % over the haversine's)
    assert all(1.0 <= c <= math.sqrt(2) * 1.002 for c in circuities)
    assert statistics.fmean(circuities) == pytest.approx(4 / math.pi, abs=0.05)


def test_leg_fixes_sit_on_the_ping_clock_and_on_the_track() -> None:
    leg = tr.drive_leg(tr.TrueSpeeds(), "van", "rider-7", HUB, offset_point(*HUB, 1_200, -900), at_hour(9.0),
                       random.Random(2), next_ping_s=at_hour(9.0) + 3.0, ping_interval_s=5.0)
    times = [f.t_s for f in leg.fixes]
    assert times == pytest.approx([at_hour(9.0) + 3.0 + 5.0 * k for k in range(len(times))])
    assert times[-1] < leg.arrive_s <= leg.next_ping_s < leg.arrive_s + 5.0
    # each fix lies on the straight line between the knots around it, at the time's share
    for fix in leg.fixes:
        i = max(j for j, k in enumerate(leg.knots) if k.t_s <= fix.t_s)
        a, b = leg.knots[i], leg.knots[min(i + 1, len(leg.knots) - 1)]
        f = (fix.t_s - a.t_s) / (b.t_s - a.t_s) if b.t_s > a.t_s else 0.0
        assert haversine_m((fix.lat, fix.lon), (a.lat + (b.lat - a.lat) * f, a.lon + (b.lon - a.lon) * f)) < 0.01
        assert (fix.speed_mps > 0) == (fix.heading_deg is not None)
    road = sum(haversine_m((a.lat, a.lon), (b.lat, b.lon)) for a, b in zip(leg.knots, leg.knots[1:], strict=False))
    assert road == pytest.approx(leg.road_m, rel=2e-3)  # offset_point's metres vs the haversine's


def waits_of(leg: tr.Leg) -> list[tuple[tr.Knot, tr.Knot]]:
    return [(a, b) for a, b in zip(leg.knots, leg.knots[1:], strict=False) if (a.lat, a.lon) == (b.lat, b.lon)]


def test_red_lights_stop_riders_at_corners_but_never_near_a_door() -> None:
    end = offset_point(*HUB, 1_500, 1_100)
    always = tr.RoadParams(light_wait_prob=1.0, light_wait_s=(10.0, 20.0))
    free = tr.drive_leg(EXACT, "car", "rider-x", HUB, end, NIGHT, random.Random(4), road=always)
    everywhere = waits_of(free)
    assert len(everywhere) >= 5 and all(10.0 <= b.t_s - a.t_s <= 20.0 for a, b in everywhere)
    door = (everywhere[len(everywhere) // 2][0].lat, everywhere[len(everywhere) // 2][0].lon)
    leg = tr.drive_leg(EXACT, "car", "rider-x", HUB, end, NIGHT, random.Random(4), doors=[door], road=always)
    waits = waits_of(leg)
    assert 0 < len(waits) < len(everywhere)
    assert all(haversine_m((a.lat, a.lon), door) > 60.0 for a, _ in waits)
    moving = tr.drive_leg(EXACT, "car", "rider-x", HUB, end, NIGHT, random.Random(4), road=NO_LIGHTS)
    assert leg.arrive_s - moving.arrive_s == pytest.approx(sum(b.t_s - a.t_s for a, b in waits), rel=0.01)


# ---- what the phone reports ---------------------------------------------------------------------


def test_noise_has_the_chosen_rms_radius_and_an_accuracy_that_tracks_it() -> None:
    pings = observe(CLEAN, standing_fixes(20_000))
    errors = [p.error_m for p in pings]
    assert math.sqrt(statistics.fmean(e * e for e in errors)) == pytest.approx(30.0, rel=0.03)
    for p in pings[:200]:
        assert haversine_m((p.ping.lat, p.ping.lon), (p.true_lat, p.true_lon)) == pytest.approx(p.error_m, rel=2e-3)
    north = [(p.ping.lat - p.true_lat) * 111_320.0 for p in pings]
    assert statistics.fmean(north) == pytest.approx(0.0, abs=1.0)
    accuracy = [p.ping.accuracy_m for p in pings]
    assert statistics.correlation(errors, accuracy) > 0.4
    assert statistics.median(accuracy) == pytest.approx(30.0 / math.sqrt(2) * 1.51, rel=0.2)  # ~ the 68 % radius
    assert all(p.ping.speed_mps < 1.0 and p.ping.heading_deg is None for p in pings)


def test_multipath_outliers_come_at_the_configured_rate_and_distance() -> None:
    noise = tr.GpsNoise(sigma_m=5.0, outlier_prob=0.02, gap_prob=0.0, duplicate_prob=0.0, out_of_order_prob=0.0)
    pings = observe(noise, standing_fixes(20_000))
    outliers = [p for p in pings if p.outlier]
    assert len(outliers) / len(pings) == pytest.approx(0.02, abs=0.004)
    assert all(60.0 < p.error_m < 275.0 for p in outliers)
    reported = [p for p in outliers if p.ping.accuracy_m >= 0.8 * p.error_m - 0.1]
    assert len(reported) / len(outliers) == pytest.approx(0.5, abs=0.12)


def test_gaps_start_at_the_configured_rate_and_last_as_configured() -> None:
    noise = tr.GpsNoise(sigma_m=10.0, gap_prob=0.01, gap_s=(20.0, 120.0), duplicate_prob=0.0, out_of_order_prob=0.0)
    pings = observe(noise, standing_fixes(40_000))
    times = [p.ping.device_time.timestamp() for p in pings]
    holes = [b - a for a, b in zip(times, times[1:], strict=False) if b - a > 5.5]
    assert all(h >= 20.0 for h in holes)
    assert sum(h <= 130.0 for h in holes) >= 0.97 * len(holes)  # longer: a gap right after a gap
    assert len(holes) / (len(pings) + len(holes)) == pytest.approx(0.01, abs=0.002)


def test_duplicates_resend_the_same_ping_at_the_configured_rate() -> None:
    noise = tr.GpsNoise(sigma_m=10.0, gap_prob=0.0, duplicate_prob=0.05, out_of_order_prob=0.0)
    pings = observe(noise, standing_fixes(20_000))
    first = {p.ping.event_id: p for p in pings if not p.resent}
    copies = [p for p in pings if p.resent]
    assert len(copies) / len(first) == pytest.approx(0.05, abs=0.006)
    for c in copies:
        original = first[c.ping.event_id]
        assert (c.ping.device_time, c.ping.lat, c.ping.lon) == (original.ping.device_time, original.ping.lat,
                                                               original.ping.lon)
        assert c.received_s > original.received_s
    assert [p.received_s for p in pings] == sorted(p.received_s for p in pings)


def test_pings_survive_the_wire_unchanged() -> None:
    codec = Codec()
    for observed in tr.truth_day(2, 1, 3, 30.0).pings[:100]:
        check(observed.ping)
        assert codec.decode(codec.encode(observed.ping, "gps")) == observed.ping  # whole-millisecond times


def test_late_pings_arrive_out_of_order_at_the_configured_rate() -> None:
    noise = tr.GpsNoise(sigma_m=10.0, gap_prob=0.0, duplicate_prob=0.0, out_of_order_prob=0.03)
    pings = observe(noise, standing_fixes(20_000))
    newest, overtaken = -math.inf, []
    for p in pings:
        t = p.ping.device_time.timestamp()
        overtaken.append(t < newest)
        newest = max(newest, t)
        assert p.ping.occurred_at.timestamp() == pytest.approx(p.received_s, abs=1e-5)
    late = [p.late for p in pings]
    assert all(held for seen, held in zip(overtaken, late, strict=True) if seen)  # only held-back pings are
    assert sum(overtaken) >= 0.95 * sum(late)  # and nearly every one is overtaken
    assert sum(late) / len(pings) == pytest.approx(0.03, abs=0.004)


def test_noise_draws_do_not_depend_on_the_noise_size() -> None:
    loud, quiet = tr.truth_day(4, 2, 6, noise_m=50.0), tr.truth_day(4, 2, 6, noise_m=10.0)
    assert loud.visits == quiet.visits and loud.drive_bys == quiet.drive_bys
    assert [p.ping.event_id for p in loud.pings] == [p.ping.event_id for p in quiet.pings]
    assert [p.ping.device_time for p in loud.pings] == [p.ping.device_time for p in quiet.pings]
    for a, b in zip(loud.pings, quiet.pings, strict=True):
        if not a.outlier:
            assert a.error_m == pytest.approx(5 * b.error_m)


# ---- a whole day ------------------------------------------------------------------------------


def test_truth_day_is_deterministic_per_seed(day: tr.GroundTruthDay) -> None:
    again = tr.truth_day(11, riders=3, stops_per_rider=12, noise_m=0.0)
    assert again == day
    other = tr.truth_day(12, riders=3, stops_per_rider=12, noise_m=0.0)
    assert other.visits != day.visits and other.riders[0].route.stops != day.riders[0].route.stops


def test_the_plan_is_the_routes_stops_in_visit_order(day: tr.GroundTruthDay) -> None:
    for rider in day.riders:
        stops = [v for v in day.visits if v.rider_id == rider.rider_id and not v.is_hub]
        assert [v.stop_id for v in stops] == [s.order_id for s in rider.route.stops]
        assert [(v.lat, v.lon) for v in stops] == [(s.lat, s.lon) for s in rider.route.stops]
        fences = [(v.lat, v.lon) for v in stops] + [tr.DayParams().hub]
        assert min(haversine_m(a, b) for i, a in enumerate(fences) for b in fences[i + 1:]) >= 150.0
        assert rider.vehicle_type in ev.VehicleType


def test_true_arrivals_match_the_trajectory(day: tr.GroundTruthDay) -> None:
    by_rider = defaultdict(list)
    for p in day.pings:
        if not p.resent:
            by_rider[p.ping.rider_id].append(p)
    for rider in day.riders:
        pings = sorted(by_rider[rider.rider_id], key=lambda p: p.ping.device_time)
        assert all((p.ping.lat, p.ping.lon) == (p.true_lat, p.true_lon) for p in pings if not p.outlier)  # noise_m=0
        visits = [v for v in day.visits if v.rider_id == rider.rider_id]
        assert [v.sequence for v in visits] == list(range(-1, len(visits) - 1))
        assert visits[0].arrival_s == rider.start_s and visits[-1].departure_s == rider.end_s
        assert all(a.departure_s < b.arrival_s for a, b in zip(visits, visits[1:], strict=False))
        for v in visits:
            during = [p for p in pings if v.arrival_s <= p.ping.device_time.timestamp() < v.departure_s]
            before = [p for p in pings if v.arrival_s - 60 <= p.ping.device_time.timestamp() < v.arrival_s]
            assert len({(p.true_lat, p.true_lon) for p in during}) <= 1  # parked
            assert all(haversine_m((p.true_lat, p.true_lon), (v.lat, v.lon)) <= 15.01 for p in during)
            if during and before and not v.is_hub:
                parked = (during[0].true_lat, during[0].true_lon)
                assert haversine_m((before[-1].true_lat, before[-1].true_lon), parked) > 0.0  # still driving
            if not v.is_hub:
                stay = v.departure_s - v.arrival_s
                assert 25.0 <= stay <= 60.0 if v.failed else 20.0 <= stay <= 4 * v.planned_service_s


def test_drive_bys_are_recorded_wherever_the_rider_passes_a_door(day: tr.GroundTruthDay) -> None:
    assert sum(d.before_visit and not d.is_hub for d in day.drive_bys) >= len(day.riders)  # pass-bys happen
    fences = {(v.rider_id, v.stop_id): (v.lat, v.lon) for v in day.visits}
    stays = defaultdict(list)
    for v in day.visits:
        stays[(v.rider_id, v.stop_id)].append((v.arrival_s, v.departure_s))
    passes = defaultdict(list)
    for d in day.drive_bys:
        assert d.closest_m <= 50.0 and d.enter_s <= d.closest_s <= d.exit_s
        assert not any(d.enter_s <= dep and d.exit_s >= arr for arr, dep in stays[(d.rider_id, d.stop_id)])
        passes[(d.rider_id, d.stop_id)].append(d)
    # every run of consecutive true positions within 50 m of a door is its visit or one of its drive-bys
    sent = sorted((p for p in day.pings if not p.resent), key=lambda p: (p.ping.rider_id, p.ping.device_time))
    for (rider_id, stop_id), door in fences.items():
        track = [(p.ping.device_time.timestamp(), haversine_m((p.true_lat, p.true_lon), door))
                 for p in sent if p.ping.rider_id == rider_id]
        runs, run = [], []
        for t, distance in track:
            if distance < 50.0:
                run.append((t, distance))
            elif run:
                runs.append(run)
                run = []
        runs += [run] if run else []
        for run in runs:
            start, end = run[0][0], run[-1][0]
            if any(start - 6.0 <= dep and end + 6.0 >= arr for arr, dep in stays[(rider_id, stop_id)]):
                continue  # the approach, the stay and the way out of a visit
            match = [d for d in passes[(rider_id, stop_id)] if d.enter_s - 1e-6 <= start and end <= d.exit_s + 1e-6]
            assert len(match) == 1, f"{rider_id} passed {stop_id} at {run[0][1]:.0f} m without a drive-by"
            assert min(distance for _, distance in run) >= match[0].closest_m - 0.5
    # drive-bys are passes, not stops: no red light waits near a door
    for d in day.drive_bys:
        inside = sorted((p.ping.device_time, p.true_lat, p.true_lon) for p in day.pings if not p.resent
                        and p.ping.rider_id == d.rider_id and d.enter_s <= p.ping.device_time.timestamp() <= d.exit_s)
        assert len({(lat, lon) for _, lat, lon in inside}) == len(inside)
