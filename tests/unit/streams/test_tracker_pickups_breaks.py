"""The tracker on a day with pickups, breaks and learned travel times: given a plan and a rider's
track, then these arrivals, statuses, ETAs, alerts and TravelTimesLearned."""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta

import pytest
from route_fixture import HUB, RIDER, T0, offset

from schemas import events as ev
from schemas import topics as tp
from streams import state
from streams.domain.tracking import alerts as al
from streams.domain.tracking import eta
from streams.domain.tracking import geofence as gf
from streams.domain.tracking import hygiene as hy
from streams.domain.tracking.tracker import STATE_FORMAT, RiderLive, Tracker, TrackerParams, events_of, route_windows

S0 = T0.timestamp()
STORE = offset(800, 0)  # a store 800 m north of the hub
DROP_A, DROP_B = offset(1500, 800), offset(800, 1500)


def stop(order_id: str, kind: ev.StopKind, point: tuple[float, float], minutes: float,
         window: tuple[float, float] | None = None) -> ev.PlannedStop:
    start, end = (None, None) if window is None else (T0 + timedelta(minutes=window[0]), T0 + timedelta(minutes=window[1]))
    return ev.PlannedStop(order_id=order_id, kind=kind, lat=point[0], lon=point[1],
                          planned_arrival=T0 + timedelta(minutes=minutes), service_time_s=120,
                          window_start=start, window_end=end)


def plan(stops: list[ev.PlannedStop], route_id: str = "route-1",
         breaks: tuple[ev.RouteBreak, ...] = ()) -> ev.RoutePlanned:
    return ev.RoutePlanned(event_id=f"{route_id}-planned", occurred_at=T0, rider_id=RIDER, route_id=route_id,
                           hub_id="hub-1", stops=tuple(stops), start=ev.GeoPoint(lat=HUB[0], lon=HUB[1]),
                           planned_start=T0, planned_end=T0 + timedelta(hours=2), distance_m=6000.0, breaks=breaks)


def two_pickups_at_one_store() -> ev.RoutePlanned:
    """Hyperlocal: both orders picked up at one store, then dropped."""
    return plan([stop("ord-a", ev.StopKind.PICKUP, STORE, 5, (0, 40)), stop("ord-b", ev.StopKind.PICKUP, STORE, 7),
                 stop("ord-a", ev.StopKind.DROP, DROP_A, 15, (0, 40)), stop("ord-b", ev.StopKind.DROP, DROP_B, 25)])


