"""Contract rules an event must keep beyond its Avro types (ranges, orderings, non-empty ids).

Checked before an event is produced and after it is decoded; a breach is ``InvalidEvent``.
"""

from __future__ import annotations

import math

from schemas import events as ev


class InvalidEvent(ValueError):
    """An event that has the right shape but breaks a rule of the contract."""


def _lat_lon(name: str, lat: float, lon: float) -> None:
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0) or not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise InvalidEvent(f"{name}: lat/lon ({lat}, {lon}) out of range")


def check(event: ev.Event) -> None:
    if not event.event_id:
        raise InvalidEvent(f"{type(event).__name__}.event_id is empty")
    if not event.key:
        raise InvalidEvent(f"{type(event).__name__} has an empty stream key")
    if event.occurred_at.tzinfo is None:
        raise InvalidEvent(f"{type(event).__name__}.occurred_at must be timezone-aware UTC")
    match event:
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
        case ev.GpsPing():
            _lat_lon("ping", event.lat, event.lon)
            if event.accuracy_m is not None and not event.accuracy_m >= 0:
                raise InvalidEvent(f"accuracy_m must be >= 0, got {event.accuracy_m}")
        case ev.RoutePlanned():
            for stop in event.stops:
                _lat_lon(f"stop {stop.order_id}", stop.lat, stop.lon)
        case ev.StatusChanged():
            if event.location is not None:
                _lat_lon("location", event.location.lat, event.location.lon)
        case _:
            pass
