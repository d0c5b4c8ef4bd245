"""Live tracking of riders, pure: one place where a rider's pings go through hygiene, geofences,
ETAs and alerts, in that order, and come out as the events to publish.

The modules it composes each own one rule set (:mod:`streams.domain.tracking.hygiene`, :mod:`streams.domain.tracking.geofence`,
:mod:`streams.domain.tracking.eta`, :mod:`streams.domain.tracking.alerts`); this module owns the order they run in and what they
tell each other:

- only pings hygiene accepts move the rider, feed speed samples and reach the geofences;
- an arrival at a stop closes the ETA's leg (scored against the estimates made for it, and
  learned from), a departure starts the next one; leaving the hub starts the first;
- estimates are recomputed when :func:`streams.domain.tracking.eta.due` says so and emitted when they moved
  (:func:`streams.domain.tracking.eta.should_emit`); the emitted ones feed the delay-risk alert, and those past
  their window also go to the hub's dispatcher, which re-plans a rider who is late enough;
- time-only rules (device silent, SLA breach, waiting at the customer) run on :meth:`Tracker.tick`;
  a rider offline (silent out on the route) goes to the hub's dispatcher too, and so does the
  device's first accepted fix when it is back;
- a route's pickup stops (hyperlocal orders at the store, parcels loaded at the hub mid-route)
  are legs like any other, so later drops' ETAs include them, but an arrival there is no
  ``ARRIVED`` status (the rider confirms the pickup) and no ETA is published for them;
- breaks the rider reports (``BreakStarted``/``BreakEnded`` on ``riders``) and the plan's breaks
  keep idle and offline alerts quiet (:mod:`streams.domain.tracking.alerts`);
- what the fleet learned of whole legs and service times is published per vehicle type
  (``TravelTimesLearned``, :func:`streams.domain.tracking.eta.travel_times`) when it moved, at most
  every ``travel_times_every_s`` of stream time, for dispatch to plan with.

Time is **stream time**: device times for what a ping says, the largest receive time of a ping
seen for "now". Plans, shifts and breaks do not move "now": they are few and current, while the
``gps`` backlog of a loaded worker can trail them by minutes, and every rider would then look
silent at once. For the same reason a rider's silence is judged by the clock of its own ``gps``
partition (pings read there so far): a worker reads its partitions unevenly under load, minutes
apart. A partition the worker has read to its end (:meth:`Tracker.caught_up`) has nothing more to
say, so its clock is "now". Nothing reads the wall clock, so a replay after a crash, or a simulated day played fast,
derives the same events with the same ids (:func:`streams.domain.ids.derived_id` of their sources).

:class:`Tracker` keeps every rider's :class:`RiderLive` and the fleet's learning
(:class:`Fleet`: speeds, leg and service factors, calibration). The worker hands it decoded
events with their source offsets and publishes what it returns; riders whose state changed are
listed in :attr:`Tracker.dirty` for the worker's checkpoint. Each rider remembers the last
offset applied per input topic, so a record replayed after a checkpoint is skipped: state is
never advanced twice by one record.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from schemas import events as ev
from schemas import topics as tp
from solver.geo import haversine_m
from streams.domain.ids import derived_id
from streams.domain.orders import lifecycle
from streams.domain.tracking import alerts, eta, geofence, hygiene
from streams.domain.tracking.zones import RiderZones, ZoneEvent, ZoneIndex, ZoneParams, on_ping_zones
from streams.errors import StateError

# Bumped when what the rider and fleet states mean changes (a changed shape already changes the
# checkpoint's schema, see ``streams.state``): a snapshot of another format is not loaded; the
# rider starts afresh on its last plan.
STATE_FORMAT = 2

SEGMENT_MIN_S = 30.0  # speed samples span at least this: a 5 s step is shorter than 30 m of noise
SPEED_BATCH_S = 300.0  # learn_speeds runs on the samples gathered over this much stream time


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackerParams:
    zones: ZoneIndex | None = None  # custom zones (MILESTREAM_ZONES_FILE), watched for every rider
    zone_params: ZoneParams = ZoneParams()
    geofence: geofence.GeofenceParams = geofence.GeofenceParams()
    hygiene: hygiene.HygieneParams = hygiene.DEFAULT_PARAMS
    emit: eta.EmitParams = eta.EmitParams()
    alerts: alerts.AlertParams = alerts.DEFAULT_PARAMS
    tick_every_s: float = 30.0  # stream seconds between time-only alert checks (silence is 120 s, SLA minutes)
    break_max_s: float = 3_600.0  # a reported break with no expected end (nor a planned one) ends by itself after this
    travel_times_every_s: float = 600.0  # stream seconds between two TravelTimesLearned of the fleet
    travel_times_change: float = 0.02  # ...and only when an hour's speed or the service factor moved this share
    # A rider on a route has its first accepted fix of every such period (of device time) sent to its
    # hub's dispatcher if it is moving (its reported speed, else since the fix before, at least
    # ``position_moving_mps``): dispatch reads no GPS,
    # and a re-plan or a free rider's plan starts from where the rider is. A rider standing (at a
    # store, the hub, a door: status changes carry those places) sends nothing, and the period rather
    # than a "last sent" time leaves nothing more to checkpoint. inf: none.
    position_every_s: float = 60.0
    position_moving_mps: float = 1.5


@dataclass(slots=True)
class Fleet:
    """What the tracker learns from every rider: travel speeds, leg and service factors, and the
    calibration of p50/p90. Replaced (not mutated) by the pure learners."""

    model: eta.SpeedModel = field(default_factory=eta.SpeedModel)
    calibration: eta.Calibration = field(default_factory=eta.Calibration)
    pending: list[eta.SpeedSample] = field(default_factory=list)
    learn_at_s: float = -math.inf
    travel_sent: dict[str, eta.TravelTimes] = field(default_factory=dict)  # vehicle type -> last published
    travel_at_s: float = 0.0  # no TravelTimesLearned before this stream time

    def speed_sample(self, sample: eta.SpeedSample, now_s: float) -> None:
        self.pending.append(sample)
        if now_s >= self.learn_at_s:
            self.learn(now_s)

    def learn(self, now_s: float) -> None:
        if self.pending:
            self.model = eta.learn_speeds(self.model, self.pending)
            self.pending = []
        self.learn_at_s = now_s + SPEED_BATCH_S


class RiderLive:
    """One rider's tracking state. The per-route structures (fences, ETA route, alert route) are
    derived from the plan and rebuilt after a restore, so a checkpoint carries only what the
    pings built up."""

    __slots__ = ("alert", "anchor", "applied", "device", "eta", "fences", "rider_id", "route", "vehicle_type", "zones",
                 "_alert_route", "_eta_route", "_route_fences", "_stop_index")

    def __init__(self, rider_id: str, vehicle_type: ev.VehicleType = ev.VehicleType.BIKE) -> None:
        self.rider_id = rider_id
        self.vehicle_type = vehicle_type
        self.device = hygiene.DeviceState(rider_id=rider_id, vehicle_type=vehicle_type)
        self.fences = geofence.RiderFences(rider_id=rider_id)
        self.zones = RiderZones(rider_id=rider_id)
        self.alert = alerts.AlertState(rider_id=rider_id)
        self.route: ev.RoutePlanned | None = None
        self.eta: eta.RiderEta | None = None
        self.anchor: tuple[float, float, float, float] | None = None  # speed segment start (t, lat, lon, accuracy)
        self.applied: dict[str, int] = {}  # input topic -> last offset applied
        self._derive()

    def _derive(self) -> None:
        route = self.route
        if route is None:
            self._route_fences = self._eta_route = self._alert_route = None
            self._stop_index: Mapping[str, int] = {}
            return
        self._route_fences = geofence.route_fences(route)
        self._eta_route = eta.eta_route(route, str(self.vehicle_type), route_windows(route))
        self._alert_route = alerts.alert_route(self._eta_route, (route.start.lat, route.start.lon),
                                               [(b.start.timestamp(), b.end.timestamp()) for b in route.breaks])
        self._stop_index = {geofence.stop_fence_id(s): i for i, s in enumerate(route.stops)}

    def __getstate__(self) -> dict[str, Any]:
        """The derived routes stay out (rebuilt from ``route`` on load)."""
        return {"rider_id": self.rider_id, "vehicle_type": self.vehicle_type, "device": self.device,
                "fences": self.fences, "zones": self.zones, "route": self.route, "anchor": self.anchor, "applied": self.applied,
                "alert": dataclasses.replace(self.alert, route=None),
                "eta": None if self.eta is None else dataclasses.replace(self.eta, route=None)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)
        self._derive()
        if self._alert_route is not None:
            self.alert = dataclasses.replace(self.alert, route=self._alert_route)
        if self.eta is not None:
            self.eta = dataclasses.replace(self.eta, route=self._eta_route) if self._eta_route is not None else None

    def snapshot(self) -> dict[str, Any]:
        """The state without the plan, which is the costliest part to write and changes once per
        route: the worker writes plans apart (see :meth:`restore`)."""
        state = self.__getstate__()
        state["route"] = None
        state["route_id"] = None if self.route is None else self.route.route_id
        state["format"] = STATE_FORMAT
        return state

    @classmethod
    def restore(cls, state: dict[str, Any], plans: tuple[ev.RoutePlanned | None, ...]) -> RiderLive:
        """A rider from :meth:`snapshot` and the plans written for it (the one it was on is among them
        unless the worker died between writing a new plan and the rider)."""
        state = dict(state)
        written = state.pop("format", None)
        if written != STATE_FORMAT:
            raise StaleState(f"rider state of format {written}, this version reads {STATE_FORMAT}")
        route_id = state.pop("route_id", None)
        route = next((p for p in plans if p is not None and p.route_id == route_id), None)
        if route is None and route_id is not None:  # its plan was replaced: start over from the replayed plan
            state["eta"] = None
        state["route"] = route
        rider = cls.__new__(cls)
        rider.__setstate__(state)
        return rider


class StaleState(StateError):
    """A checkpoint written by a version whose state classes differ from this one's."""


