"""Contract rules an event must keep beyond its Avro types (ranges, orderings, non-empty ids).

Checked before an event is produced and after it is decoded; a breach is ``InvalidEvent``.
"""

from __future__ import annotations

import math

from schemas import events as ev
from schemas.errors import InvalidEvent


def _lat_lon(name: str, lat: float, lon: float) -> None:
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):  # NaN and infinities compare False
        raise InvalidEvent(f"{name}: lat/lon ({lat}, {lon}) out of range")


# Upper bounds no real delivery reaches: a larger value is a unit mistake or an attack on the
# planner (capacities are scaled to integers; service times add up to shift lengths).
MAX_SERVICE_S = 86_400
MAX_WEIGHT_KG = 100_000.0
MAX_VOLUME_L = 1_000_000.0
MAX_UNITS = 100_000
MAX_MONEY = 1e9
MAX_SPEED_MPS = 150.0  # 540 km/h: a device reporting more is broken
MAX_ROUTE_M = 10_000_000.0
MAX_ATTEMPTS = 20  # delivery attempts of one order
MAX_PROMISE_MIN = 24 * 60
MAX_SERVICE_FACTOR = 100.0
HOURS = 24  # TravelTimesLearned.leg_speed_mps: one value per UTC hour


def _within(name: str, value: float, high: float) -> None:
    if not (math.isfinite(value) and 0 <= value <= high):  # NaN and infinities fail isfinite
        raise InvalidEvent(f"{name} must be within 0..{high:g}, got {value}")


def _confidence(name: str, value: float) -> None:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise InvalidEvent(f"{name}.confidence must be within 0..1, got {value}")


def _fence(event: ev.ArrivedAtStop | ev.DepartedStop) -> None:
    """A stop's fence is its order's; a hub serves many orders, so it names none."""
    name = type(event).__name__
    if not event.route_id or not event.fence_id or not event.source_ping_id:
        raise InvalidEvent(f"{name}: route_id, fence_id and source_ping_id must not be empty")
    if event.kind is ev.FenceKind.STOP and not event.order_id:
        raise InvalidEvent(f"{name} at stop {event.fence_id} needs the order_id")
    if event.kind is ev.FenceKind.HUB and event.order_id is not None:
        raise InvalidEvent(f"{name} at hub {event.fence_id} must not carry an order_id ({event.order_id})")
    _confidence(name, event.confidence)


def _planned_breaks(event: ev.RiderShiftStarted) -> None:
    ids = set()
    for pause in event.breaks:
        if not pause.break_id or pause.break_id in ids:
            raise InvalidEvent(f"RiderShiftStarted {event.rider_id}: break ids must be non-empty and unique, "
                               f"got {pause.break_id!r}")
        ids.add(pause.break_id)
        if pause.latest_start < pause.earliest_start:
            raise InvalidEvent(f"break {pause.break_id}: latest_start is before earliest_start")
        if not 0 < pause.duration_s <= MAX_SERVICE_S:
            raise InvalidEvent(f"break {pause.break_id}: duration_s must be within 1..{MAX_SERVICE_S}, "
                               f"got {pause.duration_s}")


def _attempt_decided(event: ev.AttemptDecided) -> None:
    if not 1 <= event.attempt <= MAX_ATTEMPTS:
        raise InvalidEvent(f"AttemptDecided.attempt counts from 1 (at most {MAX_ATTEMPTS}), got {event.attempt}")
    if event.decision is ev.AttemptDecision.REATTEMPT:
        if event.window_start is None or event.window_end is None:
            raise InvalidEvent("AttemptDecided reattempt needs the re-attempt's window_start and window_end")
        if event.window_end < event.window_start:
            raise InvalidEvent(f"window_end {event.window_end} is before window_start {event.window_start}")
    elif event.window_start is not None or event.window_end is not None:
        raise InvalidEvent(f"AttemptDecided {event.decision.value} has no re-attempt window")


def _travel_times(event: ev.TravelTimesLearned) -> None:
    if len(event.leg_speed_mps) != HOURS:
        raise InvalidEvent(f"TravelTimesLearned.leg_speed_mps needs {HOURS} hourly values, got {len(event.leg_speed_mps)}")
    for hour, speed in enumerate(event.leg_speed_mps):
        if not (math.isfinite(speed) and 0 < speed <= MAX_SPEED_MPS):
            raise InvalidEvent(f"TravelTimesLearned.leg_speed_mps[{hour}] must be within 0..{MAX_SPEED_MPS:g} "
                               f"(exclusive of 0), got {speed}")
    if not (math.isfinite(event.service_factor) and 0 < event.service_factor <= MAX_SERVICE_FACTOR):
        raise InvalidEvent(f"TravelTimesLearned.service_factor must be within 0..{MAX_SERVICE_FACTOR:g} "
                           f"(exclusive of 0), got {event.service_factor}")
    if event.legs < 0:
        raise InvalidEvent(f"TravelTimesLearned.legs must be >= 0, got {event.legs}")


