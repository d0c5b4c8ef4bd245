"""Ping hygiene: given a rider's device and these pings in this arrival order, then these verdicts,
this position and this distance."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest

from schemas import events as ev
from solver.geo import EARTH_RADIUS_M, haversine_m
from streams.domain.tracking import hygiene as hy

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
ORIGIN = (12.9716, 77.5946)
RIDER = "rider-1"
Drop = hy.Drop
M_PER_DEGREE = EARTH_RADIUS_M * math.pi / 180  # the sphere haversine_m measures on


def at(north_m: float, east_m: float) -> tuple[float, float]:
    lat, lon = ORIGIN
    return lat + north_m / M_PER_DEGREE, lon + east_m / (M_PER_DEGREE * math.cos(math.radians(lat)))


_counter = iter(range(10_000_000))


def ping(t_s: float, point: tuple[float, float], accuracy: float | None = 5.0, eid: str | None = None,
         rider: str = RIDER, sent_s: float | None = None) -> ev.GpsPing:
    """A fix taken at T0 + t_s and received (occurred_at) half a second later unless told."""
    device_time = T0 + timedelta(seconds=t_s)
    return ev.GpsPing(event_id=eid or f"p-{next(_counter)}", occurred_at=T0 + timedelta(seconds=sent_s or t_s + 0.5),
                      rider_id=rider, device_id="dev-1", device_time=device_time, lat=point[0], lon=point[1],
                      accuracy_m=accuracy)


def device(vehicle: ev.VehicleType | None = ev.VehicleType.BIKE) -> hy.DeviceState:
    return hy.DeviceState(rider_id=RIDER, vehicle_type=vehicle)


def feed(state: hy.DeviceState, pings: Iterable[ev.GpsPing],
         params: hy.HygieneParams = hy.DEFAULT_PARAMS) -> tuple[hy.DeviceState, list[hy.Verdict]]:
    verdicts = []
    for p in pings:
        state, verdict = hy.screen(state, p, params)
        verdicts.append(verdict)
    return state, verdicts


def reasons(verdicts: Iterable[hy.Verdict]) -> list[Drop | None]:
    return [v.reason for v in verdicts]


def path_length(points: list[tuple[float, float]]) -> float:
    return sum(haversine_m(a, b) for a, b in zip(points, points[1:], strict=False))


def ride(legs: list[tuple[float, float]], step_m: float, every_s: float) -> list[tuple[float, tuple[float, float]]]:
    """(time, point) every ``every_s`` along straight legs through the (north, east) corners."""
    out = [(0.0, at(*legs[0]))]
    for (n0, e0), (n1, e1) in zip(legs, legs[1:], strict=False):
        steps = max(1, round(math.hypot(n1 - n0, e1 - e0) / step_m))
        for i in range(1, steps + 1):
            f = i / steps
            out.append((out[-1][0] + every_s, at(n0 + (n1 - n0) * f, e0 + (e1 - e0) * f)))
    return out


# An L-shaped bike ride, 5 m/s, a fix every 5 s: 1.2 km north, then 0.8 km east.
L_RIDE = ride([(0, 0), (1200, 0), (1200, 800)], step_m=25, every_s=5)
STRAIGHT_RIDE = ride([(0, 0), (2000, 0)], step_m=25, every_s=5)


def track_pings(track: list[tuple[float, tuple[float, float]]]) -> list[ev.GpsPing]:
    return [ping(t, point, eid=f"fix-{i}") for i, (t, point) in enumerate(track)]


# --- one rule at a time ----------------------------------------------------------------------


def test_a_resent_ping_is_a_duplicate_and_changes_nothing() -> None:
    first, second = ping(0, at(0, 0)), ping(5, at(25, 0))
    state, _ = feed(device(), [first, second])

    again, verdict = hy.screen(state, second)
    assert verdict.reason is Drop.DUPLICATE
    assert again is state

    new_id_same_fix = ping(5, at(25, 0))  # a resend under a fresh id: same device time and position
    assert hy.screen(state, new_id_same_fix)[1].reason is Drop.DUPLICATE


@pytest.mark.parametrize("sent_before", [5, 7, 8, 9, 12])  # the memory at different points of its turnover
def test_a_resend_is_recognised_among_the_last_dedupe_window_pings_only(sent_before: int) -> None:
    params = hy.HygieneParams(dedupe_window=4)
    sent = [ping(5 * i, at(25 * i, 0)) for i in range(sent_before)]
    state, _ = feed(device(), sent, params)

    for back in range(1, 5):
        assert hy.screen(state, sent[-back], params)[1].reason is Drop.DUPLICATE
    forgotten, verdict = hy.screen(state, sent[-5], params)  # beyond the window: judged by its time alone
    assert verdict.reason is Drop.OUT_OF_ORDER and forgotten.heard_s == state.heard_s


def test_a_ping_older_than_the_last_fix_within_the_late_window_is_out_of_order() -> None:
    state, verdicts = feed(device(), [ping(0, at(0, 0)), ping(10, at(50, 0)), ping(5, at(25, 0))])
    assert reasons(verdicts) == [None, None, Drop.OUT_OF_ORDER]
    assert state.fix is not None and state.fix[0] == (T0 + timedelta(seconds=10)).timestamp()
    assert state.fix[1:3] == at(50, 0)


def test_a_ping_older_than_the_late_window_is_too_late() -> None:
    state, verdicts = feed(device(), [ping(0, at(0, 0)), ping(100, at(400, 0)), ping(20, at(80, 0))])
    assert reasons(verdicts) == [None, None, Drop.TOO_LATE]
    assert state.fix is not None and state.fix[1:3] == at(400, 0)


def test_an_inaccurate_fix_proves_the_device_alive_but_does_not_move_the_rider() -> None:
    state, _ = feed(device(), [ping(0, at(0, 0))])
    fuzzy = ping(200, at(150, 0), accuracy=200.0)
    state2, verdict = hy.screen(state, fuzzy)

    assert verdict.reason is Drop.POOR_ACCURACY
    assert state2.fix == state.fix and state2.distance_m == 0.0
    assert state2.heard_s == fuzzy.occurred_at.timestamp()
    assert not hy.is_silent(state2, fuzzy.occurred_at.timestamp() + 60)
    assert hy.is_silent(state, fuzzy.occurred_at.timestamp() + 60)  # without it, the device was silent


def test_a_five_km_jump_in_ten_seconds_is_dropped_until_the_device_settles_there() -> None:
    before = ride([(0, 0), (500, 0)], step_m=25, every_s=5)  # 100 s of riding, 500 m
    state, verdicts = feed(device(), track_pings(before))
    assert all(v.accepted for v in verdicts) and state.distance_m == pytest.approx(500, rel=1e-6)

    t = before[-1][0]
    there = [ping(t + 10, at(5500, 0)), ping(t + 15, at(5520, 0)), ping(t + 20, at(5540, 0)),
             ping(t + 25, at(5560, 0)), ping(t + 30, at(5580, 0))]
    state, verdicts = feed(state, there)

    assert reasons(verdicts) == [Drop.IMPOSSIBLE_JUMP, Drop.IMPOSSIBLE_JUMP, None, None, None]
    assert verdicts[2].reanchored and not verdicts[3].reanchored
    assert state.distance_m == pytest.approx(500 + 40, rel=1e-6)  # the 5 km jump never counts


def test_a_lone_spike_is_dropped_and_the_ride_goes_on_without_it() -> None:
    state, verdicts = feed(device(), [ping(0, at(0, 0)), ping(5, at(25, 0)), ping(10, at(50, 0)),
                                      ping(15, at(75, 3000)), ping(20, at(100, 0)), ping(25, at(125, 0))])
    assert reasons(verdicts) == [None, None, None, Drop.IMPOSSIBLE_JUMP, None, None]
    assert not any(v.reanchored for v in verdicts)
    assert state.jump is None
    assert state.distance_m == pytest.approx(125, rel=1e-6)


def test_a_silent_device_is_flagged_and_its_first_fix_back_counts_at_most_the_straight_line() -> None:
    state, _ = feed(device(), track_pings(ride([(0, 0), (200, 0)], step_m=25, every_s=5)))
    last_heard = state.heard_s
    assert last_heard is not None
    assert not hy.is_silent(state, last_heard + 60)
    assert hy.is_silent(state, last_heard + 600)

    # Ten minutes in a tunnel, 2 km further by road; the first fix back is 1.5 km away as the crow flies.
    back = ping(40 + 600, at(200, 1500))
    state2, verdict = hy.screen(state, back)
    assert verdict.accepted and not verdict.reanchored
    assert verdict.back_after_s == pytest.approx(600)
    assert not hy.is_silent(state2, back.occurred_at.timestamp() + 60)
    assert state2.distance_m == state.distance_m  # one fix back could be a spike: not counted yet

    state3, verdict = hy.screen(state2, ping(40 + 605, at(200, 1525)))
    assert verdict.accepted and verdict.back_after_s == 0
    assert state3.distance_m == pytest.approx(200 + haversine_m(at(200, 0), at(200, 1525)), rel=1e-6)


def test_a_spike_right_after_a_silence_adds_no_distance() -> None:
    state, _ = feed(device(ev.VehicleType.CAR), track_pings(ride([(0, 0), (200, 0)], step_m=25, every_s=5)))
    spike = ping(40 + 600, at(3200, 0))  # drivable in ten minutes, but it is a spike
    state, verdicts = feed(state, [spike, ping(40 + 605, at(225, 0)), ping(40 + 610, at(250, 0)),
                                   ping(40 + 615, at(275, 0)), ping(40 + 620, at(300, 0))])
    assert verdicts[0].accepted
    assert state.distance_m <= 300 + 1e-6


def test_a_device_back_from_silence_somewhere_undrivable_is_re_anchored_without_distance() -> None:
    state, _ = feed(device(), track_pings(ride([(0, 0), (200, 0)], step_m=25, every_s=5)))
    far = ping(40 + 300, at(200, 30_000))  # 30 km in 5 minutes: not on a bike
    state2, verdict = hy.screen(state, far)
    assert verdict.accepted and verdict.reanchored and verdict.back_after_s == pytest.approx(300)
    assert state2.distance_m == pytest.approx(200, rel=1e-6)
    state3, verdict = hy.screen(state2, ping(345, at(225, 30_000)))
    state3, verdict = hy.screen(state3, ping(350, at(250, 30_000)))
    assert verdict.accepted and state3.distance_m == pytest.approx(250, rel=1e-6)  # riding on from there


def test_a_device_clock_running_ahead_is_not_believed() -> None:
    state, _ = feed(device(), [ping(0, at(0, 0)), ping(5, at(25, 0))])
    ahead = ping(3600, at(50, 0), sent_s=10)  # stamped an hour ahead, received at t=10
    state, verdict = hy.screen(state, ahead)
    assert verdict.reason is Drop.CLOCK_SKEW

    state, verdicts = feed(state, [ping(10, at(50, 0)), ping(15, at(75, 0))])
    assert all(v.accepted for v in verdicts)  # honest pings after it are not "late"
    assert state.distance_m == pytest.approx(75, rel=1e-6)


@pytest.mark.parametrize("bad", [
    ping(0, (math.nan, 77.6)),
    ping(0, (95.0, 77.6)),
    ping(0, (0.0, 0.0)),
    ping(0, ORIGIN, accuracy=-1.0),
    ping(0, ORIGIN, accuracy=math.nan),
    object(),
])
def test_unreadable_pings_are_dropped_not_raised(bad: object) -> None:
    state = device()
    new, verdict = hy.screen(state, bad)  # type: ignore[arg-type]
    assert verdict.reason is Drop.INVALID and new is state
    states, accepted, dropped = hy.screen_batch({}, [bad])  # type: ignore[list-item]
    assert accepted == [] and dropped == [(bad, verdict)]


def test_a_fix_without_accuracy_is_used_with_the_assumed_accuracy() -> None:
    state, verdicts = feed(device(), [ping(0, at(0, 0), accuracy=None), ping(10, at(100, 0), accuracy=None),
                                      ping(20, at(200, 0), accuracy=None)])
    assert all(v.accepted for v in verdicts)
    assert state.distance_m == pytest.approx(200, rel=1e-6)


# --- distance ------------------------------------------------------------------------------


def test_a_clean_ride_measures_its_true_path_length() -> None:
    state, verdicts = feed(device(), track_pings(L_RIDE))
    assert all(v.accepted for v in verdicts)
    assert state.distance_m == pytest.approx(path_length([p for _, p in L_RIDE]), rel=1e-6)


def test_slow_riding_is_counted_once_it_clears_the_jitter_floor() -> None:
    walk = ride([(0, 0), (300, 0)], step_m=2, every_s=1)  # 2 m/s, a fix every second, steps under the floor
    state, _ = feed(device(), track_pings(walk))
    floor = hy.DEFAULT_PARAMS.jitter_k * math.hypot(5.0, 5.0)
    assert 300 - floor - 2 <= state.distance_m <= 300 + 1e-6


def test_a_parked_rider_with_wandering_fixes_travels_almost_nowhere() -> None:
    rng = random.Random(3)
    noisy = [ping(10 * i, at(rng.gauss(0, 10), rng.gauss(0, 10)), accuracy=12.0) for i in range(180)]  # 30 min
    state, verdicts = feed(device(), noisy)
    assert all(v.accepted for v in verdicts)
    assert state.distance_m < 60


def test_replayed_pings_add_no_distance() -> None:
    pings = track_pings(L_RIDE)
    states, accepted, _ = hy.screen_batch({}, pings)
    once = states[RIDER].distance_m

    replay, accepted_again, dropped = hy.screen_batch(states, pings)
    assert accepted_again == []
    assert {v.reason for _, v in dropped} <= {Drop.DUPLICATE, Drop.OUT_OF_ORDER, Drop.TOO_LATE}
    assert replay[RIDER].distance_m == once


def shuffled_within(pings: list[ev.GpsPing], block: int, rng: random.Random) -> list[ev.GpsPing]:
    """The first ping first, the rest shuffled inside blocks of ``block`` (a few seconds apart)."""
    out = [pings[0]]
    for i in range(1, len(pings), block):
        chunk = pings[i:i + block]
        rng.shuffle(chunk)
        out.extend(chunk)
    return out


def test_pings_shuffled_within_the_late_window_never_add_distance() -> None:
    rng = random.Random(11)
    straight = track_pings(STRAIGHT_RIDE)
    states, _, dropped = hy.screen_batch({}, shuffled_within(straight, 4, rng))
    assert dropped and {v.reason for _, v in dropped} == {Drop.OUT_OF_ORDER}
    assert states[RIDER].distance_m == pytest.approx(2000, rel=1e-6)  # straight: chords lose nothing

    clean = hy.screen_batch({}, track_pings(L_RIDE))[0][RIDER].distance_m
    for _ in range(5):
        states, _, _ = hy.screen_batch({}, shuffled_within(track_pings(L_RIDE), 4, rng))
        assert clean - 50 <= states[RIDER].distance_m <= clean + 1e-6


# --- batches -------------------------------------------------------------------------------


def test_a_batch_keeps_riders_apart_and_leaves_its_input_alone() -> None:
    other = "rider-2"
    known = {other: hy.DeviceState(rider_id=other, vehicle_type=ev.VehicleType.VAN)}
    batch = [ping(0, at(0, 0)), ping(0, at(0, 1000), rider=other), ping(10, at(100, 0)),
             ping(10, at(0, 1100), rider=other), ping(20, at(200, 0)), ping(20, at(0, 1200), rider=other)]
    states, accepted, dropped = hy.screen_batch(known, batch)

    assert [p for p, _ in accepted] == batch and dropped == []
    assert states[RIDER].distance_m == pytest.approx(200, rel=1e-6)
    assert states[other].distance_m == pytest.approx(200, rel=1e-6)
    assert states[other].vehicle_type is ev.VehicleType.VAN and states[RIDER].vehicle_type is None
    assert known[other].fix is None  # the caller's states are read, not changed


def test_a_jump_is_judged_by_the_vehicle() -> None:
    hop = [ping(0, at(0, 0)), ping(10, at(400, 0)), ping(20, at(800, 0))]  # 40 m/s
    assert reasons(feed(device(ev.VehicleType.BIKE), hop)[1])[1] is Drop.IMPOSSIBLE_JUMP
    assert all(v.accepted for v in feed(device(ev.VehicleType.CAR), hop)[1])


# --- noisy tracks --------------------------------------------------------------------------


def noisy_day(rng: random.Random) -> tuple[list[ev.GpsPing], float, float]:
    """A rider's ride with stops, as the backend receives it: GPS noise of a random size, resends,
    pings shuffled within a few seconds, inaccurate fixes, spikes kilometres off, a silence, a
    clock running an hour ahead and unreadable fixes. Returns (pings in arrival order, true path
    length, noise sigma)."""
    sigma = rng.uniform(3, 30)
    t, n, e, length = 0.0, 0.0, 0.0, 0.0
    truth: list[tuple[float, float, float]] = [(t, n, e)]
    for _ in range(rng.randint(4, 12)):
        if rng.random() < 0.4:  # at a customer's door
            for _ in range(int(rng.uniform(60, 400) // 5)):
                t += 5
                truth.append((t, n, e))
            continue
        speed = rng.uniform(2, 12)
        tn, te = n + rng.uniform(-800, 800), e + rng.uniform(-800, 800)
        d = math.hypot(tn - n, te - e)
        steps = max(1, int(d / speed // 5))
        for i in range(1, steps + 1):
            truth.append((t + d / speed * i / steps, n + (tn - n) * i / steps, e + (te - e) * i / steps))
        t, n, e, length = t + d / speed, tn, te, length + d
    silence = rng.randrange(len(truth))
    pings: list[ev.GpsPing] = []
    for i, (ts, tn, te) in enumerate(truth):
        if silence <= i < silence + 30:
            continue
        accuracy = round(abs(rng.gauss(sigma * 1.2, 2.0)) + 3, 1)
        roll = rng.random()
        if roll < 0.02:
            point, accuracy = at(tn + rng.uniform(3000, 9000), te), 10.0  # a spike that claims to be good
        elif roll < 0.05:
            point, accuracy = at(tn + rng.gauss(0, 150), te + rng.gauss(0, 150)), 250.0
        else:
            point = at(tn + rng.gauss(0, sigma), te + rng.gauss(0, sigma))
        p = ping(ts, point, accuracy=accuracy)
        pings.append(p)
        if rng.random() < 0.03:
            pings.append(p)
        if rng.random() < 0.01:
            pings.append(ping(ts + 3600, point, sent_s=ts + 1))
        if rng.random() < 0.01:
            pings.append(ping(ts, (math.nan, te)))
    arrival = shuffled_within(pings, 3, rng)
    return arrival, length, sigma


@pytest.mark.parametrize("seed", range(25))
def test_a_noisy_day_never_raises_and_never_over_counts(seed: int) -> None:
    rng = random.Random(seed)
    pings, true_length, sigma = noisy_day(rng)
    vehicle = rng.choice(list(ev.VehicleType))
    states = {RIDER: hy.DeviceState(rider_id=RIDER, vehicle_type=vehicle)}
    accepted_times: list[float] = []
    for start in range(0, len(pings), 50):  # batches, as the worker polls them
        states, accepted, _ = hy.screen_batch(states, pings[start:start + 50])
        accepted_times += [p.device_time.timestamp() for p, _ in accepted]

    assert accepted_times == sorted(set(accepted_times))  # each moment once, in order
    assert states[RIDER].distance_m <= true_length * 1.05 + 3 * sigma  # worst of 300 seeds: +1.4 sigma
