"""Rider alerts: given a rider's task and these pings, estimates and ticks, then these alerts, once
per episode, and again only after the episode ended and re-armed."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest

from schemas import events as ev
from solver.geo import M_PER_DEG
from streams.domain.tracking import alerts as al
from streams.domain.tracking import eta
from streams.domain.tracking import geofence as gf
from streams.domain.tracking import hygiene as hy

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
S0 = T0.timestamp()
HUB = (12.9716, 77.5946)
RIDER = "rider-1"
K = al.AlertKind
P = al.AlertParams()


def offset(north_m: float, east_m: float) -> tuple[float, float]:
    lat, lon = HUB
    return lat + north_m / M_PER_DEG, lon + east_m / (M_PER_DEG * math.cos(math.radians(lat)))


# hub -> 1 km north -> 1 km east -> 1 km north; windows end 30, 45, 60 min after T0
STOPS = [(1000, 0), (1000, 1000), (2000, 1000)]
WINDOWS = {f"ord-{i + 1}": (S0, S0 + 60 * (30 + 15 * i)) for i in range(len(STOPS))}


def plan() -> ev.RoutePlanned:
    stops = tuple(ev.PlannedStop(order_id=f"ord-{i + 1}", kind=ev.StopKind.DROP, lat=offset(*p)[0], lon=offset(*p)[1],
                                 planned_arrival=T0 + timedelta(minutes=10 * (i + 1)), service_time_s=120)
                  for i, p in enumerate(STOPS))
    return ev.RoutePlanned(event_id="planned", occurred_at=T0, rider_id=RIDER, route_id="route-1", hub_id="hub-1",
                           stops=stops, start=ev.GeoPoint(lat=HUB[0], lon=HUB[1]), planned_start=T0,
                           planned_end=T0 + timedelta(hours=1), distance_m=4000.0)


ROUTE = al.alert_route(eta.eta_route(plan(), ev.VehicleType.SCOOTER, WINDOWS), HUB)


def fence(kind: type[gf.Arrival] | type[gf.Departure], fence_id: str, t_s: float) -> gf.FenceEvent:
    fk = gf.FenceKind.HUB if fence_id == "hub-1" else gf.FenceKind.STOP
    at = T0 + timedelta(seconds=t_s)
    if kind is gf.Arrival:
        return gf.Arrival(rider_id=RIDER, route_id="route-1", fence_id=fence_id, kind=fk, at=at, lat=0.0, lon=0.0,
                          confidence=1.0, source_ping_id="p")
    return gf.Departure(rider_id=RIDER, route_id="route-1", fence_id=fence_id, kind=fk, at=at, confidence=1.0,
                        source_ping_id="p")


def on_the_road(vehicle: ev.VehicleType = ev.VehicleType.SCOOTER, planned: bool = True) -> al.AlertState:
    """On shift, route planned (unless not), left the hub at T0 heading to stop 1."""
    state = al.start_shift(al.AlertState(rider_id=RIDER), vehicle, S0 - 600)
    if planned:
        state = al.start_route(state, ROUTE, S0 - 300)
    return al.on_fence(state, fence(gf.Departure, "hub-1", 0))


class Rider:
    """Pings through hygiene, then the accepted ones into the alerts."""

    def __init__(self, state: al.AlertState, vehicle: ev.VehicleType = ev.VehicleType.SCOOTER) -> None:
        self.state = state
        self.device = hy.DeviceState(rider_id=RIDER, vehicle_type=vehicle)
        self.seq = 0

    def ping(self, t_s: float, north_m: float, east_m: float, speed: float | None = None) -> list[al.Alert]:
        self.seq += 1
        lat, lon = offset(north_m, east_m)
        at = T0 + timedelta(seconds=t_s)
        p = ev.GpsPing(event_id=f"p-{self.seq}", occurred_at=at, rider_id=RIDER, device_id="dev-1", device_time=at,
                       lat=lat, lon=lon, accuracy_m=5.0, speed_mps=speed)
        self.device, verdict = hy.screen(self.device, p)
        if not verdict.accepted:
            return []
        self.state, out = al.on_ping(self.state, self.device, speed)
        return list(out)

    def path(self, points: Iterable[tuple[float, float, float]], speed: float | None = None) -> list[al.Alert]:
        return [a for t, n, e in points for a in self.ping(t, n, e, speed)]

    def tick(self, t_s: float) -> list[al.Alert]:
        self.state, out = al.on_tick(self.state, self.device, S0 + t_s)
        return list(out)

    def fence(self, kind: type[gf.Arrival] | type[gf.Departure], fence_id: str, t_s: float) -> None:
        self.state = al.on_fence(self.state, fence(kind, fence_id, t_s))


def kinds(alerts: Iterable[al.Alert]) -> list[str]:
    return [a.kind for a in alerts]


def north(t_from: float, t_to: float, speed: float, start_north: float = 0.0, every: float = 5.0,
          east: float = 0.0) -> list[tuple[float, float, float]]:
    n = int((t_to - t_from) / every)
    return [(t_from + k * every, start_north + speed * k * every, east) for k in range(n + 1)]


def still(t_from: float, t_to: float, north_m: float, east_m: float, every: float = 10.0) -> list[tuple[float, float, float]]:
    """Standing still with a few metres of GPS jitter."""
    n = int((t_to - t_from) / every)
    return [(t_from + k * every, north_m + 3.0 * math.sin(k), east_m + 3.0 * math.cos(1.7 * k)) for k in range(n + 1)]


# ---- overspeed -----------------------------------------------------------------------------


def test_sustained_overspeed_fires_once_with_the_vehicle_limit_in_the_message() -> None:
    rider = Rider(on_the_road())
    out = rider.path(north(0, 60, 20.0), speed=20.0)  # 72 km/h on a scooter (limit 60)
    assert kinds(out) == [K.OVERSPEED]
    first = out[0]
    assert first.at_s == S0 + 10  # the third fast fix, 10 s after the first
    assert first.severity is ev.Severity.WARNING and first.subject_id == RIDER and first.task is al.Task.DRIVING
    assert "72 km/h" in first.message and "limit 60 km/h" in first.message and "heading to stop 1" in first.message


def test_a_gps_speed_spike_is_not_overspeed() -> None:
    rider = Rider(on_the_road(planned=False))
    pts = north(0, 120, 10.0)
    out = []
    for k, (t, n, e) in enumerate(pts):
        spike = k in (5, 6, 15)  # two fixes in a row and a lone one: never three
        out += rider.ping(t, n, e, speed=40.0 if spike else 10.0)
    assert out == []
    assert rider.state.watch == al.Watch()  # nothing pending after the calm fixes
    # sparse fixes: two spiky ones in a row already span 15 s, still not three
    rider = Rider(on_the_road(planned=False))
    speeds = [10.0, 10.0, 40.0, 40.0, 10.0, 10.0]
    assert [a for k, v in enumerate(speeds) for a in rider.ping(15 * k, 150 * k, 0, v)] == []


@pytest.mark.parametrize(("vehicle", "speed", "fires"), [
    (ev.VehicleType.BIKE, 8.0, True),  # 28.8 km/h > 25
    (ev.VehicleType.BIKE, 6.5, False),
    (ev.VehicleType.CAR, 20.0, False),  # 72 km/h < 80
    (ev.VehicleType.VAN, 20.0, True),  # 72 km/h > 70
])
def test_the_limit_depends_on_the_vehicle(vehicle: ev.VehicleType, speed: float, fires: bool) -> None:
    rider = Rider(on_the_road(vehicle, planned=False), vehicle)
    assert kinds(rider.path(north(0, 60, speed), speed=speed)) == ([K.OVERSPEED] if fires else [])


def test_overspeed_ends_after_calm_fixes_and_rearms_only_after_the_rearm_delay() -> None:
    rider = Rider(on_the_road(planned=False))
    fast = [(0, 30), (120, 160), (700, 740)]
    out: list[tuple[float, list[al.Alert]]] = []
    position = 0.0
    for t in range(0, 800, 5):
        speed = 20.0 if any(a <= t <= b for a, b in fast) else 10.0
        position += 5 * speed
        out.append((t, rider.ping(t, position, 0, speed)))
        if t in (35, 40):
            assert K.OVERSPEED in rider.state.raised  # one or two calm fixes do not end it...
        if t == 45:
            assert K.OVERSPEED not in rider.state.raised  # ...three do
    fired = [(t, kinds(a)) for t, a in out if a]
    # the second fast stretch is a new episode but too soon after the first: a hovering rider
    # gets no second alert within rearm_s; the third one is after it
    assert fired == [(10, [K.OVERSPEED]), (710, [K.OVERSPEED])]


def test_fixes_without_device_speed_neither_count_nor_calm() -> None:
    rider = Rider(on_the_road())
    assert rider.ping(0, 0, 0, 20.0) == [] and rider.ping(5, 100, 0, 20.0) == []
    assert rider.ping(10, 200, 0, None) == []
    assert kinds(rider.ping(15, 300, 0, 20.0)) == [K.OVERSPEED]


# ---- idle and waiting at the customer -------------------------------------------------------


def test_standing_still_away_from_stops_is_idle_once_then_ends_when_moving() -> None:
    rider = Rider(on_the_road())
    rider.path(north(0, 30, 10.0))  # 300 m up the first leg
    out = rider.path(still(40, 600, 300, 0))
    assert kinds(out) == [K.IDLE]
    assert out[0].severity is ev.Severity.WARNING
    assert 300 <= out[0].at_s - (S0 + 30) <= 320  # ~5 min after the rider stopped
    assert rider.path(north(610, 650, 8.0, start_north=300)) == []
    assert K.IDLE not in rider.state.raised
    # stopping again much later is a new episode
    assert kinds(rider.path(still(700, 1400, 620, 0))) == [K.IDLE]


def test_waiting_at_the_customer_is_not_idle_and_is_a_softer_alert_later() -> None:
    rider = Rider(on_the_road())
    rider.path(north(0, 100, 10.0))
    rider.fence(gf.Arrival, "ord-1", 100)
    out = rider.path(still(110, 1500, 1000, 0))
    out += [a for t in range(110, 1500, 30) for a in rider.tick(t)]
    assert kinds(out) == [K.WAITING_AT_CUSTOMER]
    waiting = out[0]
    assert waiting.severity is ev.Severity.INFO and waiting.order_id == "ord-1" and waiting.task is al.Task.AT_STOP
    assert waiting.at_s - (S0 + 100) >= P.waiting_s
    assert "at stop 1 (order ord-1)" in waiting.message


def test_no_waiting_alert_once_the_pod_is_in_nor_idle_while_still_at_the_stop() -> None:
    rider = Rider(on_the_road())
    rider.path(north(0, 95, 10.5))
    rider.fence(gf.Arrival, "ord-1", 100)
    rider.state = al.stop_closed(rider.state, "ord-1", S0 + 200)
    out = rider.path(still(100, 1500, 1000, 0))  # lingering at a closed stop: no longer "near an open stop"
    out += [a for t in range(110, 1500, 60) for a in rider.tick(t)]
    assert out == []


def test_departure_ends_waiting_and_a_new_stop_can_wait_again() -> None:
    rider = Rider(on_the_road())
    rider.fence(gf.Arrival, "ord-1", 100)
    rider.ping(1000, 1000, 0)  # the device is alive
    assert kinds(rider.tick(1100)) == [K.WAITING_AT_CUSTOMER]
    rider.fence(gf.Departure, "ord-1", 1200)
    assert K.WAITING_AT_CUSTOMER not in rider.state.raised
    assert rider.state.progress.target == 1
    rider.fence(gf.Arrival, "ord-2", 1400)
    rider.ping(1490, 1000, 1000)
    assert rider.tick(1500) == []
    rider.ping(1400 + P.waiting_s - 10, 1000, 1000)
    assert kinds(rider.tick(1400 + P.waiting_s)) == [K.WAITING_AT_CUSTOMER]


def test_standing_near_an_open_stop_before_the_fence_says_arrived_is_not_idle() -> None:
    rider = Rider(on_the_road())
    rider.path(north(0, 90, 10.0))
    assert rider.path(still(100, 900, 900, 30)) == []  # 100 m short of stop 1, parked


def test_a_break_is_not_idle_and_the_idle_clock_restarts_after_it() -> None:
    rider = Rider(on_the_road())
    rider.path(north(0, 30, 10.0))
    rider.state = al.start_break(rider.state, S0 + 40)
    assert rider.path(still(40, 1800, 300, 0)) == []
    rider.state = al.end_break(rider.state, S0 + 1800)
    assert rider.state.progress.task is al.Task.DRIVING
    assert rider.path(still(1810, 2000, 300, 0)) == []  # not 30 minutes idle at once
    assert kinds(rider.path(still(2010, 2200, 300, 0))) == [K.IDLE]


# ---- route deviation -----------------------------------------------------------------------


def test_driving_the_planned_route_through_its_stops_is_never_a_deviation() -> None:
    rider = Rider(on_the_road())
    out = rider.path(north(0, 100, 10.0))
    rider.fence(gf.Arrival, "ord-1", 100)
    out += rider.path(still(110, 200, 1000, 0))  # at the stop, on the corridor
    rider.fence(gf.Departure, "ord-1", 200)
    out += rider.path([(200 + 5 * k, 1000 + 40 * math.sin(k / 3), 10 * k * 5) for k in range(21)])  # wobbly, east
    assert out == []


def test_leaving_the_corridor_for_minutes_is_one_deviation_that_ends_on_return() -> None:
    rider = Rider(on_the_road())
    out = rider.path(north(0, 20, 10.0))  # 200 m north
    out += rider.path([(25 + 5 * k, 200, 50 * k) for k in range(1, 20)])  # east, off the hub -> stop 1 line
    out += rider.path(still(125, 400, 200, 950))
    assert kinds(out) == [K.ROUTE_DEVIATION]
    assert "off the planned corridor" in out[0].message and out[0].severity is ev.Severity.WARNING
    # near the edge (inside the half-width, not well inside) the episode neither ends nor repeats
    assert rider.path([(400 + 5 * k, 200, 950 - 60 * k) for k in range(1, 11)] + [(455, 200, 320), (460, 200, 320)]) == []
    assert K.ROUTE_DEVIATION in rider.state.raised
    assert rider.path([(460 + 5 * k, 200, 320 - 20 * k) for k in range(1, 11)]) == []
    assert K.ROUTE_DEVIATION not in rider.state.raised


def test_a_short_excursion_is_not_a_deviation() -> None:
    rider = Rider(on_the_road())
    out = rider.path(north(0, 20, 10.0))
    out += rider.path([(25, 200, 250), (30, 200, 500), (35, 200, 550), (40, 200, 400), (45, 200, 200), (50, 200, 0)])
    out += rider.path(north(55, 100, 10.0, start_north=200))
    assert out == []


def test_the_corridor_widens_with_the_leg_and_includes_the_next_leg() -> None:
    def side(north_m: float, east_m: float, origin: int = 0, target: int = 0) -> int:
        return al._off_corridor(ROUTE, origin, target, *offset(north_m, east_m), 5.0, P)

    # 1 km leg: half-width max(300, 0.35 x 1000) + 5 m accuracy = 355 m; back inside at 0.8 of it
    assert (side(500, 280), side(500, 340), side(500, 400)) == (-1, 0, 1)
    # beyond stop 1, along the leg to stop 2: inside; past the next leg: off
    assert side(1100, 700) == -1 and side(2500, 0) == 1
    # after stop 3 the corridor leads back to the hub
    assert side(1000, 500, origin=3, target=-1) == -1 and side(0, 2000, origin=3, target=-1) == 1
    # a skipped stop: the leg runs straight to the next open one
    assert side(1000, 500, origin=0, target=1) == -1


# ---- delay risk and SLA ----------------------------------------------------------------------


def estimate(order: str, now_s: float, p50_min: float, p90_min: float) -> eta.StopEta:
    i = ROUTE.index[order]
    return eta.StopEta(order, i, S0 + now_s, 0.0, S0 + 60 * p50_min, S0 + 60 * p90_min)


def test_delay_risk_fires_once_when_the_p90_passes_the_window_and_rearms() -> None:
    state = on_the_road()
    state, out = al.on_etas(state, [estimate("ord-1", 60, 20, 28), estimate("ord-2", 60, 30, 40)])
    assert out == ()
    state, out = al.on_etas(state, [estimate("ord-1", 120, 25, 33)])  # window ends at 30 min
    assert kinds(out) == [K.DELAY_RISK]
    risk = out[0]
    assert risk.severity is ev.Severity.WARNING and risk.order_id == "ord-1" and risk.subject_id == "ord-1"
    assert risk.key == "delay_risk:ord-1" and "3 min past" in risk.message
    state, out = al.on_etas(state, [estimate("ord-1", 180, 26, 34)])
    assert out == ()  # same episode
    state, out = al.on_etas(state, [estimate("ord-1", 240, 24, 29.5)])
    assert out == () and "delay_risk:ord-1" in state.raised  # inside, but not by the clear margin: no flapping
    state, out = al.on_etas(state, [estimate("ord-1", 300, 20, 27)])
    assert out == () and "delay_risk:ord-1" not in state.raised
    state, out = al.on_etas(state, [estimate("ord-1", 400, 25, 33)])
    assert out == ()  # too soon after the last episode
    state, out = al.on_etas(state, [estimate("ord-1", 300 + P.rearm_s, 27, 36)])
    assert kinds(out) == [K.DELAY_RISK]


def test_delay_risk_is_critical_when_the_p50_is_late_or_the_margin_large() -> None:
    state, out = al.on_etas(on_the_road(), [estimate("ord-1", 60, 31, 40), estimate("ord-2", 60, 30, 62)])
    assert [a.severity for a in out] == [ev.Severity.CRITICAL, ev.Severity.CRITICAL]


def test_no_delay_risk_for_a_stop_arrived_at_or_closed_or_off_shift() -> None:
    state = on_the_road()
    state = al.on_fence(state, fence(gf.Arrival, "ord-1", 600))
    state = al.stop_closed(state, "ord-2", S0 + 600)
    _, out = al.on_etas(state, [estimate("ord-1", 700, 35, 40), estimate("ord-2", 700, 50, 60)])
    assert out == ()
    _, out = al.on_etas(al.end_shift(on_the_road(), S0), [estimate("ord-3", 60, 70, 80)])
    assert out == ()


def test_sla_breach_fires_once_when_the_window_ends_without_delivery() -> None:
    rider = Rider(on_the_road())
    rider.ping(0, 0, 0)
    assert [a for t in range(60, 1800, 60) for a in rider.tick(t) if a.kind is K.SLA_BREACH] == []
    rider.ping(1790, 10, 0)
    out = [a for t in range(1801, 2000, 30) for a in rider.tick(t)]
    assert kinds(out) == [K.SLA_BREACH]
    assert out[0].order_id == "ord-1" and out[0].severity is ev.Severity.CRITICAL
    rider.state = al.stop_closed(rider.state, "ord-1", S0 + 2000)
    assert "sla_breach:ord-1" not in rider.state.raised
    assert [a for a in rider.tick(2010) if a.kind is K.SLA_BREACH] == []


def test_sla_breach_of_a_later_stop_whose_window_ends_first() -> None:
    # windows need not end in stop order: the tick's "no window ended yet" shortcut takes the earliest
    windows = {"ord-1": (S0, S0 + 3600.0), "ord-2": (S0, S0 + 1200.0), "ord-3": (S0, S0 + 3600.0)}
    route = al.alert_route(eta.eta_route(plan(), ev.VehicleType.SCOOTER, windows), HUB)
    state = al.on_fence(al.start_route(on_the_road(planned=False), route, S0), fence(gf.Departure, "hub-1", 0))
    device = hy.DeviceState(rider_id=RIDER, heard_s=S0 + 1190)
    assert al.on_tick(state, device, S0 + 1190)[1] == ()
    _, out = al.on_tick(state, device, S0 + 1210)
    assert kinds(out) == [K.SLA_BREACH] and out[0].order_id == "ord-2"


def test_arriving_within_the_window_keeps_the_promise_while_the_attempt_goes_on() -> None:
    state = al.on_fence(on_the_road(), fence(gf.Arrival, "ord-1", 1700))
    device = hy.DeviceState(rider_id=RIDER, heard_s=S0 + 1900)
    _, out = al.on_tick(state, device, S0 + 1900)
    assert out == ()


# ---- device silent, off shift, the event ---------------------------------------------------


def test_a_silent_device_alerts_once_by_task_and_ends_when_heard() -> None:
    rider = Rider(on_the_road())
    rider.ping(0, 0, 0)
    assert rider.tick(60) == []
    out = rider.tick(130) + rider.tick(200)
    assert kinds(out) == [K.DEVICE_SILENT] and out[0].severity is ev.Severity.CRITICAL  # out on the route
    rider.ping(210, 100, 0)
    assert rider.tick(215) == [] and K.DEVICE_SILENT not in rider.state.raised
    # at the hub it matters less
    at_hub = al.on_fence(on_the_road(), fence(gf.Arrival, "hub-1", 0))
    _, out = al.on_tick(at_hub, hy.DeviceState(rider_id=RIDER, heard_s=S0), S0 + 300)
    assert [a.severity for a in out] == [ev.Severity.WARNING]
    # on a break it may be quiet
    _, out = al.on_tick(al.start_break(on_the_road(), S0), hy.DeviceState(rider_id=RIDER, heard_s=S0), S0 + 900)
    assert out == ()


def test_a_rider_silent_five_minutes_out_on_the_route_is_offline_until_the_next_fix() -> None:
    rider = Rider(on_the_road())
    rider.ping(0, 0, 0)
    assert kinds(rider.tick(130)) == [K.DEVICE_SILENT]
    assert rider.tick(290) == []  # silent, not yet offline
    out = rider.tick(310) + rider.tick(400)
    assert kinds(out) == [K.RIDER_OFFLINE] and out[0].severity is ev.Severity.CRITICAL
    assert "5 min" in out[0].message
    back = al.back_online(rider.state, S0 + 420)
    assert al.OFFLINE not in back.raised and al.back_online(back, S0 + 425) is back
    # at the hub or on a break a quiet device is no lost rider
    at_hub = al.on_fence(on_the_road(), fence(gf.Arrival, "hub-1", 0))
    _, out = al.on_tick(at_hub, hy.DeviceState(rider_id=RIDER, heard_s=S0), S0 + 900)
    assert kinds(out) == [K.DEVICE_SILENT]
    _, out = al.on_tick(al.start_break(on_the_road(), S0), hy.DeviceState(rider_id=RIDER, heard_s=S0), S0 + 900)
    assert out == ()


def test_a_device_never_heard_is_silent_since_the_shift_began() -> None:
    state = al.start_shift(al.AlertState(rider_id=RIDER), ev.VehicleType.BIKE, S0)
    device = hy.DeviceState(rider_id=RIDER)
    assert al.on_tick(state, device, S0 + 60)[1] == ()
    assert kinds(al.on_tick(state, device, S0 + 180)[1]) == [K.DEVICE_SILENT]


def test_off_shift_nothing_is_watched() -> None:
    rider = Rider(al.end_shift(on_the_road(), S0))
    assert rider.path(north(0, 60, 30.0), speed=30.0) == []
    assert rider.tick(5000) == []
    assert rider.state.raised == frozenset()


def test_the_alert_event_has_a_stable_id_and_the_alert_fields() -> None:
    state, out = al.on_etas(on_the_road(), [estimate("ord-2", 60, 40, 50)])
    event = al.alert_event(out[0])
    assert isinstance(event, ev.AlertRaised)
    assert (event.kind, event.severity, event.subject_id, event.order_id, event.rider_id) == \
        ("delay_risk", ev.Severity.WARNING, "ord-2", "ord-2", RIDER)
    assert event.occurred_at == T0 + timedelta(seconds=60)
    assert event.event_id == al.alert_event(out[0]).event_id
    assert event.event_id != al.alert_event(al.on_etas(on_the_road(), [estimate("ord-2", 61, 40, 50)])[1][0]).event_id


def test_a_replan_keeps_open_episodes_of_orders_still_planned() -> None:
    state, out = al.on_etas(on_the_road(), [estimate("ord-2", 60, 40, 50), estimate("ord-3", 60, 55, 65)])
    assert len(out) == 2
    replanned = dataclasses.replace(plan(), route_id="route-2", stops=plan().stops[1:2])
    route2 = al.alert_route(eta.eta_route(replanned, ev.VehicleType.SCOOTER, WINDOWS), HUB)
    state = al.start_route(state, route2, S0 + 90)
    assert state.raised == {"delay_risk:ord-2"}
    _, out = al.on_etas(state, [estimate("ord-2", 120, 40, 50)])
    assert out == ()  # still the same episode


def test_an_empty_route_arriving_while_the_rider_stands_at_a_stop_is_no_crash() -> None:
    rider = Rider(on_the_road())
    rider.path(north(0, 100, 10.0))
    rider.fence(gf.Arrival, "ord-1", 100)
    emptied = dataclasses.replace(plan(), route_id="route-2", stops=())  # a re-plan took every stop away
    rider.state = al.start_route(rider.state, al.alert_route(eta.eta_route(emptied, ev.VehicleType.SCOOTER, {}), HUB),
                                 S0 + 120)
    out = [a for t in range(130, 1500, 30) for a in rider.tick(t)]  # used to raise IndexError on every tick
    assert all(a.order_id is None for a in out)