def check(event: ev.Event) -> None:
    if not event.event_id:
        raise InvalidEvent(f"{type(event).__name__}.event_id is empty")
    if not event.key:
        raise InvalidEvent(f"{type(event).__name__} has an empty stream key")
    if event.occurred_at.tzinfo is None:
        raise InvalidEvent(f"{type(event).__name__}.occurred_at must be timezone-aware UTC")
    match event:
        case ev.GpsPing():  # first: most events are pings
            _lat_lon("ping", event.lat, event.lon)
            if event.accuracy_m is not None and not (event.accuracy_m >= 0 and math.isfinite(event.accuracy_m)):
                raise InvalidEvent(f"accuracy_m must be >= 0, got {event.accuracy_m}")
            if event.speed_mps is not None:
                _within("GpsPing.speed_mps", event.speed_mps, MAX_SPEED_MPS)
            if event.heading_deg is not None:
                _within("GpsPing.heading_deg", event.heading_deg, 360.0)
            if event.battery_pct is not None:
                _within("GpsPing.battery_pct", event.battery_pct, 100.0)
        case ev.OrderCreated():
            _lat_lon("drop", event.drop.lat, event.drop.lon)
            if event.pickup is not None:
                _lat_lon("pickup", event.pickup.lat, event.pickup.lon)
            if event.mode is ev.DeliveryMode.HYPERLOCAL and event.pickup is None:
                raise InvalidEvent("hyperlocal order needs a pickup location")
            if event.window_end < event.window_start:
                raise InvalidEvent(f"window_end {event.window_end} is before window_start {event.window_start}")
            for name, high in (("service_time_s", MAX_SERVICE_S), ("weight_kg", MAX_WEIGHT_KG), ("volume_l", MAX_VOLUME_L),
                               ("units", MAX_UNITS), ("cod_amount", MAX_MONEY)):
                _within(f"OrderCreated.{name}", getattr(event, name), high)
            if event.promise_min is not None and not 1 <= event.promise_min <= MAX_PROMISE_MIN:
                raise InvalidEvent(f"OrderCreated.promise_min must be within 1..{MAX_PROMISE_MIN}, got {event.promise_min}")
            if event.max_attempts is not None and not 1 <= event.max_attempts <= MAX_ATTEMPTS:
                raise InvalidEvent(f"OrderCreated.max_attempts must be within 1..{MAX_ATTEMPTS}, got {event.max_attempts}")
        case ev.OrderUpdated():
            if event.drop is not None:
                _lat_lon("drop", event.drop.lat, event.drop.lon)
            if event.pickup is not None:
                _lat_lon("pickup", event.pickup.lat, event.pickup.lon)
            for name, high in (("service_time_s", MAX_SERVICE_S), ("weight_kg", MAX_WEIGHT_KG), ("volume_l", MAX_VOLUME_L),
                               ("units", MAX_UNITS)):
                if getattr(event, name) is not None:
                    _within(f"OrderUpdated.{name}", getattr(event, name), high)
            if event.window_start is not None and event.window_end is not None and event.window_end < event.window_start:
                raise InvalidEvent(f"window_end {event.window_end} is before window_start {event.window_start}")
        case ev.RiderShiftStarted():
            _lat_lon("start", event.start.lat, event.start.lon)
            if event.shift_end <= event.shift_start:
                raise InvalidEvent("shift_end must be after shift_start")
            for name, high in (("capacity_weight_kg", MAX_WEIGHT_KG), ("capacity_volume_l", MAX_VOLUME_L),
                               ("capacity_units", MAX_UNITS)):
                _within(f"RiderShiftStarted.{name}", getattr(event, name), high)
            _planned_breaks(event)
        case ev.RoutePlanned():
            if not event.route_id or not event.hub_id:
                raise InvalidEvent("RoutePlanned: route_id and hub_id must not be empty")
            _lat_lon("route start", event.start.lat, event.start.lon)
            _within("RoutePlanned.distance_m", event.distance_m, MAX_ROUTE_M)
            for stop in event.stops:
                _within(f"stop {stop.order_id} service_time_s", stop.service_time_s, MAX_SERVICE_S)
                if not stop.order_id:
                    raise InvalidEvent(f"RoutePlanned {event.route_id}: a stop has an empty order_id")
                _lat_lon(f"stop {stop.order_id}", stop.lat, stop.lon)
                if stop.window_start is not None and stop.window_end is not None and stop.window_end < stop.window_start:
                    raise InvalidEvent(f"stop {stop.order_id}: window_end is before window_start")
            for pause in event.breaks:
                if not pause.break_id:
                    raise InvalidEvent(f"RoutePlanned {event.route_id}: a break has an empty break_id")
                if pause.end < pause.start:
                    raise InvalidEvent(f"RoutePlanned {event.route_id}: break {pause.break_id} ends before it starts")
        case ev.StatusChanged():
            if event.location is not None:
                _lat_lon("location", event.location.lat, event.location.lon)
            if event.failure_reason is not None and event.to_status is not ev.OrderStatus.FAILED:
                raise InvalidEvent(f"StatusChanged.failure_reason belongs to a failed attempt, not to "
                                   f"{event.to_status.value}")
        case ev.AttemptDecided():
            _attempt_decided(event)
        case ev.BreakStarted() | ev.BreakEnded():
            if event.break_id is not None and not event.break_id:
                raise InvalidEvent(f"{type(event).__name__}.break_id is empty (null for an unplanned break)")
            if event.position is not None:
                _lat_lon("position", event.position.lat, event.position.lon)
        case ev.TravelTimesLearned():
            _travel_times(event)
        case ev.ArrivedAtStop():
            _fence(event)
            _lat_lon("location", event.location.lat, event.location.lon)
        case ev.DepartedStop():
            _fence(event)
        case ev.ZoneEvent():
            if not event.zone_id or not event.source_ping_id:
                raise InvalidEvent("ZoneEvent: zone_id and source_ping_id must not be empty")
        case ev.CustomerNotified():
            if event.attempt < 1:
                raise InvalidEvent(f"CustomerNotified.attempt counts from 1, got {event.attempt}")
            if (event.window_start is None) != (event.window_end is None):
                raise InvalidEvent("CustomerNotified: an ETA window needs both window_start and window_end")
            if event.window_start is not None and event.window_end is not None and event.window_end < event.window_start:
                raise InvalidEvent(f"window_end {event.window_end} is before window_start {event.window_start}")
        case _:
            pass
