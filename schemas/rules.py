"""Contract rules an event must keep beyond its Avro types (ranges, orderings, non-empty ids).

Checked before an event is produced and after it is decoded; a breach is ``InvalidEvent``.
"""

from __future__ import annotations

import math

from schemas import events as ev


class InvalidEvent(ValueError):
    """An event that has the right shape but breaks a rule of the contract."""


def _lat_lon(name: str, lat: float, lon: float) -> None:
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):  # NaN and infinities compare False
        raise InvalidEvent(f"{name}: lat/lon ({lat}, {lon}) out of range")


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
            if event.accuracy_m is not None and not event.accuracy_m >= 0:
                raise InvalidEvent(f"accuracy_m must be >= 0, got {event.accuracy_m}")
        case ev.OrderCreated():
            _lat_lon("drop", event.drop.lat, event.drop.lon)
            if event.pickup is not None:
                _lat_lon("pickup", event.pickup.lat, event.pickup.lon)
            if event.mode is ev.DeliveryMode.HYPERLOCAL and event.pickup is None:
                raise InvalidEvent("hyperlocal order needs a pickup location")
            if event.window_end < event.window_start:
                raise InvalidEvent(f"window_end {event.window_end} is before window_start {event.window_start}")
            for name in ("service_time_s", "weight_kg", "volume_l", "units", "cod_amount"):
                value = getattr(event, name)
                if not (value >= 0 and math.isfinite(value)):
                    raise InvalidEvent(f"OrderCreated.{name} must be >= 0, got {value}")
        case ev.RiderShiftStarted():
            _lat_lon("start", event.start.lat, event.start.lon)
            if event.shift_end <= event.shift_start:
                raise InvalidEvent("shift_end must be after shift_start")
            for value in (event.capacity_weight_kg, event.capacity_volume_l, event.capacity_units):
                if not (value >= 0 and math.isfinite(value)):
                    raise InvalidEvent(f"capacities must be finite and >= 0, got {value}")
        case ev.RoutePlanned():
            if not event.route_id or not event.hub_id:
                raise InvalidEvent("RoutePlanned: route_id and hub_id must not be empty")
            for stop in event.stops:
                if not stop.order_id:
                    raise InvalidEvent(f"RoutePlanned {event.route_id}: a stop has an empty order_id")
                _lat_lon(f"stop {stop.order_id}", stop.lat, stop.lon)
                if stop.window_start is not None and stop.window_end is not None and stop.window_end < stop.window_start:
                    raise InvalidEvent(f"stop {stop.order_id}: window_end is before window_start")
        case ev.StatusChanged():
            if event.location is not None:
                _lat_lon("location", event.location.lat, event.location.lon)
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
