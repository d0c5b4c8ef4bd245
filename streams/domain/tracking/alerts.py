"""Rider alerts for dispatchers, pure: each rule reads what the rider is doing right now.

The same fact means different things in different tasks: standing still for ten minutes is
*idle* on the way to a stop, *waiting at the customer* inside the stop's fence, and nothing at
the hub or on a break. So the state tracks the rider's :class:`Task` from shift, route, fence
(:mod:`streams.domain.tracking.geofence`) and proof-of-delivery events, and every rule names the tasks it watches:

- **delay_risk** (on shift): a stop's p90 ETA (:class:`streams.domain.tracking.eta.StopEta`) is past its promised
  window end. Warning; critical when the p50 is late too or the p90 by 15 min or more.
- **sla_breach** (on shift): the window end passed and the stop is neither closed (delivered,
  failed, cancelled) nor was it arrived at within the window (an attempt at the door in time
  keeps the promise while it goes on). Critical.
- **idle** (driving): stationary for 5 min, i.e. hygiene's odometer anchor
  (:class:`streams.domain.tracking.hygiene.DeviceState`) has not moved and the fix is within 150 m of it, away
  from the hub and every open stop. Warning.
- **waiting_at_customer** (at a stop): inside the stop's fence after arrival, with no POD and no
  departure, for 15 min. Info: it is the customer's door, not a lost rider.
- **route_deviation** (driving): farther than the corridor's half-width from every segment of the
  current leg and the next one, for 3 fixes over 2 min. Warning.
- **overspeed** (on shift): device speed over the vehicle's limit for 3 consecutive fixes
  spanning 10 s (a lone GPS speed spike is not speeding). Warning; critical at 1.25x the limit.
- **device_silent** (on shift, not on a break): :func:`streams.domain.tracking.hygiene.is_silent`, checked on a
  timer. Critical while out on the route, else warning.
- **rider_offline** (out on the route): silent for ``offline_s`` (5 min). Critical; the tracker
  also hands it to the dispatcher, which gives the stops not started to other riders. It ends
  with the device's next accepted fix (:func:`back_online`), which the dispatcher hears too.

**Breaks.** A break the rider reports (:func:`start_break`, until :func:`end_break` or the
break's expected end, which :func:`on_tick` honours) is the task ``on_break``: no idle, deviation,
silent or offline alert while it lasts. During a break the plan has the rider take
(:attr:`AlertRoute.breaks`) a rider standing still or with a silent phone raises no idle, silent
or offline alert either, reported or not. Pickup stops are stores' counters: no waiting-at-the-
customer alert there, and no window (the order's promise is its drop's).

Speed limits per vehicle type (configurable, :data:`SPEED_LIMIT_KMH`): bike 25 km/h (the
e-bike assistance cap), scooter 60, van 70, car 80: urban company policy, not road law.

**Episodes, not storms.** An alert fires once when its condition starts (its ``key`` is then
*raised*) and never again while the condition holds; the episode ends when the condition does
(with hysteresis: a calm speed for 3 fixes, back well inside the corridor, p90 2 min inside the
window), or when the task it belongs to ends (arrival ends idle and deviation; departure or POD
ends waiting). An episode ended by its condition re-arms only ``rearm_s`` later, so a rider
hovering around a threshold gets one alert per 10 minutes, not one a minute. Keys are the kind
for rider alerts and ``kind:order_id`` for stop alerts, unique within one rider's state.

**Corridor.** The planned route is straight lines hub -> stops in order -> hub (a plan carries
no road geometry). The corridor is the current leg (from where the leg began to the stop the
rider is heading to) and the next ``corridor_legs - 1`` legs, so a rider whose arrival at the
stop went unseen (a GPS gap) and who carries on along the plan is not off it. Its half-width is
``max(corridor_m, corridor_share x leg length)`` plus the fix's accuracy: roads bend away from
the straight line more on long legs (on a street grid an L-shaped path strays half the leg's
length from the diagonal). Distances are a local flat
approximation around the route's start, as in :mod:`streams.domain.tracking.geofence`.

**Inputs.** Feed only pings hygiene accepted, with the device state it returned (idle reads its
odometer anchor: no second stationarity detector with its own noise floor); feed the ETA agent's
estimates; call :func:`on_tick` on a timer (silence, SLA and waiting are time, not pings). Times
are epoch seconds: device time on pings, the caller's clock on ticks.

**Cost.** A ping that changes nothing (speed under the limit, inside the corridor, not standing
still for minutes) returns the same state object, after a dozen comparisons and one
point-to-segment distance against the route's precomputed legs: ~1.4 us. Rider keys and tasks
are compared as module constants, not enum members (an enum lookup costs ~120 ns).
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import NamedTuple

from schemas import events as ev
from schemas.events import Severity, VehicleType
from solver.geo import M_PER_DEG
from streams.domain.ids import derived_id
from streams.domain.tracking.eta import EtaRoute, Position, StopEta
from streams.domain.tracking.geofence import Arrival, Departure, FenceKind
from streams.domain.tracking.hygiene import DEFAULT_PARAMS as HYGIENE_DEFAULTS
from streams.domain.tracking.hygiene import DeviceState, HygieneParams, is_silent

__all__ = [
    "OFFLINE", "SPEED_LIMIT_KMH", "Alert", "AlertKind", "AlertParams", "AlertRoute", "AlertState", "Progress", "Segment", "Task",
    "Watch", "alert_event", "alert_route", "back_online", "end_break", "end_shift", "on_etas", "on_fence", "on_ping", "on_tick",
    "start_break", "start_route", "start_shift", "stop_closed",
]


class Task(enum.StrEnum):
    OFF_SHIFT = "off_shift"
    AT_HUB = "at_hub"
    DRIVING = "driving"  # to the stop ``Progress.target`` (or back to the hub when none is left)
    AT_STOP = "at_stop"
    ON_BREAK = "on_break"


_OFF, _DRIVING, _AT_STOP, _BREAK = Task.OFF_SHIFT, Task.DRIVING, Task.AT_STOP, Task.ON_BREAK


class AlertKind(enum.StrEnum):
    DELAY_RISK = "delay_risk"
    SLA_BREACH = "sla_breach"
    IDLE = "idle"
    WAITING_AT_CUSTOMER = "waiting_at_customer"
    ROUTE_DEVIATION = "route_deviation"
    OVERSPEED = "overspeed"
    DEVICE_SILENT = "device_silent"
    RIDER_OFFLINE = "rider_offline"


K = AlertKind
_TASK_BOUND = (K.IDLE, K.WAITING_AT_CUSTOMER, K.ROUTE_DEVIATION)  # end with the task they belong to
# Rider-level keys and tasks as module constants: on the per-ping path an enum member lookup
# (``K.IDLE``, ~120 ns on 3.11) costs more than the comparison it feeds.
_OVERSPEED, _IDLE, _DEVIATION, _SILENT, _WAITING, OFFLINE = (
    K.OVERSPEED.value, K.IDLE.value, K.ROUTE_DEVIATION.value, K.DEVICE_SILENT.value, K.WAITING_AT_CUSTOMER.value,
    K.RIDER_OFFLINE.value)

SPEED_LIMIT_KMH: Mapping[str, float] = MappingProxyType({
    VehicleType.BIKE: 25.0,
    VehicleType.SCOOTER: 60.0,
    VehicleType.CAR: 80.0,
    VehicleType.VAN: 70.0,
})


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertParams:
    speed_limit_kmh: Mapping[str, float] = field(default_factory=lambda: SPEED_LIMIT_KMH)  # per VehicleType
    unknown_vehicle_limit_kmh: float = 80.0
    overspeed_fixes: int = 3  # consecutive fixes over the limit (one GPS speed spike is not speeding)...
    overspeed_s: float = 10.0  # ...spanning at least this long
    overspeed_clear_fixes: int = 3  # consecutive fixes at or under the limit end the episode
    overspeed_critical_ratio: float = 1.25
    idle_s: float = 300.0
    idle_radius_m: float = 150.0  # the anchor-to-fix displacement that still counts as standing still
    near_fence_m: float = 150.0  # standing this close to an open stop or the hub is not idle
    waiting_s: float = 900.0  # at a customer's door without POD or departure
    corridor_m: float = 300.0
    corridor_share: float = 0.35
    corridor_legs: int = 2
    corridor_back: float = 0.8  # back inside this share of the half-width ends a deviation
    accuracy_bonus_cap_m: float = 60.0
    deviation_fixes: int = 3
    deviation_s: float = 120.0
    delay_clear_s: float = 120.0  # a p90 this far inside the window ends a delay risk
    delay_critical_s: float = 900.0
    sla_grace_s: float = 0.0
    rearm_s: float = 600.0
    offline_s: float = 300.0  # silent this long out on the route: offline, its stops not started re-planned
    hygiene: HygieneParams = HYGIENE_DEFAULTS  # one definition of "silent": the worker's hygiene params


DEFAULT_PARAMS = AlertParams()


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRoute:
    """A route as the alerts need it, built once per route: points in local metres (point 0 is
    the route's start, the hub; point i + 1 is stop i) and the promised window ends."""

    route_id: str
    order_ids: tuple[str, ...]
    index: Mapping[str, int]  # stop's fence id (order id of a drop, "<order id>/pickup" of a pickup) -> stop index
    window_end_s: tuple[float, ...]
    lat0: float
    lon0: float
    m_per_deg_lon: float
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    legs: tuple[Segment, ...]  # legs[j]: corridor point j -> the next one (the last stop -> the hub)
    earliest_end_s: float = math.inf  # min(window_end_s): before it, the SLA rule has nothing to check
    pickups: frozenset[int] = frozenset()  # stop indexes of pickups (a store's counter, not a customer's door)
    breaks: tuple[tuple[float, float], ...] = ()  # planned breaks (start, end): no idle or offline alert in them


class Segment(NamedTuple):
    ax: float
    ay: float
    dx: float
    dy: float
    len2: float
    length: float


def _segment(xs: tuple[float, ...], ys: tuple[float, ...], a: int, b: int) -> Segment:
    dx, dy = xs[b] - xs[a], ys[b] - ys[a]
    len2 = dx * dx + dy * dy
    return Segment(xs[a], ys[a], dx, dy, len2, math.sqrt(len2))


def alert_route(route: EtaRoute, start: Position, breaks: Sequence[tuple[float, float]] = ()) -> AlertRoute:
    """From the ETA's route (stops and promised windows), the plan's start (the hub) and the plan's
    breaks (start, end)."""
    lat0, lon0 = start
    m_lon = M_PER_DEG * math.cos(math.radians(lat0))
    stops = route.stops
    xs = (0.0, *((s.lon - lon0) * m_lon for s in stops))
    ys = (0.0, *((s.lat - lat0) * M_PER_DEG for s in stops))
    n = len(stops)
    ends = tuple(s.window_end_s for s in stops)
    return AlertRoute(
        route_id=route.route_id, order_ids=tuple(s.order_id for s in stops),
        index=MappingProxyType({f"{s.order_id}/pickup" if s.pickup else s.order_id: i for i, s in enumerate(stops)}),
        pickups=frozenset(i for i, s in enumerate(stops) if s.pickup), breaks=tuple(breaks),
        window_end_s=ends, earliest_end_s=min(ends, default=math.inf), lat0=lat0, lon0=lon0, m_per_deg_lon=m_lon,
        xs=xs, ys=ys,
        legs=tuple(_segment(xs, ys, j, j + 1 if j < n else 0) for j in range(n + 1)))


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    """Where the rider is in the shift and route. Changes on shift, route, fence and POD events."""

    task: Task = Task.OFF_SHIFT
    since_s: float = 0.0  # the task began
    shift_s: float = 0.0  # the shift began (a device never heard from is silent since then)
    resume: Task = Task.AT_HUB  # the task a break interrupted
    origin: int = 0  # corridor point the current leg began at (0: the route's start)
    target: int = -1  # stop index heading to; -1: none left (back to the hub)
    at_stop: int = -1  # stop index while at a stop
    closed: frozenset[int] = frozenset()  # stops delivered, failed or cancelled
    arrived: Mapping[int, float] = field(default_factory=dict)  # stop index -> arrival time
    break_until_s: float = 0.0  # on a break: it ends by itself then (the rider app's expected end)


class Watch(NamedTuple):
    """Per-ping counters of the two rules that need consecutive fixes (rebuilt only when one moves)."""

    fast_n: int = 0  # consecutive fixes over the speed limit...
    fast_s: float = 0.0  # ...since this fix
    calm_n: int = 0  # consecutive fixes under it while overspeed is raised
    off_n: int = 0  # consecutive fixes off the corridor...
    off_s: float = 0.0  # ...since this fix


_STILL = Watch()


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertState:
    rider_id: str
    vehicle_type: VehicleType | None = None
    limit_mps: float = math.inf
    route: AlertRoute | None = None
    progress: Progress = Progress()
    watch: Watch = _STILL
    raised: frozenset[str] = frozenset()  # keys of the open episodes
    ended: Mapping[str, float] = field(default_factory=dict)  # key -> when its episode ended (re-arm clock)


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    kind: AlertKind
    severity: Severity
    rider_id: str
    subject_id: str  # the order for stop alerts, else the rider
    order_id: str | None
    key: str  # the episode's key within the rider's state
    task: Task
    at_s: float
    message: str


def alert_event(alert: Alert) -> ev.AlertRaised:
    """The event for the ``alerts`` topic. Its id derives from the rider, key and time, so an
    alert recomputed after a restart is recognised as the same one."""
    return ev.AlertRaised(event_id=derived_id(f"{alert.rider_id}/{alert.key}", f"alert/{alert.at_s!r}"),
                          occurred_at=datetime.fromtimestamp(alert.at_s, UTC), subject_id=alert.subject_id,
                          kind=alert.kind.value, severity=alert.severity, rider_id=alert.rider_id,
                          order_id=alert.order_id, message=alert.message)


# ---- shift, route, fences, POD: the task ---------------------------------------------------


def start_shift(state: AlertState, vehicle_type: VehicleType, at_s: float,
                params: AlertParams = DEFAULT_PARAMS) -> AlertState:
    """A shift starts at the hub (``RiderShiftStarted``)."""
    kmh = params.speed_limit_kmh.get(vehicle_type, params.unknown_vehicle_limit_kmh)
    return AlertState(rider_id=state.rider_id, vehicle_type=vehicle_type, limit_mps=kmh / 3.6,
                      progress=Progress(task=Task.AT_HUB, since_s=at_s, shift_s=at_s))


def end_shift(state: AlertState, at_s: float) -> AlertState:
    """Off shift nothing is watched; every open episode ends."""
    return AlertState(rider_id=state.rider_id, vehicle_type=state.vehicle_type, limit_mps=state.limit_mps,
                      progress=Progress(task=Task.OFF_SHIFT, since_s=at_s))


def start_route(state: AlertState, route: AlertRoute, at_s: float) -> AlertState:
    """A new plan (first or re-plan). The rider's task stays; the leg starts at the plan's start.
    Open stop episodes of orders still on the route stay open (no second alert for them)."""
    p = state.progress
    keep = frozenset(k for k in state.raised if ":" not in k or k.partition(":")[2] in route.index)
    progress = Progress(task=p.task, since_s=p.since_s, shift_s=p.shift_s, resume=p.resume, origin=0,
                        target=0 if route.order_ids else -1, break_until_s=p.break_until_s)
    return AlertState(rider_id=state.rider_id, vehicle_type=state.vehicle_type, limit_mps=state.limit_mps, route=route,
                      progress=progress, watch=state.watch._replace(off_n=0, off_s=0.0), raised=keep,
                      ended={k: v for k, v in state.ended.items() if ":" not in k})


def start_break(state: AlertState, at_s: float, until_s: float = math.inf) -> AlertState:
    """The rider reports a break (``BreakStarted``): no idle, silent or offline alert until
    :func:`end_break` or ``until_s`` (:func:`on_tick` ends it then). A second report moves the end."""
    p = state.progress
    if p.task is Task.OFF_SHIFT:
        return state
    if p.task is Task.ON_BREAK:
        return state if until_s == p.break_until_s else _replace(state, progress=dataclasses.replace(
            p, break_until_s=until_s))
    return _retask(state, Progress(task=Task.ON_BREAK, since_s=at_s, shift_s=p.shift_s, resume=p.task, origin=p.origin,
                                   target=p.target, at_stop=p.at_stop, closed=p.closed, arrived=p.arrived,
                                   break_until_s=until_s))


def end_break(state: AlertState, at_s: float) -> AlertState:
    p = state.progress
    if p.task is not Task.ON_BREAK:
        return state
    return _retask(state, Progress(task=p.resume, since_s=at_s, shift_s=p.shift_s, origin=p.origin, target=p.target,
                                   at_stop=p.at_stop, closed=p.closed, arrived=p.arrived))


def on_fence(state: AlertState, event: Arrival | Departure) -> AlertState:
    """Arrivals and departures from :mod:`streams.domain.tracking.geofence` move the rider between tasks. During a
    break they only change the task the break resumes to."""
    p = state.progress
    route = state.route
    if p.task is Task.OFF_SHIFT:
        return state
    at_s = event.at.timestamp()
    task, origin, target, at_stop, arrived = p.task, p.origin, p.target, p.at_stop, p.arrived
    if event.kind is FenceKind.HUB:
        if isinstance(event, Arrival):
            task, at_stop = Task.AT_HUB, -1
        else:
            task, origin = Task.DRIVING, 0
            target = _next_target(route, p.closed, p.arrived, -1)
    else:
        i = route.index.get(event.fence_id) if route is not None and event.route_id == route.route_id else None
        if i is None:
            return state
        if isinstance(event, Arrival):
            task, at_stop, arrived = Task.AT_STOP, i, {**p.arrived, i: at_s}
        else:
            if p.at_stop != i:
                return state
            task, at_stop, origin = Task.DRIVING, -1, i + 1
            target = _next_target(route, p.closed, p.arrived, i)
    on_break = p.task is Task.ON_BREAK
    return _retask(state, Progress(task=Task.ON_BREAK if on_break else task, since_s=p.since_s if on_break else at_s,
                                   shift_s=p.shift_s, resume=task if on_break else p.resume, origin=origin,
                                   target=target, at_stop=at_stop, closed=p.closed, arrived=arrived,
                                   break_until_s=p.break_until_s))


def stop_closed(state: AlertState, order_id: str, at_s: float) -> AlertState:
    """The stop's order was delivered, failed or cancelled: its delay and SLA episodes end, waiting
    at its door ends, and a rider heading to it is now heading to the next open stop."""
    route = state.route
    i = route.index.get(order_id) if route is not None else None
    p = state.progress
    if i is None or i in p.closed:
        return state
    closed = p.closed | {i}
    target = _next_target(route, closed, p.arrived, i) if p.target == i else p.target
    ends = {f"{K.DELAY_RISK}:{order_id}", f"{K.SLA_BREACH}:{order_id}"}
    if p.at_stop == i:
        ends.add(K.WAITING_AT_CUSTOMER)
    progress = Progress(task=p.task, since_s=p.since_s, shift_s=p.shift_s, resume=p.resume, origin=p.origin,
                        target=target, at_stop=p.at_stop, closed=closed, arrived=p.arrived,
                        break_until_s=p.break_until_s)
    return _replace(state, progress=progress, raised=state.raised - ends)


def _next_target(route: AlertRoute | None, closed: frozenset[int], arrived: Mapping[int, float], after: int) -> int:
    """The first stop after ``after`` not closed nor arrived at (the geofence watches stops in
    order, so a skipped one is not gone back to); -1 when none is left."""
    if route is None:
        return -1
    for i in range(after + 1, len(route.order_ids)):
        if i not in closed and i not in arrived:
            return i
    return -1


def _retask(state: AlertState, progress: Progress) -> AlertState:
    """A new task: the episodes bound to the old one end (no re-arm delay: a new task, a new
    episode) and the per-ping counters restart, except the speed ones (speeding spans tasks)."""
    w = state.watch
    watch = w if w.off_n == 0 else Watch(w.fast_n, w.fast_s, w.calm_n, 0, 0.0)
    return _replace(state, progress=progress, watch=watch, raised=state.raised.difference(_TASK_BOUND))


def _replace(state: AlertState, *, progress: Progress | None = None, watch: Watch | None = None,
             raised: frozenset[str] | None = None, ended: Mapping[str, float] | None = None) -> AlertState:
    """``dataclasses.replace`` for the hot path (~3x cheaper)."""
    return AlertState(rider_id=state.rider_id, vehicle_type=state.vehicle_type, limit_mps=state.limit_mps,
                      route=state.route, progress=state.progress if progress is None else progress,
                      watch=state.watch if watch is None else watch,
                      raised=state.raised if raised is None else raised,
                      ended=state.ended if ended is None else ended)


# ---- rules ---------------------------------------------------------------------------------


def on_ping(state: AlertState, device: DeviceState, speed_mps: float | None,
            params: AlertParams = DEFAULT_PARAMS) -> tuple[AlertState, tuple[Alert, ...]]:
    """Overspeed, idle and route deviation after an accepted ping: ``device`` is hygiene's state
    after accepting it (its ``fix`` is the ping), ``speed_mps`` the ping's device speed (``None``
    when the device gives none: such a fix neither counts toward overspeed nor calms it)."""
    p = state.progress
    task = p.task
    fix = device.fix
    if fix is None or task is _OFF:
        return state, ()
    t = fix[0]
    w = state.watch
    fast_n, fast_s, calm_n, off_n, off_s = w
    raised = state.raised
    fired: tuple[Alert, ...] = ()  # tuples: a ping that changes nothing allocates nothing
    ends: tuple[str, ...] = ()

    if speed_mps is not None:
        if speed_mps > state.limit_mps:
            calm_n = 0
            if _OVERSPEED not in raised:  # counted until it fires; an open episode needs no count
                if fast_n == 0:
                    fast_s = t
                fast_n += 1
                if fast_n >= params.overspeed_fixes and t - fast_s >= params.overspeed_s \
                        and _armed(state, _OVERSPEED, t, params):
                    fired += (_overspeed(state, t, speed_mps, params),)
        elif fast_n or calm_n or _OVERSPEED in raised:
            fast_n = 0
            if _OVERSPEED in raised:
                calm_n += 1
                if calm_n >= params.overspeed_clear_fixes:
                    ends += (_OVERSPEED,)
                    calm_n = 0

    if task is _DRIVING:
        anchor = device.anchor
        if anchor is not None:
            still_s = t - (anchor[0] if anchor[0] > p.since_s else p.since_s)
            still = still_s >= params.idle_s and _flat_m(anchor[1], anchor[2], fix[1], fix[2]) <= params.idle_radius_m
            if still:
                if _IDLE not in raised and _armed(state, _IDLE, t, params) \
                        and not _near_fence(state.route, p.closed, fix[1], fix[2], params.near_fence_m) \
                        and not _planned_break(state.route, t):
                    fired += (_alert(state, K.IDLE, Severity.WARNING, t,
                                     f"stationary for {still_s / 60:.0f} min, away from any stop or the hub"),)
            elif _IDLE in raised:
                ends += (_IDLE,)
        route = state.route
        if route is not None and (p.target >= 0 or p.origin > 0):  # no leg: no corridor
            off = _off_corridor(route, p.origin, p.target, fix[1], fix[2], fix[3], params)
            if off > 0 and _DEVIATION not in raised:
                if off_n == 0:
                    off_s = t
                off_n += 1
                if off_n >= params.deviation_fixes and t - off_s >= params.deviation_s \
                        and _armed(state, _DEVIATION, t, params):
                    fired += (_alert(state, K.ROUTE_DEVIATION, Severity.WARNING, t,
                                     f"off the planned corridor for {(t - off_s) / 60:.0f} min"),)
            elif off < 0 and (off_n or _DEVIATION in raised):
                off_n = 0
                if _DEVIATION in raised:
                    ends += (_DEVIATION,)

    if not fired and not ends and fast_n == w.fast_n and calm_n == w.calm_n and off_n == w.off_n:
        return state, ()
    watch = _STILL if not (fast_n or calm_n or off_n) else Watch(fast_n, fast_s, calm_n, off_n, off_s)
    return _settle(state, fired, ends, t, params, watch)


def on_etas(state: AlertState, etas: Iterable[StopEta],
            params: AlertParams = DEFAULT_PARAMS) -> tuple[AlertState, tuple[Alert, ...]]:
    """Delay risk from fresh estimates (the ETA module emits one whenever a p90 crosses a window
    end, so the emitted ones are enough). Past a window's end the SLA rule owns the stop."""
    route = state.route
    p = state.progress
    if route is None or p.task is Task.OFF_SHIFT:
        return state, ()
    fired: list[Alert] = []
    ends: list[str] = []
    now = -math.inf
    for e in etas:
        i = route.index.get(e.order_id)
        now = max(now, e.from_s)
        if i is None or i in p.closed or i in p.arrived:
            continue
        end = route.window_end_s[i]
        if e.from_s >= end:
            continue
        key = f"{K.DELAY_RISK}:{e.order_id}"
        if e.p90_s > end:
            if key not in state.raised and _armed(state, key, e.from_s, params):
                late_p90 = e.p90_s - end
                critical = e.p50_s > end or late_p90 >= params.delay_critical_s
                fired.append(_alert(state, K.DELAY_RISK, Severity.CRITICAL if critical else Severity.WARNING, e.from_s,
                                    f"stop {i + 1}: p90 ETA {late_p90 / 60:.0f} min past the promised window"
                                    + (" (p50 late too)" if e.p50_s > end else ""), e.order_id))
        elif e.p90_s <= end - params.delay_clear_s and key in state.raised:
            ends.append(key)
    if not fired and not ends:
        return state, ()
    return _settle(state, fired, ends, now, params)


def back_online(state: AlertState, at_s: float, params: AlertParams = DEFAULT_PARAMS) -> AlertState:
    """An accepted fix after a rider_offline alert: the episode ends (the caller tells the dispatcher)."""
    return _settle(state, (), (OFFLINE,), at_s, params)[0] if OFFLINE in state.raised else state


def on_tick(state: AlertState, device: DeviceState, now_s: float,
            params: AlertParams = DEFAULT_PARAMS) -> tuple[AlertState, tuple[Alert, ...]]:
    """The rules that time alone triggers: device silent, SLA breach, waiting at the customer."""
    p = state.progress
    task = p.task
    if task is _OFF:
        return state, ()
    if task is _BREAK and now_s >= p.break_until_s:  # the break's expected end passed unreported: watch again
        state = end_break(state, p.break_until_s)
        p = state.progress
        task = p.task
    raised = state.raised
    fired: list[Alert] = []
    ends: list[str] = []

    heard = device.heard_s
    silent = is_silent(device, now_s, params.hygiene) if heard is not None \
        else now_s - p.shift_s >= params.hygiene.silent_after_s
    if silent and _planned_break(state.route, now_s):  # a phone put away on a planned break: not lost
        silent = False
    if silent:
        out = task in (Task.DRIVING, Task.AT_STOP)
        quiet = now_s - (p.shift_s if heard is None else heard)
        if task is not _BREAK and _SILENT not in raised and _armed(state, _SILENT, now_s, params):
            fired.append(_alert(state, K.DEVICE_SILENT, Severity.CRITICAL if out else Severity.WARNING, now_s,
                                f"no ping for {quiet / 60:.0f} min"))
        if out and quiet >= params.offline_s and OFFLINE not in raised and _armed(state, OFFLINE, now_s, params):
            fired.append(_alert(state, K.RIDER_OFFLINE, Severity.CRITICAL, now_s,
                                f"no ping for {quiet / 60:.0f} min out on the route: its stops not started go to "
                                "other riders"))
    elif _SILENT in raised:
        ends.append(_SILENT)

    if task is _AT_STOP and p.at_stop not in p.closed and _WAITING not in raised \
            and (state.route is None or p.at_stop not in state.route.pickups) \
            and now_s - p.since_s >= params.waiting_s:
        fired.append(_alert(state, K.WAITING_AT_CUSTOMER, Severity.INFO, now_s,
                            f"at the customer's door for {(now_s - p.since_s) / 60:.0f} min without POD",
                            _order_at(state.route, p.at_stop)))

    route = state.route
    grace = params.sla_grace_s
    if route is not None and now_s > route.earliest_end_s + grace:  # else no window has ended yet
        for i, end in enumerate(route.window_end_s):
            if now_s <= end + grace or i in p.closed:
                continue
            arrived = p.arrived.get(i)
            if arrived is not None and arrived <= end:
                continue  # at the door within the window: the promise is kept, the attempt goes on
            order = route.order_ids[i]
            if f"{K.SLA_BREACH}:{order}" not in raised:
                fired.append(_alert(state, K.SLA_BREACH, Severity.CRITICAL, now_s,
                                    f"stop {i + 1}: promised window ended {(now_s - end) / 60:.0f} min ago, "
                                    "not delivered", order))
    if not fired and not ends:
        return state, ()
    return _settle(state, fired, ends, now_s, params)


# ---- helpers -------------------------------------------------------------------------------


def _armed(state: AlertState, key: str, t: float, params: AlertParams) -> bool:
    ended = state.ended.get(key)
    return ended is None or t - ended >= params.rearm_s


def _settle(state: AlertState, fired: Sequence[Alert], ends: Sequence[str], t: float, params: AlertParams,
            watch: Watch | None = None) -> tuple[AlertState, tuple[Alert, ...]]:
    """Open the fired episodes, end the ended ones (starting their re-arm clock)."""
    raised = state.raised
    ended = state.ended
    if ends:
        raised = raised.difference(ends)
        ended = {k: v for k, v in ended.items() if t - v < params.rearm_s}
        ended.update(dict.fromkeys(ends, t))
    if fired:
        raised = raised.union(a.key for a in fired)
    return _replace(state, watch=watch, raised=raised, ended=ended), tuple(fired)


def _order_at(route: AlertRoute | None, index: int) -> str | None:
    """The order of stop ``index``; None when the index belongs to a route since replaced (a new,
    shorter route arrived while the rider stood at a stop of the old one)."""
    if route is None or not 0 <= index < len(route.order_ids):
        return None
    return route.order_ids[index]


def _doing(state: AlertState) -> str:
    p = state.progress
    route = state.route
    if p.task is Task.DRIVING:
        if route is None:
            return "driving"
        return "returning to the hub" if p.target < 0 else \
            f"heading to stop {p.target + 1} (order {_order_at(route, p.target)})"
    if p.task is Task.AT_STOP and route is not None and p.at_stop >= 0:
        return f"at stop {p.at_stop + 1} (order {_order_at(route, p.at_stop)})"
    return {Task.AT_HUB: "at the hub", Task.ON_BREAK: "on a break"}.get(p.task, str(p.task))


def _alert(state: AlertState, kind: AlertKind, severity: Severity, t: float, what: str,
           order_id: str | None = None) -> Alert:
    return Alert(kind=kind, severity=severity, rider_id=state.rider_id, subject_id=order_id or state.rider_id,
                 order_id=order_id, key=kind.value if order_id is None or kind in _TASK_BOUND else f"{kind}:{order_id}",
                 task=state.progress.task, at_s=t, message=f"rider {state.rider_id} {_doing(state)}: {what}")


def _overspeed(state: AlertState, t: float, speed_mps: float, params: AlertParams) -> Alert:
    ratio = speed_mps / state.limit_mps
    return _alert(state, K.OVERSPEED, Severity.CRITICAL if ratio >= params.overspeed_critical_ratio else Severity.WARNING,
                  t, f"{speed_mps * 3.6:.0f} km/h on a {state.vehicle_type or 'vehicle'} "
                     f"(limit {state.limit_mps * 3.6:.0f} km/h)")


def _flat_m(lat_a: float, lon_a: float, lat_b: float, lon_b: float) -> float:
    dy = (lat_b - lat_a) * M_PER_DEG
    dx = (lon_b - lon_a) * M_PER_DEG * math.cos(math.radians(lat_a))
    return math.hypot(dx, dy)


def _planned_break(route: AlertRoute | None, t: float) -> bool:
    """Within one of the plan's breaks (the rider may be on it without the app saying so)."""
    if route is None or not route.breaks:  # the usual case: no generator for it
        return False
    return any(start <= t < end for start, end in route.breaks)


def _near_fence(route: AlertRoute | None, closed: frozenset[int], lat: float, lon: float, radius_m: float) -> bool:
    """Within ``radius_m`` of the hub or a stop not yet closed (parked near the door, not idle)."""
    if route is None:
        return False
    x, y = (lon - route.lon0) * route.m_per_deg_lon, (lat - route.lat0) * M_PER_DEG
    r2 = radius_m * radius_m
    xs, ys = route.xs, route.ys
    return any((x - xs[j]) ** 2 + (y - ys[j]) ** 2 <= r2 for j in range(len(xs)) if j == 0 or j - 1 not in closed)


def _off_corridor(route: AlertRoute, origin: int, target: int, lat: float, lon: float, accuracy: float,
                 params: AlertParams) -> int:
    """1 when farther than the half-width from every corridor segment, -1 when within
    ``corridor_back`` of it from one (back inside), 0 in between (hysteresis: neither).
    Segments: origin -> target, then on through the next stops (and back to the hub after the
    last), ``corridor_legs`` in all. Squared distances: no square root per ping."""
    x, y = (lon - route.lon0) * route.m_per_deg_lon, (lat - route.lat0) * M_PER_DEG
    legs = route.legs
    n = len(legs) - 1  # stops
    bonus = accuracy if accuracy < params.accuracy_bonus_cap_m else params.accuracy_bonus_cap_m
    base, share, back2 = params.corridor_m, params.corridor_share, params.corridor_back * params.corridor_back
    a = origin
    b = target + 1  # corridor point of the target stop; 0: the hub
    seg = legs[a] if b == (a + 1 if a < n else 0) else _segment(route.xs, route.ys, a, b)  # else: stops skipped
    verdict = 1
    for _ in range(params.corridor_legs):
        ax, ay, dx, dy, len2, length = seg
        px, py = x - ax, y - ay
        if len2 > 0.0:
            f = (px * dx + py * dy) / len2
            if f > 1.0:
                f = 1.0
            elif f < 0.0:
                f = 0.0
            px -= f * dx
            py -= f * dy
        d2 = px * px + py * py
        w = share * length
        w = (w if w > base else base) + bonus
        w2 = w * w
        if d2 <= back2 * w2:
            return -1
        if d2 <= w2:
            verdict = 0
        if b == 0:
            break
        seg = legs[b]
        b = b + 1 if b < n else 0
    return verdict