def route_windows(route: ev.RoutePlanned) -> dict[str, tuple[float, float]]:
    """Promised windows from the plan's drops, by fence id (plans made before windows were on them
    have none). A pickup has none: the window on its stop is the order's promise at the door."""
    out: dict[str, tuple[float, float]] = {}
    for s in route.stops:
        if s.kind is ev.StopKind.PICKUP:
            continue
        start, end = getattr(s, "window_start", None), getattr(s, "window_end", None)
        if start is not None or end is not None:
            out[s.order_id] = (start.timestamp() if start else 0.0, end.timestamp() if end else math.inf)
    return out


# (topic, event), or (topic, event, key) for an event re-keyed onto an internal topic (late ETAs go to
# dispatch-queue keyed by hub, for the re-planner).
Output = tuple[tp.TopicSpec, ev.Event] | tuple[tp.TopicSpec, ev.Event, str]


class Tracker:
    """Every rider's tracking state and the fleet's learning; returns events, does no I/O."""

    def __init__(self, params: TrackerParams = TrackerParams(), fleet: Fleet | None = None) -> None:
        self.params = params
        self.fleet = fleet or Fleet()
        self.riders: dict[str, RiderLive] = {}
        self.dirty: set[str] = set()
        self.now_s = -math.inf  # stream time: the largest receive time of a ping seen
        self.partition_s: dict[int, float] = {}  # each gps partition's clock: its largest receive time read
        self.partition_of: dict[str, int] = {}  # rider -> the gps partition its pings came from
        self._tick_at_s = -math.inf
        self._ticked_s: dict[int, float] = {}  # each gps partition's clock at the last tick
        self._tick_due = False  # a partition read to its end moved its clock a tick past its last judgement
        self.stats = {"pings": 0, "accepted": 0, "skipped_replay": 0}

    # ---- inputs ---------------------------------------------------------------------------

    def rider(self, rider_id: str) -> RiderLive:
        r = self.riders.get(rider_id)
        if r is None:
            r = self.riders[rider_id] = RiderLive(rider_id)
        return r

    def _fresh(self, r: RiderLive, topic: str, offset: int | None) -> bool:
        """False for a record at or below the rider's last applied offset on that topic (a replay)."""
        if offset is None:
            return True
        if offset <= r.applied.get(topic, -1):
            self.stats["skipped_replay"] += 1
            return False
        r.applied[topic] = offset
        self.dirty.add(r.rider_id)
        return True

    def on_event(self, event: ev.Event, topic: str = "", offset: int | None = None,
                 received_s: float | None = None) -> list[Output]:
        if isinstance(event, ev.GpsPing):
            return self.on_ping(event, topic, offset, received_s)
        if isinstance(event, ev.RoutePlanned):
            return self.on_route(event, topic, offset)
        if isinstance(event, ev.RiderShiftStarted | ev.RiderShiftEnded):
            return self.on_shift(event, topic, offset)
        if isinstance(event, ev.BreakStarted | ev.BreakEnded):
            return self.on_break(event, topic, offset)
        return []

    def on_shift(self, event: ev.RiderShiftStarted | ev.RiderShiftEnded, topic: str = "",
                 offset: int | None = None) -> list[Output]:
        r = self.rider(event.rider_id)
        if not self._fresh(r, topic, offset):
            return []
        at_s = event.occurred_at.timestamp()
        if isinstance(event, ev.RiderShiftStarted):
            if event.vehicle_type != r.vehicle_type:
                r.vehicle_type = event.vehicle_type
                r.device = hygiene.DeviceState(rider_id=r.rider_id, vehicle_type=event.vehicle_type)
                r._derive()
                if r.eta is not None and r._eta_route is not None:
                    r.eta = eta.start_route(r._eta_route, at_s, seen=False)
            r.alert = alerts.start_shift(r.alert, event.vehicle_type, at_s, self.params.alerts)
            if r._alert_route is not None:
                r.alert = alerts.start_route(r.alert, r._alert_route, at_s)
        else:
            r.alert = alerts.end_shift(r.alert, at_s)
        return []

    def on_break(self, event: ev.BreakStarted | ev.BreakEnded, topic: str = "",
                 offset: int | None = None) -> list[Output]:
        """A break the rider reports: no idle, silent or offline alert until it ends (``BreakEnded``,
        else its expected end, else the planned break's length, else ``break_max_s``)."""
        r = self.rider(event.rider_id)
        if not self._fresh(r, topic, offset):
            return []
        at_s = event.occurred_at.timestamp()
        if isinstance(event, ev.BreakEnded):
            _break_over(r, at_s)
            return []
        until = at_s + self.params.break_max_s
        planned = next((b for b in r.route.breaks if b.break_id == event.break_id), None) \
            if r.route is not None and event.break_id is not None else None
        if event.expected_end is not None:
            until = event.expected_end.timestamp()
        elif planned is not None:
            until = at_s + (planned.end - planned.start).total_seconds()
        r.alert = alerts.start_break(r.alert, at_s, until)
        return []

    def on_route(self, route: ev.RoutePlanned, topic: str = "", offset: int | None = None) -> list[Output]:
        r = self.rider(route.rider_id)
        if not self._fresh(r, topic, offset):
            return []
        at_s = route.occurred_at.timestamp()
        r.route = route
        r._derive()
        assert r._eta_route is not None and r._alert_route is not None
        r.fences = geofence.start_route(r.fences, route.route_id)
        r.eta = eta.start_route(r._eta_route, at_s, seen=False)  # leaving the hub starts it again, seen
        r.alert = alerts.start_route(r.alert, r._alert_route, at_s)
        return []

    def on_ping(self, ping: ev.GpsPing, topic: str = "", offset: int | None = None,
                received_s: float | None = None, partition: int | None = None) -> list[Output]:
        # the hot path (every ping): _fresh written out, params read once
        r = self.riders.get(ping.rider_id) or self.rider(ping.rider_id)
        stats = self.stats
        if offset is not None:
            applied = r.applied
            if offset <= applied.get(topic, -1):
                stats["skipped_replay"] += 1
                return []
            applied[topic] = offset
            self.dirty.add(r.rider_id)
        stats["pings"] += 1
        params = self.params
        recv = ping.occurred_at.timestamp() if received_s is None else received_s
        if recv > self.now_s:
            self.now_s = recv
        if partition is not None:
            self.partition_of[r.rider_id] = partition
            if recv > self.partition_s.get(partition, -math.inf):
                self.partition_s[partition] = recv
        out = self.tick() if recv >= self._tick_at_s else []
        before = r.device.fix
        r.device, verdict = hygiene.screen(r.device, ping, params.hygiene, received_s=recv)
        if verdict.reason is not None:
            return out
        stats["accepted"] += 1
        fix = r.device.fix  # the accepted ping: (device time, lat, lon, accuracy, ...)
        assert fix is not None
        t = fix[0]
        pos = (fix[1], fix[2])
        if alerts.OFFLINE in r.alert.raised:  # back after an offline alert: the dispatcher hears it (its fix)
            r.alert = alerts.back_online(r.alert, t, params.alerts)
            if r.route is not None:
                out.append((tp.DISPATCH_QUEUE, ping, r.route.hub_id))
        elif (r.route is not None and params.position_every_s < math.inf and before is not None
              and t // params.position_every_s != before[0] // params.position_every_s
              and (ping.speed_mps >= params.position_moving_mps if ping.speed_mps is not None  # Doppler: steadier
                   else haversine_m((before[1], before[2]), pos) >= params.position_moving_mps * (t - before[0]))):
            out.append((tp.DISPATCH_QUEUE, ping, r.route.hub_id))
        a = r.anchor
        if a is None or verdict.reanchored or t - a[0] >= SEGMENT_MIN_S:  # most pings extend the segment
            self._speed_sample(r, t, pos, ping.accuracy_m or 0.0, verdict.reanchored, recv)
        r.alert, fired = alerts.on_ping(r.alert, r.device, ping.speed_mps, params.alerts)
        if fired:
            out.extend([(tp.ALERTS, alerts.alert_event(a)) for a in fired])
        if params.zones is not None:
            r.zones, zone_events = on_ping_zones(r.zones, params.zones, ping, params.zone_params)
            out.extend([(tp.TRACKING, _zone_event(z)) for z in zone_events])
        if r.route is None or r.eta is None:
            return out
        r.fences, fence_events = geofence.on_ping(r.fences, r._route_fences, ping, params.geofence)
        for fe in fence_events:
            out.extend(self._fence_event(r, fe, ping))
        if eta.due(r.eta, t, pos, params.emit):
            p = r.alert.progress  # on a break, the rider goes on at its end
            r.eta, emitted = eta.update(r.eta, t, pos, self.fleet.model, self.fleet.calibration, params.emit,
                                        p.break_until_s if p.task is _ON_BREAK else 0.0)
            if emitted:
                stops = r._eta_route.stops  # type: ignore[union-attr]
                drops = [e for e in emitted if not stops[e.index].pickup]  # a pickup's time is in its drop's
                for e in drops:
                    event = _eta_event(r, e, ping)
                    out.append((tp.ETAS, event))
                    if e.p50_s > stops[e.index].window_end_s:  # late: dispatch decides whether to re-plan
                        out.append((tp.DISPATCH_QUEUE, event, r.route.hub_id))
                if drops:
                    r.alert, fired = alerts.on_etas(r.alert, drops, params.alerts)
                    out.extend([(tp.ALERTS, alerts.alert_event(a)) for a in fired])
        return out

    def tick(self, now_s: float | None = None) -> list[Output]:
        """Time-only alerts for every rider, at most every ``tick_every_s`` of stream time."""
        now = self.now_s if now_s is None else now_s
        if (now < self._tick_at_s and not self._tick_due) or not math.isfinite(now):
            return []
        self._tick_at_s = now + self.params.tick_every_s
        self._tick_due = False
        self._ticked_s = dict(self.partition_s)
        out: list[Output] = self._travel_times(now) if now >= self.fleet.travel_at_s else []
        clocks, partition_of = self.partition_s, self.partition_of
        for r in self.riders.values():
            at = now
            if now_s is None and (part := partition_of.get(r.rider_id)) is not None:
                at = min(now, clocks.get(part, now))  # what its own partition has told so far
            state, fired = alerts.on_tick(r.alert, r.device, at, self.params.alerts)
            if state is not r.alert:
                p = r.alert.progress
                if p.task is _ON_BREAK and state.progress.task is not _ON_BREAK and r.eta is not None:  # it ran out
                    r.eta = eta.paused(r.eta, p.since_s, p.break_until_s)
                r.alert = state
                self.dirty.add(r.rider_id)
            for a in fired:
                event = alerts.alert_event(a)
                out.append((tp.ALERTS, event))
                if a.kind is alerts.AlertKind.RIDER_OFFLINE and r.route is not None:  # dispatch re-plans its stops
                    out.append((tp.DISPATCH_QUEUE, event, r.route.hub_id))
        return out

    def caught_up(self, partitions: Iterable[int]) -> None:
        """The worker has read these ``gps`` partitions to their end: their clocks move to "now" (a
        partition whose riders all went quiet still raises their alerts). Not "now" from then on:
        the next fetch may bring minutes of another partition before any of theirs (seed 8: 121
        false alerts when a partition read to its end stayed on "now" until its next ping).
        A tick inside the batch judged it by its old clock: the next one is due at once when the
        new clock is a tick past that, or a day's last batch would leave its silent riders unjudged."""
        every = self.params.tick_every_s
        for p in partitions:
            if self.now_s > self.partition_s.get(p, -math.inf):
                self.partition_s[p] = self.now_s
                if self.now_s - self._ticked_s.get(p, -math.inf) >= every:
                    self._tick_due = True

    def forget_partitions(self, partitions: Iterable[int]) -> None:
        """Partitions another worker now reads: their clocks and riders are no longer ours."""
        lost = set(partitions)
        for p in lost:
            self.partition_s.pop(p, None)
        self.partition_of = {r: p for r, p in self.partition_of.items() if p not in lost}

    # ---- internals ------------------------------------------------------------------------

    def _travel_times(self, now_s: float) -> list[Output]:
        """``TravelTimesLearned`` for each vehicle type whose learned travel moved enough since it was
        last published, to its compacted topic and to every hub's dispatcher the tracker knows of.
        Checked every ``travel_times_every_s`` once something was learned (not on every tick)."""
        fleet, params = self.fleet, self.params
        out: list[Output] = []
        hubs: list[str] | None = None
        for vehicle_type, legs in sorted(fleet.model.leg_count.items()):
            if legs <= 0 or vehicle_type not in fleet.model.profiles:
                continue
            fleet.travel_at_s = now_s + params.travel_times_every_s
            riders = [r.rider_id for r in self.riders.values() if str(r.vehicle_type) == vehicle_type]
            learned = eta.travel_times(fleet.model, vehicle_type, now_s, riders)
            before = fleet.travel_sent.get(vehicle_type)
            if before is not None and not eta.travel_times_moved(before, learned, params.travel_times_change):
                continue
            event = ev.TravelTimesLearned(
                event_id=derived_id(f"travel-times/{vehicle_type}", f"{now_s!r}/{legs}"),
                occurred_at=datetime.fromtimestamp(now_s, UTC), vehicle_type=ev.VehicleType(vehicle_type),
                leg_speed_mps=learned.leg_speed_mps, service_factor=learned.service_factor, legs=learned.legs,
                rider_factors=tuple(ev.RiderFactor(rider_id=r, travel_factor=f) for r, f in learned.rider_factors))
            out.append((tp.TRAVEL_TIMES, event))
            if hubs is None:
                hubs = sorted({r.route.hub_id for r in self.riders.values() if r.route is not None})
            out.extend((tp.DISPATCH_QUEUE, event, hub) for hub in hubs)
            fleet.travel_sent[vehicle_type] = learned
        return out

    def _speed_sample(self, r: RiderLive, t: float, pos: tuple[float, float], acc: float, reanchored: bool,
                      recv: float) -> None:
        a = r.anchor
        model = self.fleet.model
        if a is None or reanchored or t - a[0] > model.params.max_segment_s:
            r.anchor = (t, pos[0], pos[1], acc)
        elif t - a[0] >= SEGMENT_MIN_S:
            sample = eta.segment_sample(model, str(r.vehicle_type), (a[1], a[2]), a[0], pos, t, max(a[3], acc))
            if sample is not None:
                self.fleet.speed_sample(sample, recv)
            r.anchor = (t, pos[0], pos[1], acc)

    def _fence_event(self, r: RiderLive, fe: geofence.FenceEvent, ping: ev.GpsPing) -> list[Output]:
        assert r.eta is not None and r._eta_route is not None and r.route is not None
        fleet = self.fleet
        at_s = fe.at.timestamp()
        is_stop = fe.kind is geofence.FenceKind.STOP
        index = r._stop_index[fe.fence_id] if is_stop else -1
        stop = r.route.stops[index] if is_stop else None
        order_id = stop.order_id if stop is not None else None
        stop_kind = stop.kind if stop is not None else None
        out: list[Output] = []
        if isinstance(fe, geofence.Arrival):
            out.append((tp.TRACKING, ev.ArrivedAtStop(
                event_id=derived_id(f"{fe.route_id}/{fe.fence_id}", "arrived"), occurred_at=fe.at,
                rider_id=r.rider_id, route_id=fe.route_id, fence_id=fe.fence_id, kind=fe.kind,
                order_id=order_id, arrived_at=fe.at, location=ev.GeoPoint(lat=fe.lat, lon=fe.lon),
                confidence=_unit(fe.confidence), source_ping_id=fe.source_ping_id, stop_kind=stop_kind)))
            if is_stop:
                if stop_kind is not ev.StopKind.PICKUP:  # a pickup is confirmed by the rider ("picked_up")
                    # the lifecycle's submission: the order is at the door (its state machine decides)
                    out.append((tp.INBOX, ev.StatusChanged(
                        event_id=derived_id(f"{fe.route_id}/{fe.fence_id}", "arrived-status"), occurred_at=fe.at,
                        order_id=order_id, to_status=ev.OrderStatus.ARRIVED, reason=lifecycle.GEOFENCE,
                        rider_id=r.rider_id, location=ev.GeoPoint(lat=fe.lat, lon=fe.lon))))
                r.eta, to_score, leg = eta.arrived(r.eta, index, at_s, fleet.model)
                fleet.calibration = eta.observe_arrivals(fleet.calibration, to_score, at_s)
                if leg is not None:
                    fleet.model = eta.learn_legs(fleet.model, [leg])
        else:
            out.append((tp.TRACKING, ev.DepartedStop(
                event_id=derived_id(f"{fe.route_id}/{fe.fence_id}", "departed"), occurred_at=fe.at,
                rider_id=r.rider_id, route_id=fe.route_id, fence_id=fe.fence_id, kind=fe.kind,
                order_id=order_id, departed_at=fe.at, confidence=_unit(fe.confidence),
                source_ping_id=fe.source_ping_id, stop_kind=stop_kind)))
            if is_stop:
                if r.eta.at_stop_since_s is not None and r.eta.next_stop - 1 == index:
                    r.eta, service = eta.departed(r.eta, at_s, fleet.model)
                    if service is not None:
                        fleet.model = eta.learn_services(fleet.model, [service])
            elif r.eta.next_stop == 0:  # left the hub with the load: the first leg starts now
                r.eta = eta.start_route(r._eta_route, at_s)
        r.alert = alerts.on_fence(r.alert, fe)
        return out


