"""Rider tracking: given a planned route and a track, when these pings arrive, then this distance
and these arrivals."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import timedelta

import pytest
from route_fixture import HUB, RIDER, T0, offset, route
from route_fixture import STOPS as STOP_POINTS

from schemas import events as ev
from solver.model import haversine_m
from streams import tracking as tr

PARAMS = tr.ArrivalParams()  # dwell 20 s, radius 60 m (+ up to 40 m for accuracy)


_counter = iter(range(1_000_000))


def ping(t_s: float, point: tuple[float, float], accuracy: float | None = 5.0, eid: str | None = None) -> ev.GpsPing:
    at = T0 + timedelta(seconds=t_s)
    return ev.GpsPing(event_id=eid or f"p-{next(_counter)}", occurred_at=at, rider_id=RIDER, device_id="dev-1",
                      device_time=at, lat=point[0], lon=point[1], accuracy_m=accuracy)


def on_route(route_id: str = "route-1") -> tr.RiderTrack:
    return tr.start_route(tr.RiderTrack(rider_id=RIDER), route_id)


def feed(track: tr.RiderTrack, stops: tuple[tr.TrackedStop, ...], pings: Iterable[ev.GpsPing],
         params: tr.ArrivalParams = PARAMS) -> tuple[tr.RiderTrack, list[tuple[ev.GpsPing, tr.Arrival]]]:
    out: list[tuple[ev.GpsPing, tr.Arrival]] = []
    for p in pings:
        track, arrivals = tr.on_ping(track, stops, p, params)
        out.extend((p, a) for a in arrivals)
    return track, out


def standing(at_point: tuple[float, float], start_s: float, seconds: float, every_s: float = 5.0,
             noise_m: float = 5.0, seed: int = 1, accuracy: float | None = 8.0) -> list[ev.GpsPing]:
    rng = random.Random(seed)
    n = int(seconds // every_s) + 1
    return [ping(start_s + i * every_s, offset(rng.uniform(-noise_m, noise_m), rng.uniform(-noise_m, noise_m), at_point),
                 accuracy)
            for i in range(n)]


# ---- arrival by dwell ----------------------------------------------------------------------


def test_rider_standing_at_a_stop_for_the_dwell_arrives_exactly_once() -> None:
    stops = tr.route_stops(route())
    pings = standing(STOP_POINTS[0], 100, seconds=120)
    track, arrivals = feed(on_route(), stops, pings)
    assert len(arrivals) == 1
    source, arrival = arrivals[0]
    assert arrival.order_id == "ord-1" and arrival.route_id == "route-1"
    assert arrival.at == pings[0].device_time  # arrival time is when the dwell began
    assert source.device_time - pings[0].device_time == timedelta(seconds=PARAMS.dwell_s)
    assert arrival.source_ping_id == source.event_id
    assert (arrival.lat, arrival.lon) == (source.lat, source.lon)
    assert track.next_stop == 1


def test_no_arrival_before_the_dwell_has_elapsed() -> None:
    stops = tr.route_stops(route())
    pings = standing(STOP_POINTS[0], 100, seconds=PARAMS.dwell_s - 1, every_s=1)
    track, arrivals = feed(on_route(), stops, pings)
    assert arrivals == []
    assert track.next_stop == 0
    assert track.dwell_stop == 0 and track.dwell_since == pings[0].device_time
    # one more second completes the dwell
    _, more = tr.on_ping(track, stops, ping(100 + PARAMS.dwell_s, STOP_POINTS[0]), PARAMS)
    assert [a.order_id for a in more] == ["ord-1"]


def test_pass_by_at_speed_through_a_stop_is_not_an_arrival() -> None:
    stops = tr.route_stops(route())
    # 10 m/s, south to north straight over stop 1, a ping every 5 s (50 m)
    pings = [ping(i * 5, offset(-500 + 50 * i, 0, STOP_POINTS[0])) for i in range(21)]
    inside = [p for p in pings if haversine_m((p.lat, p.lon), STOP_POINTS[0]) <= PARAMS.radius_m + 5]
    assert len(inside) >= 2  # it did go through the geofence
    track, arrivals = feed(on_route(), stops, pings)
    assert arrivals == []
    assert track.next_stop == 0
    assert track.distance_m == pytest.approx(1000, rel=0.01)


def test_leaving_the_geofence_restarts_the_dwell() -> None:
    stops = tr.route_stops(route())
    before = standing(STOP_POINTS[0], 0, seconds=15)  # 0..15 s inside
    away = [ping(17, offset(400, 0, STOP_POINTS[0]))]
    back = standing(STOP_POINTS[0], 30, seconds=30, seed=2)  # 30..60 s inside
    track, arrivals = feed(on_route(), stops, [*before, *away, *back])
    assert len(arrivals) == 1
    source, arrival = arrivals[0]
    assert arrival.at == T0 + timedelta(seconds=30)
    assert source.device_time == T0 + timedelta(seconds=50)


def test_staying_on_after_arrival_does_not_arrive_again() -> None:
    stops = tr.route_stops(route())
    _, arrivals = feed(on_route(), stops, standing(STOP_POINTS[0], 0, seconds=600, every_s=10))
    assert [a.order_id for _, a in arrivals] == ["ord-1"]


def test_no_arrival_without_a_route() -> None:
    stops = tr.route_stops(route())
    track, arrivals = feed(tr.RiderTrack(rider_id=RIDER), stops, standing(STOP_POINTS[0], 0, seconds=120))
    assert arrivals == []
    assert track.last_time == T0 + timedelta(seconds=120)


def test_fixes_worse_than_worst_accuracy_do_not_count_toward_arrival() -> None:
    stops = tr.route_stops(route())
    bad = standing(STOP_POINTS[0], 0, seconds=120, accuracy=PARAMS.worst_accuracy_m + 1)
    track, arrivals = feed(on_route(), stops, bad)
    assert arrivals == []
    assert track.dwell_stop == -1 and track.dwell_since is None
    assert track.last_time == bad[-1].device_time  # position is still tracked


def test_bad_fixes_alone_do_not_complete_a_dwell_started_by_a_good_fix() -> None:
    stops = tr.route_stops(route())
    good = ping(0, STOP_POINTS[0], accuracy=5)
    bad = [ping(t, STOP_POINTS[0], accuracy=PARAMS.worst_accuracy_m * 2) for t in (10, 20, 30, 40)]
    _, arrivals = feed(on_route(), stops, [good, *bad])
    assert arrivals == []


def test_fix_at_exactly_worst_accuracy_still_counts() -> None:
    stops = tr.route_stops(route())
    pings = standing(STOP_POINTS[0], 0, seconds=30, accuracy=PARAMS.worst_accuracy_m)
    _, arrivals = feed(on_route(), stops, pings)
    assert [a.order_id for _, a in arrivals] == ["ord-1"]


def test_fuzzy_fix_widens_the_radius_but_only_up_to_the_cap() -> None:
    stops = tr.route_stops(route())
    near = offset(80, 0, STOP_POINTS[0])  # outside 60 m, inside 60 + 40
    fuzzy = [ping(t, near, accuracy=30) for t in range(0, 31, 5)]  # radius 90 m
    _, arrivals = feed(on_route(), stops, fuzzy)
    assert [a.order_id for _, a in arrivals] == ["ord-1"]
    sharp = [ping(t, near, accuracy=5) for t in range(100, 131, 5)]  # radius 65 m
    _, arrivals = feed(on_route(), stops, sharp)
    assert arrivals == []
    far = offset(120, 0, STOP_POINTS[0])  # beyond 60 + 40 however fuzzy
    very_fuzzy = [ping(t, far, accuracy=140) for t in range(200, 231, 5)]
    _, arrivals = feed(on_route(), stops, very_fuzzy)
    assert arrivals == []


# ---- route order, missed stops, lookahead --------------------------------------------------


def drive_route(visit: list[int], dwell_s: float = 40) -> list[ev.GpsPing]:
    """Pings that dwell at the given stop indexes in order, driving between them."""
    pings: list[ev.GpsPing] = []
    t = 0.0
    for n, i in enumerate(visit):
        pings.extend(standing(STOP_POINTS[i], t, seconds=dwell_s, seed=n))
        t += dwell_s + 120  # drive ~1 km at ~8 m/s
    return pings


def test_missed_stop_does_not_prevent_arrival_at_the_next_one() -> None:
    stops = tr.route_stops(route())
    track, arrivals = feed(on_route(), stops, drive_route([1, 2]))
    assert [a.order_id for _, a in arrivals] == ["ord-2", "ord-3"]
    assert track.next_stop == 3


def test_arrivals_come_in_route_order_and_each_stop_at_most_once() -> None:
    stops = tr.route_stops(route())
    track, arrivals = feed(on_route(), stops, drive_route([0, 1, 0, 2, 1, 3, 4, 4, 0]))
    ids = [a.order_id for _, a in arrivals]
    assert ids == ["ord-1", "ord-2", "ord-3", "ord-4", "ord-5"]
    assert len(set(ids)) == len(ids)
    times = [a.at for _, a in arrivals]
    assert times == sorted(times)
    assert track.next_stop == len(stops)


def test_going_back_to_a_skipped_stop_does_not_arrive_there() -> None:
    stops = tr.route_stops(route())
    _, arrivals = feed(on_route(), stops, drive_route([2, 0, 1]))
    assert [a.order_id for _, a in arrivals] == ["ord-3"]


def test_stops_beyond_the_lookahead_are_not_watched() -> None:
    stops = tr.route_stops(route())
    assert PARAMS.lookahead == 3
    _, arrivals = feed(on_route(), stops, drive_route([3]))  # 4th stop while the next is the 1st
    assert arrivals == []
    _, arrivals = feed(on_route(), stops, drive_route([2]))  # 3rd stop is within reach
    assert [a.order_id for _, a in arrivals] == ["ord-3"]


def test_start_route_resets_progress_for_a_new_route() -> None:
    stops = tr.route_stops(route())
    track, _ = feed(on_route(), stops, drive_route([0, 1]))
    assert track.next_stop == 2
    restarted = tr.start_route(track, "route-2")
    assert (restarted.route_id, restarted.next_stop, restarted.dwell_stop, restarted.dwell_since) == ("route-2", 0, -1, None)
    assert restarted.distance_m == track.distance_m
    second = tr.route_stops(route([STOP_POINTS[4], STOP_POINTS[3]], route_id="route-2"))
    later = [ping(p.device_time.timestamp() - T0.timestamp() + 10_000, (p.lat, p.lon)) for p in drive_route([4])]
    _, arrivals = feed(restarted, second, later)
    assert [(a.order_id, a.route_id) for _, a in arrivals] == [("ord-1", "route-2")]


def test_route_stops_geofence_contains_the_stop_cell_and_its_ring() -> None:
    stops = tr.route_stops(route())
    assert [s.order_id for s in stops] == [f"ord-{i}" for i in range(1, 6)]
    for s in stops:
        assert len(s.near_cells) == 7  # a cell and its six neighbours
    assert all(not (a.near_cells & b.near_cells) for a, b in zip(stops, stops[1:], strict=False))


# ---- position and distance hygiene ---------------------------------------------------------


def test_first_ping_sets_position_without_distance() -> None:
    track, _ = tr.on_ping(tr.RiderTrack(rider_id=RIDER), (), ping(0, HUB))
    assert (track.lat, track.lon, track.distance_m) == (HUB[0], HUB[1], 0.0)
    assert track.last_time == T0 and track.cell


def test_real_movement_adds_its_distance() -> None:
    track = tr.RiderTrack(rider_id=RIDER)
    points = [offset(100 * i, 0) for i in range(11)]
    track, _ = feed(track, (), [ping(10 * i, p) for i, p in enumerate(points)])
    assert track.distance_m == pytest.approx(1000, rel=0.005)


def test_duplicate_ping_returns_the_same_track_and_adds_nothing() -> None:
    stops = tr.route_stops(route())
    track, _ = feed(on_route(), stops, [ping(0, HUB), ping(60, offset(500, 0))])
    again = ping(60, offset(500, 0), eid="dup")
    after, arrivals = tr.on_ping(track, stops, again)
    assert after is track and arrivals == []
    after2, _ = tr.on_ping(after, stops, again)
    assert after2 is track


def test_out_of_order_ping_returns_the_same_track_and_adds_nothing() -> None:
    stops = tr.route_stops(route())
    track, _ = feed(on_route(), stops, [ping(0, HUB), ping(60, offset(500, 0))])
    late = ping(30, offset(-3000, 0))
    after, arrivals = tr.on_ping(track, stops, late)
    assert after is track and arrivals == []
    assert after.distance_m == track.distance_m


def test_out_of_order_pings_at_a_stop_do_not_make_an_arrival() -> None:
    stops = tr.route_stops(route())
    track, _ = feed(on_route(), stops, [ping(1000, offset(500, 0))])
    _, arrivals = feed(track, stops, standing(STOP_POINTS[0], 0, seconds=120))
    assert arrivals == []


def test_gps_jump_faster_than_max_speed_adds_no_distance() -> None:
    far = offset(5000, 0)  # 5 km in 10 s = 500 m/s
    track, _ = feed(tr.RiderTrack(rider_id=RIDER), (), [ping(0, HUB), ping(10, far)])
    assert track.distance_m == 0.0
    assert (track.lat, track.lon) == far  # the position still follows the fix


def test_step_just_under_max_speed_counts_and_just_over_does_not() -> None:
    limit = PARAMS.max_speed_mps
    ok, _ = feed(tr.RiderTrack(rider_id=RIDER), (), [ping(0, HUB), ping(10, offset(limit * 10 * 0.98, 0))])
    assert ok.distance_m == pytest.approx(limit * 10 * 0.98, rel=0.01)
    too_fast, _ = feed(tr.RiderTrack(rider_id=RIDER), (), [ping(0, HUB), ping(10, offset(limit * 10 * 1.02, 0))])
    assert too_fast.distance_m == 0.0


def test_jitter_within_the_fix_accuracy_adds_no_distance() -> None:
    pings = standing(HUB, 0, seconds=600, every_s=10, noise_m=6, accuracy=20)  # steps <= ~17 m < 20 m
    track, _ = feed(tr.RiderTrack(rider_id=RIDER), (), pings)
    assert track.distance_m == 0.0


def test_step_beyond_the_fix_accuracy_is_distance() -> None:
    track, _ = feed(tr.RiderTrack(rider_id=RIDER), (), [ping(0, HUB, accuracy=5), ping(10, offset(30, 0), accuracy=5)])
    assert track.distance_m == pytest.approx(30, rel=0.01)


def test_jitter_allowance_is_capped_at_50_m() -> None:
    track, _ = feed(tr.RiderTrack(rider_id=RIDER), (), [ping(0, HUB, accuracy=500), ping(60, offset(80, 0), accuracy=500)])
    assert track.distance_m == pytest.approx(80, rel=0.01)


def test_unknown_accuracy_is_treated_as_10_m_of_jitter() -> None:
    small, _ = feed(tr.RiderTrack(rider_id=RIDER), (), [ping(0, HUB, None), ping(10, offset(8, 0), None)])
    assert small.distance_m == 0.0
    large, _ = feed(tr.RiderTrack(rider_id=RIDER), (), [ping(0, HUB, None), ping(10, offset(15, 0), None)])
    assert large.distance_m == pytest.approx(15, rel=0.01)