def track(legs: list[tuple[tuple[float, float], float]], start: tuple[float, float] = HUB, t0_s: float = 30.0,
          every_s: float = 5.0) -> list[ev.GpsPing]:
    """Pings every ``every_s`` along legs of (point, speed m/s): a speed drives there, 0 waits
    ``point[0]`` seconds where the rider is."""
    pings = []
    here, t = start, t0_s
    for point, speed in legs:
        if speed == 0:
            steps, step = int(point[0] // every_s), (0.0, 0.0)
            target = here
        else:
            metres = math.dist(((here[0] - HUB[0]) * 111_320, (here[1] - HUB[1]) * 108_500),
                               ((point[0] - HUB[0]) * 111_320, (point[1] - HUB[1]) * 108_500))
            steps = max(1, int(metres / speed // every_s))
            step = ((point[0] - here[0]) / steps, (point[1] - here[1]) / steps)
            target = point
        for k in range(1, steps + 1):
            lat, lon = (here[0] + step[0] * k, here[1] + step[1] * k) if speed else here
            at = T0 + timedelta(seconds=t)
            pings.append(ev.GpsPing(event_id=f"p-{len(pings)}", occurred_at=at, rider_id=RIDER, device_id="dev-1",
                                    device_time=at, lat=lat, lon=lon, accuracy_m=8.0, speed_mps=float(speed)))
            t += every_s
        here = target
    return pings


def shift(at_s: float = 0.0) -> ev.RiderShiftStarted:
    at = T0 + timedelta(seconds=at_s)
    return ev.RiderShiftStarted(event_id="shift", occurred_at=at, rider_id=RIDER, hub_id="hub-1",
                                vehicle_type=ev.VehicleType.SCOOTER, capacity_weight_kg=20.0, capacity_volume_l=40.0,
                                capacity_units=10, shift_start=at, shift_end=at + timedelta(hours=8),
                                start=ev.GeoPoint(lat=HUB[0], lon=HUB[1]))


def run(tracker: Tracker, route: ev.RoutePlanned, pings: list[ev.GpsPing], start: int = 0,
        setup: bool = True) -> list:
    out: list = []
    if setup:
        out += tracker.on_shift(shift(), "riders", 0)
        out += tracker.on_route(route, "routes", 0)
    for offset_, p in list(enumerate(pings))[start:]:
        out += tracker.on_ping(p, "gps", offset_)
    return out


SERVE = ((120.0, 0.0), 0)  # a stay of 120 s


def store_day() -> list[ev.GpsPing]:
    return track([(STORE, 6.0), ((300.0, 0.0), 0), (DROP_A, 6.0), SERVE, (DROP_B, 6.0), SERVE, (HUB, 6.0)])


# ---- pickups ---------------------------------------------------------------------------------


def test_a_pickup_arrival_is_an_arrival_of_kind_pickup_with_no_arrived_status() -> None:
    out = run(Tracker(), two_pickups_at_one_store(), store_day())
    arrivals = [e for e in events_of(out, tp.TRACKING) if isinstance(e, ev.ArrivedAtStop) and e.kind is ev.FenceKind.STOP]
    assert [(a.fence_id, a.order_id, a.stop_kind) for a in arrivals] == [
        ("ord-a/pickup", "ord-a", ev.StopKind.PICKUP), ("ord-b/pickup", "ord-b", ev.StopKind.PICKUP),
        ("ord-a", "ord-a", ev.StopKind.DROP), ("ord-b", "ord-b", ev.StopKind.DROP)]
    departures = [e for e in events_of(out, tp.TRACKING) if isinstance(e, ev.DepartedStop) and e.kind is ev.FenceKind.STOP]
    assert {(d.fence_id, d.stop_kind) for d in departures} == {
        ("ord-a/pickup", ev.StopKind.PICKUP), ("ord-b/pickup", ev.StopKind.PICKUP), ("ord-a", ev.StopKind.DROP),
        ("ord-b", ev.StopKind.DROP)}
    statuses = events_of(out, tp.INBOX)
    assert [(s.order_id, s.to_status) for s in statuses] == [("ord-a", ev.OrderStatus.ARRIVED),
                                                             ("ord-b", ev.OrderStatus.ARRIVED)]
    assert len({e.event_id for e in arrivals + departures}) == len(arrivals) + len(departures)


def test_etas_are_published_for_drops_only_and_include_the_pickup_legs() -> None:
    tracker = Tracker()
    out = run(tracker, two_pickups_at_one_store(), store_day()[:3])  # leaving the hub
    etas = events_of(out, tp.ETAS)
    assert etas and {e.order_id for e in etas} == {"ord-a", "ord-b"}
    first_a = next(e for e in etas if e.order_id == "ord-a")
    # the drop's ETA counts the ride to the store, both pickups' service and the ride on
    direct = plan([stop("ord-a", ev.StopKind.DROP, DROP_A, 15)])
    straight = eta.route_etas(eta.eta_route(direct, "scooter", {}), 0, HUB, first_a.occurred_at.timestamp(),
                              tracker.fleet.model)[0]
    assert first_a.eta_p50.timestamp() > straight.p50_s + 240
    out = run(tracker, two_pickups_at_one_store(), store_day(), start=3, setup=False)
    assert all(e.order_id in {"ord-a", "ord-b"} for e in events_of(out, tp.ETAS))


def test_two_pickups_at_one_store_are_one_visit_and_the_route_goes_on() -> None:
    tracker = Tracker()
    pings = store_day()
    at_store = next(i for i, p in enumerate(pings) if p.speed_mps == 0.0) + 10
    run(tracker, two_pickups_at_one_store(), pings[:at_store])
    r = tracker.riders[RIDER]
    assert r.eta.next_stop == 2 and r.fences.next_stop == 2  # both pickups arrived, the drop is next
    assert r.alert.progress.task is al.Task.AT_STOP and r.alert.progress.arrived.keys() == {0, 1}
    # served together: the stay is planned as both services, and learned against both
    assert [s.visit_s for s in r._eta_route.stops] == [120.0, 240.0, 120.0, 120.0]
    run(tracker, two_pickups_at_one_store(), pings, start=at_store, setup=False)
    assert r.eta.next_stop == 4
    service = tracker.fleet.model.service
    assert service[1] == pytest.approx(240.0 + 120.0 + 120.0, rel=0.01)  # planned seconds of the stays (decayed)


def test_a_pickup_at_the_hub_mid_route_is_arrived_at_after_the_hub_and_gives_no_status() -> None:
    """A rider back at the hub for more: the hub and the pickup there are both arrived at."""
    route = plan([stop("ord-a", ev.StopKind.DROP, DROP_A, 10), stop("ord-c", ev.StopKind.PICKUP, HUB, 25),
                  stop("ord-c", ev.StopKind.DROP, DROP_B, 40)])
    pings = track([(DROP_A, 6.0), SERVE, (HUB, 6.0), ((300.0, 0.0), 0), (DROP_B, 6.0), SERVE])
    tracker = Tracker()
    out = run(tracker, route, pings)
    arrivals = [(e.fence_id, e.stop_kind) for e in events_of(out, tp.TRACKING) if isinstance(e, ev.ArrivedAtStop)]
    assert [a for a in arrivals if a[0] != "hub-1"] == [("ord-a", ev.StopKind.DROP), ("ord-c/pickup", ev.StopKind.PICKUP),
                                                        ("ord-c", ev.StopKind.DROP)]
    assert ("hub-1", None) in arrivals
    assert [s.order_id for s in events_of(out, tp.INBOX)] == ["ord-a", "ord-c"]
    assert tracker.riders[RIDER].eta.next_stop == 3


def test_pickup_windows_are_not_promises() -> None:
    """The window on a pickup's stop is the order's promise at the door: no waiting and no SLA there."""
    route = two_pickups_at_one_store()
    windows = route_windows(route)
    assert set(windows) == {"ord-a"} and windows["ord-a"] == (S0, S0 + 2400)
    eta_route = eta.eta_route(route, "scooter", windows)
    assert [(s.pickup, s.window_end_s) for s in eta_route.stops] == [
        (True, math.inf), (True, math.inf), (False, S0 + 2400), (False, math.inf)]
    alert_route = al.alert_route(eta_route, HUB)
    assert dict(alert_route.index) == {"ord-a/pickup": 0, "ord-b/pickup": 1, "ord-a": 2, "ord-b": 3}
    assert alert_route.pickups == {0, 1} and alert_route.order_ids == ("ord-a", "ord-b", "ord-a", "ord-b")
    assert [gf.stop_fence_id(s) for s in route.stops] == ["ord-a/pickup", "ord-b/pickup", "ord-a", "ord-b"]
    assert [f.fence_id for f in gf.route_fences(route).fences] == ["ord-a/pickup", "ord-b/pickup", "ord-a", "ord-b",
                                                                   "hub-1"]


def test_no_waiting_at_customer_alert_at_a_store() -> None:
    route = two_pickups_at_one_store()
    tracker = Tracker()
    pings = track([(STORE, 6.0), ((1500.0, 0.0), 0)])  # 25 min at the store's counter
    out = run(tracker, route, pings)
    assert tracker.riders[RIDER].alert.progress.task is al.Task.AT_STOP
    assert "waiting_at_customer" not in {a.kind for a in events_of(out, tp.ALERTS)}
    at_door = plan([stop("ord-a", ev.StopKind.DROP, STORE, 5)])  # the same stay at a customer's door
    out = run(Tracker(), at_door, pings)
    assert "waiting_at_customer" in {a.kind for a in events_of(out, tp.ALERTS)}


def test_a_rider_on_a_pickup_route_restores_from_its_checkpoint_and_goes_on_alike() -> None:
    route = two_pickups_at_one_store()
    pings = store_day()
    whole = run(Tracker(), route, pings)
    half = next(i for i, p in enumerate(pings) if p.speed_mps == 0.0) + 30  # at the store, both pickups arrived
    first = Tracker()
    before = run(first, route, pings[:half])
    r = first.riders[RIDER]
    restored = Tracker()
    restored.riders = {RIDER: RiderLive.restore(
        state.decode("tracker-rider", state.encode("tracker-rider", r.snapshot())), (None, route))}
    restored.fleet = state.decode("tracker-fleet", state.encode(
        "tracker-fleet", state.FleetCheckpoint(first.now_s, first.fleet, STATE_FORMAT))).fleet
    restored.now_s, restored._tick_at_s = first.now_s, first._tick_at_s
    assert restored.riders[RIDER]._stop_index == r._stop_index and restored.riders[RIDER].eta.next_stop == 2
    after = run(restored, route, pings, start=half, setup=False)
    assert [o[1].event_id for o in before + after] == [o[1].event_id for o in whole]


# ---- breaks ----------------------------------------------------------------------------------

PARK = offset(1500, -1500)  # away from every stop and the hub


def break_started(at_s: float, expected_end_s: float | None = None, break_id: str | None = None) -> ev.BreakStarted:
    at = T0 + timedelta(seconds=at_s)
    return ev.BreakStarted(event_id=f"break-{at_s}", occurred_at=at, rider_id=RIDER, break_id=break_id,
                           expected_end=None if expected_end_s is None else T0 + timedelta(seconds=expected_end_s))


def break_ended(at_s: float) -> ev.BreakEnded:
    return ev.BreakEnded(event_id=f"end-{at_s}", occurred_at=T0 + timedelta(seconds=at_s), rider_id=RIDER)


def parked(minutes: float) -> list[ev.GpsPing]:
    """Loads at the hub, rides to a park 2 km away and stands there ``minutes``."""
    return track([((60.0, 0.0), 0), (PARK, 6.0), ((minutes * 60, 0.0), 0)], every_s=10.0)


def parked_at(pings: list[ev.GpsPing]) -> int:
    """The first ping standing at the park."""
    return next(i for i, p in enumerate(pings) if i > 0 and p.speed_mps == 0.0 and pings[i - 1].speed_mps)


def idle_alerts(out: list) -> list[ev.AlertRaised]:
    return [a for a in events_of(out, tp.ALERTS) if a.kind == "idle"]


def test_a_rider_standing_still_on_a_reported_break_raises_no_idle_alert_until_its_expected_end() -> None:
    route = two_pickups_at_one_store()
    pings = parked(40)
    assert idle_alerts(run(Tracker(), route, pings))  # without the break: idle
    tracker = Tracker()
    out = run(tracker, route, [])
    arrive = parked_at(pings)
    begin = pings[arrive].occurred_at.timestamp() - S0
    for i, p in enumerate(pings):
        if i == arrive:
            out += tracker.on_event(break_started(begin, expected_end_s=begin + 1200), "riders", 1)
        out += tracker.on_ping(p, "gps", i)
    idle = idle_alerts(out)
    assert len(idle) == 1  # after the break's expected end: standing still is idle again
    assert idle[0].occurred_at.timestamp() >= S0 + begin + 1200 + al.DEFAULT_PARAMS.idle_s


def test_a_break_ended_by_the_rider_resumes_the_alerts_then() -> None:
    tracker = Tracker()
    pings = parked(40)
    out = run(tracker, two_pickups_at_one_store(), [])
    arrive = parked_at(pings)
    begin = pings[arrive].occurred_at.timestamp() - S0
    for i, p in enumerate(pings):
        if i == arrive:
            out += tracker.on_event(break_started(begin), "riders", 1)  # no expected end: ends when reported
        if i == arrive + 90:  # 15 min later
            out += tracker.on_event(break_ended(begin + 900), "riders", 2)
        out += tracker.on_ping(p, "gps", i)
    idle = idle_alerts(out)
    assert len(idle) == 1 and idle[0].occurred_at.timestamp() >= S0 + begin + 900 + al.DEFAULT_PARAMS.idle_s


def test_a_silent_phone_on_a_break_is_not_offline_and_is_once_the_break_is_over() -> None:
    tracker = Tracker()
    pings = parked(2)
    out = run(tracker, two_pickups_at_one_store(), pings)
    last = pings[-1].occurred_at.timestamp()
    out += tracker.on_event(break_started(last - S0, expected_end_s=last - S0 + 1800), "riders", 1)
    for k in range(1, 60):  # the phone is silent; stream time moves on (other riders' pings)
        out += tracker.tick(last + 30 * k)
    kinds = [a.kind for a in events_of(out, tp.ALERTS)]
    assert "rider_offline" not in kinds and "device_silent" not in kinds
    for k in range(60, 80):  # past the expected end, still silent: lost
        out += tracker.tick(last + 30 * k)
    offline = [a for a in events_of(out, tp.ALERTS) if a.kind == "rider_offline"]
    assert len(offline) == 1 and offline[0].occurred_at.timestamp() >= last + 1800
    assert [o[2] for o in out if o[0] is tp.DISPATCH_QUEUE and o[1] is offline[0]] == ["hub-1"]


def test_a_planned_break_keeps_idle_and_offline_quiet_without_a_report() -> None:
    pings = parked(40)
    arrive = pings[parked_at(pings)].occurred_at
    planned = ev.RouteBreak(break_id="lunch", start=arrive, end=arrive + timedelta(minutes=30))
    route = dataclasses.replace(two_pickups_at_one_store(), breaks=(planned,))
    out = run(Tracker(), route, pings)
    idle = idle_alerts(out)
    assert len(idle) == 1 and idle[0].occurred_at >= planned.end  # only once the planned break is over
    tracker = Tracker()
    out = run(tracker, route, [p for p in pings if p.occurred_at <= arrive])  # the phone goes quiet at the park
    for k in range(1, 55):
        out += tracker.tick(arrive.timestamp() + 30 * k)
    assert not [a for a in events_of(out, tp.ALERTS) if a.kind in {"rider_offline", "device_silent"}]
    assert tracker.riders[RIDER].alert.progress.task is al.Task.DRIVING  # not on a break: none was reported


def test_a_reported_planned_break_without_an_expected_end_lasts_as_planned() -> None:
    route = dataclasses.replace(two_pickups_at_one_store(), breaks=(
        ev.RouteBreak(break_id="lunch", start=T0 + timedelta(hours=1), end=T0 + timedelta(hours=1, minutes=20)),))
    tracker = Tracker()
    run(tracker, route, [])
    tracker.on_event(break_started(600, break_id="lunch"), "riders", 1)
    assert tracker.riders[RIDER].alert.progress.break_until_s == S0 + 600 + 1200
    tracker.on_event(break_started(700, break_id="other"), "riders", 2)  # unplanned: the cap
    assert tracker.riders[RIDER].alert.progress.break_until_s == S0 + 700 + TrackerParams().break_max_s


def test_break_expected_end_ends_the_break_on_tick() -> None:
    device = hy.DeviceState(rider_id=RIDER, heard_s=S0 + 100)
    state = al.start_shift(al.AlertState(rider_id=RIDER), ev.VehicleType.SCOOTER, S0)
    state = al.start_break(state, S0 + 100, S0 + 700)
    assert state.progress.task is al.Task.ON_BREAK
    state, _ = al.on_tick(state, device, S0 + 650)
    assert state.progress.task is al.Task.ON_BREAK
    state, _ = al.on_tick(state, device, S0 + 701)
    assert state.progress.task is al.Task.AT_HUB and state.progress.since_s == S0 + 700
    again = al.start_break(al.start_break(state, S0 + 800, S0 + 900), S0 + 850, S0 + 1000)
    assert again.progress.break_until_s == S0 + 1000 and again.progress.since_s == S0 + 800


# ---- learned travel times --------------------------------------------------------------------


def legs(model: eta.SpeedModel, ratio: float, n: int = 40, at_s: float = S0,
         model_ratio: float | None = None) -> eta.SpeedModel:
    """``n`` scooter legs arriving from ``at_s`` on, ``ratio`` times as long as a planner said and
    ``model_ratio`` (default: the same) times as long as the cell model said."""
    actual = 300.0 * ratio
    return eta.learn_legs(model, [eta.LegSample(vehicle_type="scooter", at_s=at_s + i, plan_s=300.0,
                                                model_s=actual / (ratio if model_ratio is None else model_ratio),
                                                actual_s=actual, rider_id=RIDER) for i in range(n)])


def test_learned_slower_legs_lower_every_hours_speed() -> None:
    prior = eta.SpeedModel()
    before = eta.travel_times(prior, "scooter", S0)
    profile = prior.profiles["scooter"]
    assert before.legs == 0 and before.service_factor == 1.0
    assert before.leg_speed_mps == tuple(round(profile.speed_mps * f / profile.circuity, 4)
                                         for f in profile.hourly_factors)
    slow = eta.travel_times(legs(prior, 1.5), "scooter", S0)
    fast = eta.travel_times(legs(prior, 0.8), "scooter", S0)
    assert slow.legs == 40 and all(s < b < f for s, b, f in zip(slow.leg_speed_mps, before.leg_speed_mps,
                                                                fast.leg_speed_mps, strict=True))
    assert eta.travel_times(legs(prior, 1.5), "car", S0) == eta.travel_times(prior, "car", S0)  # another vehicle


def test_planner_speeds_follow_legs_against_the_planners_timing_not_the_cell_models() -> None:
    """Legs the cell model timed right but a planner (no cells) would time 40 % short: the
    planner's speeds still slow down; legs the planner timed right leave them where they were."""
    prior = eta.SpeedModel()
    before = eta.travel_times(prior, "scooter", S0)
    cells_right = eta.travel_times(legs(prior, 1.4, n=200, model_ratio=1.0), "scooter", S0)
    plan_right = eta.travel_times(legs(prior, 1.0, n=200, model_ratio=0.7), "scooter", S0)
    assert all(c < 0.8 * b for c, b in zip(cells_right.leg_speed_mps, before.leg_speed_mps, strict=True))
    assert plan_right.leg_speed_mps == before.leg_speed_mps


def test_an_hours_slow_legs_slow_that_hour_more_than_the_others() -> None:
    prior = eta.SpeedModel()
    midnight = S0 - S0 % 86_400
    # a day of on-time legs (leaving at half past), but in one hour: there they are 50 % long
    utc = 15
    day = prior
    for h in range(8, 20):
        if h != utc:
            day = legs(day, 1.0, n=30, at_s=midnight + h * 3600 + 1800 + 300)
    slow = legs(day, 1.5, n=30, at_s=midnight + utc * 3600 + 1800 + 450)
    now = midnight + 20 * 3600
    before, after = eta.travel_times(day, "scooter", now), eta.travel_times(slow, "scooter", now)
    assert after.leg_speed_mps[utc] < 0.8 * before.leg_speed_mps[utc]
    others = [a / b for h, (a, b) in enumerate(zip(after.leg_speed_mps, before.leg_speed_mps, strict=True)) if h != utc]
    assert min(others) > 0.9  # the rest lean on all hours' legs a little, not on that hour's


def test_plan_seconds_is_how_a_planner_times_a_leg_from_the_published_speeds() -> None:
    """The leg factor is learned against ``plan_seconds``; it must be the planner's arithmetic, else
    the factor would correct a figure nobody plans with."""
    model = eta.SpeedModel()
    for at_s in (S0, S0 + 5 * 3600, S0 + 11 * 3600):
        published = eta.travel_times(model, "van", at_s).leg_speed_mps[int(at_s // 3600) % 24]
        assert model.plan_seconds("van", 2_000.0, at_s) == pytest.approx(2_000.0 / published, rel=1e-3)


def test_a_slow_hour_is_slowest_in_that_hour_and_slows_the_hours_not_seen_in_the_priors_shape() -> None:
    """A city slower than the prior in the hour seen is slower in the hours a plan made now will
    drive in too, though less: the hours not seen keep the prior's shape at the level learned."""
    hour = 8  # UTC
    model = eta.learn_speeds(eta.SpeedModel(), [
        eta.SpeedSample(vehicle_type="scooter", cell=0, at_s=S0 - 3600 + 60 * i, speed_mps=3.0, weight_s=60.0)
        for i in range(30)])  # T0 is 09:00 UTC: these are 08:xx
    learned = eta.travel_times(model, "scooter", S0)
    prior = eta.travel_times(eta.SpeedModel(), "scooter", S0)
    seen = learned.leg_speed_mps[hour] / prior.leg_speed_mps[hour]
    others = {round(a / b, 3) for h, (a, b) in enumerate(zip(learned.leg_speed_mps, prior.leg_speed_mps, strict=True))
              if h != hour}
    assert len(others) == 1  # one level for every hour not seen: the prior's shape kept
    assert seen < others.pop() < 1.0
    assert eta.travel_times(eta.SpeedModel(), "bike", S0) == eta.travel_times(model, "bike", S0)  # scooters only
    slow_service = eta.learn_services(model, [eta.ServiceSample(at_s=S0, planned_s=120.0, actual_s=240.0)] * 30)
    assert eta.travel_times(slow_service, "scooter", S0).service_factor > 1.5


def test_hours_are_utc_when_the_city_is_not() -> None:
    params = eta.SpeedParams(utc_offset_s=5.5 * 3600)
    model = eta.SpeedModel(params=params)
    profile = model.profiles["car"]
    speeds = eta.travel_times(model, "car", S0).leg_speed_mps
    # 03:30 UTC is 09:00 local, a rush hour: UTC hour 3 carries the local 09:00 factor
    assert speeds[3] == round(profile.speed_mps * profile.hourly_factors[9] / profile.circuity, 4)


def test_travel_times_moved_means_beyond_the_share() -> None:
    base = eta.TravelTimes((5.0,) * 24, 1.0, 10)
    assert not eta.travel_times_moved(base, base._replace(legs=50), 0.02)
    assert not eta.travel_times_moved(base, eta.TravelTimes((5.05,) * 24, 1.01, 11), 0.02)
    assert eta.travel_times_moved(base, eta.TravelTimes((5.0,) * 23 + (4.8,), 1.0, 11), 0.02)
    assert eta.travel_times_moved(base, base._replace(service_factor=1.05), 0.02)
    paced = base._replace(rider_factors=(("r1", 1.2),))
    assert eta.travel_times_moved(base, paced, 0.02)  # a rider's pace is new
    assert not eta.travel_times_moved(paced, paced._replace(rider_factors=(("r1", 1.21),)), 0.02)
    assert eta.travel_times_moved(paced, paced._replace(rider_factors=(("r1", 1.3),)), 0.02)


def test_the_tracker_publishes_learned_travel_times_when_they_move_at_most_every_period() -> None:
    tracker = Tracker(TrackerParams(travel_times_every_s=600.0))
    run(tracker, two_pickups_at_one_store(), [])
    other = dataclasses.replace(two_pickups_at_one_store(), rider_id="rider-2", route_id="route-2", hub_id="hub-2")
    tracker.on_route(other, "routes", 0)
    assert events_of(tracker.tick(S0 + 100), tp.TRAVEL_TIMES) == []  # nothing learned: nothing to say
    tracker.fleet.model = legs(tracker.fleet.model, 1.4, at_s=S0 + 100)
    out = tracker.tick(S0 + 200)
    [learned] = events_of(out, tp.TRAVEL_TIMES)
    assert learned.vehicle_type is ev.VehicleType.SCOOTER and learned.legs == 40 and len(learned.leg_speed_mps) == 24
    assert learned.leg_speed_mps == eta.travel_times(tracker.fleet.model, "scooter", S0 + 200).leg_speed_mps
    assert sorted((o[2], o[1] is learned) for o in out if o[0] is tp.DISPATCH_QUEUE) == [("hub-1", True),
                                                                                         ("hub-2", True)]
    tracker.fleet.model = legs(tracker.fleet.model, 3.0, at_s=S0 + 300)
    assert events_of(tracker.tick(S0 + 500), tp.TRAVEL_TIMES) == []  # moved, but within the period
    [again] = events_of(tracker.tick(S0 + 800), tp.TRAVEL_TIMES)
    assert all(a < b for a, b in zip(again.leg_speed_mps, learned.leg_speed_mps, strict=True))
    assert again.event_id != learned.event_id
    # one more leg like the last ones, leaving in their hour: hardly a change
    tracker.fleet.model = legs(tracker.fleet.model, 3.0, n=1, at_s=S0 + 850)
    assert events_of(tracker.tick(S0 + 1500), tp.TRAVEL_TIMES) == []


def test_the_tracker_publishes_the_pace_of_its_riders_of_each_type_for_planners() -> None:
    tracker = Tracker(TrackerParams(travel_times_every_s=600.0))
    tracker.on_event(shift(), "riders", 0)  # RIDER rides a scooter
    others = [eta.LegSample(vehicle_type="scooter", at_s=S0 + i, model_s=300.0, actual_s=300.0, rider_id=f"o{i % 4}")
              for i in range(120)]
    tracker.fleet.model = eta.learn_legs(tracker.fleet.model, others)
    tracker.fleet.model = legs(tracker.fleet.model, 1.5, at_s=S0 + 200)  # RIDER: 50 % slower on every leg
    [learned] = events_of(tracker.tick(S0 + 300), tp.TRAVEL_TIMES)
    [mine] = learned.rider_factors  # the others are not on shift here: nothing is said of them
    assert mine.rider_id == RIDER and 1.2 < mine.travel_factor < 1.5  # slower, shrunk toward the fleet


def test_etas_during_a_break_start_at_its_end_and_the_break_is_not_learned_as_a_slow_leg() -> None:
    route = plan([stop("ord-a", ev.StopKind.DROP, DROP_A, 15)])
    halfway = ((HUB[0] + DROP_A[0]) / 2, (HUB[1] + DROP_A[1]) / 2)
    pings = track([((60.0, 0.0), 0), (halfway, 6.0), ((1200.0, 0.0), 0), (DROP_A, 6.0), SERVE])
    stopped = parked_at(pings)
    begin = pings[stopped].occurred_at.timestamp()
    resume = next(i for i in range(stopped, len(pings)) if pings[i].speed_mps)  # 20 min later

    def ride(on_break: bool) -> tuple[Tracker, list]:
        tracker = Tracker()
        out = run(tracker, route, [])
        for i, p in enumerate(pings):
            if on_break and i == stopped:
                out += tracker.on_event(break_started(begin - S0, expected_end_s=begin - S0 + 1200), "riders", 1)
            if on_break and i == resume:
                out += tracker.on_event(break_ended(p.occurred_at.timestamp() - S0), "riders", 2)
            out += tracker.on_ping(p, "gps", i)
        return tracker, out

    rested, out = ride(True)
    during = [e for e in events_of(out, tp.ETAS) if begin <= e.occurred_at.timestamp() < begin + 600]
    assert during and all(e.eta_p50.timestamp() > begin + 1200 for e in during)  # goes on after the break
    [leg] = rested.fleet.model.legs.values()
    assert leg[0] / leg[1] < 1.5  # the leg as ridden: the 20 min break is no travel
    idle, _ = ride(False)
    [slow] = idle.fleet.model.legs.values()
    assert slow[0] / slow[1] > 2.0  # unreported, the same stop is a slow leg


def test_only_the_part_of_a_break_within_the_leg_is_taken_out_of_it() -> None:
    route = eta.eta_route(plan([stop("ord-a", ev.StopKind.DROP, DROP_A, 15)]), "scooter", {})
    leg = eta.start_route(route, S0 + 600)  # left at 600 s
    assert eta.paused(leg, S0 + 300, S0 + 900).leg_from_s == S0 + 900  # the 300 s after leaving
    assert eta.paused(leg, S0, S0 + 500) is leg  # over before the leg began
    at_stop = dataclasses.replace(leg, at_stop_since_s=S0 + 700)
    moved = eta.paused(at_stop, S0 + 800, S0 + 1000)
    assert (moved.leg_from_s, moved.at_stop_since_s) == (S0 + 800, S0 + 900)