_ON_BREAK = alerts.Task.ON_BREAK


def _break_over(r: RiderLive, at_s: float) -> None:
    """The rider's break ended at ``at_s``: alerts watch again, and its time is taken out of the leg
    or stay it interrupted (the ETA learns no break as travel or service)."""
    p = r.alert.progress
    if p.task is not _ON_BREAK:
        return
    if r.eta is not None:
        r.eta = eta.paused(r.eta, p.since_s, at_s)
    r.alert = alerts.end_break(r.alert, at_s)


def _zone_event(z: ZoneEvent) -> ev.ZoneEvent:
    return ev.ZoneEvent(event_id=derived_id(f"{z.rider_id}/{z.zone_id}/{z.kind.value}", z.at.isoformat()),
                        occurred_at=z.at, rider_id=z.rider_id, zone_id=z.zone_id, kind=z.kind,
                        at=z.at, source_ping_id=z.source_ping_id)


def _unit(x: float) -> float:
    return min(1.0, max(0.0, x))


def _eta_event(r: RiderLive, e: eta.StopEta, ping: ev.GpsPing) -> ev.EtaUpdated:
    route = r.route
    assert route is not None
    return ev.EtaUpdated(event_id=derived_id(f"{route.route_id}/{e.order_id}", f"eta/{ping.event_id}"),
                         occurred_at=ping.device_time, order_id=e.order_id, rider_id=r.rider_id,
                         route_id=route.route_id, eta_p50=datetime.fromtimestamp(e.p50_s, UTC),
                         eta_p90=datetime.fromtimestamp(e.p90_s, UTC))


def events_of(outputs: Iterable[Output], spec: tp.TopicSpec) -> list[ev.Event]:
    return [o[1] for o in outputs if o[0] is spec]


__all__ = ["STATE_FORMAT", "Fleet", "Output", "RiderLive", "StaleState", "Tracker", "TrackerParams", "events_of",
           "route_windows"]
