"""Events to ClickHouse rows, pure. ``fold_order`` keeps the current-order-state row and is
idempotent: an event at or below the row's version (ledger offset) changes nothing.

Text from outside reaches a terminal through the tables: free-text columns (failure reasons,
dead-letter reasons) are stored with control characters escaped and URL credentials masked
(``schemas.redact``); the payload is JSON, which escapes control characters itself. Identifiers
(event, order, rider, device ids, stream and source keys) are stored as they are, so they still
join across tables and match the ledger; ``milestream sql`` escapes every cell it prints."""

from __future__ import annotations

import dataclasses
import enum
import json
from datetime import datetime
from typing import Any

from schemas import events as ev
from schemas.codec import to_record
from schemas.redact import redact

S = ev.OrderStatus

EVENT_COLUMNS = ("event_id", "event_type", "stream_key", "occurred_at", "topic", "partition", "offset", "schema_version", "payload")
GPS_COLUMNS = ("event_id", "rider_id", "device_id", "device_time", "received_at", "lat", "lon", "speed_mps", "heading_deg",
               "accuracy_m", "battery_pct")
DEAD_LETTER_COLUMNS = ("event_id", "occurred_at", "source_topic", "source_partition", "source_offset", "source_key",
                       "error_kind", "reason", "original")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(type(value).__name__)


def event_row(event: ev.Event, topic: str, partition: int, offset: int) -> tuple[Any, ...]:
    # ensure_ascii: control characters (and all non-ASCII) as \uXXXX escapes, never raw.
    payload = json.dumps(to_record(event), default=_json_default, separators=(",", ":"), ensure_ascii=True)
    return (event.event_id, type(event).__name__, event.key, event.occurred_at, topic, partition, offset,
            event.schema_version, payload)


def gps_row(ping: ev.GpsPing) -> tuple[Any, ...]:
    return (ping.event_id, ping.rider_id, ping.device_id, ping.device_time, ping.occurred_at, ping.lat, ping.lon,
            ping.speed_mps, ping.heading_deg, ping.accuracy_m, ping.battery_pct)


def dead_letter_row(letter: ev.DeadLetter) -> tuple[Any, ...]:
    return (letter.event_id, letter.occurred_at, letter.source_topic, letter.source_partition, letter.source_offset,
            letter.source_key, letter.error_kind.value, redact(letter.reason), letter.original.hex())


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class OrderRow:
    order_id: str
    tracking_id: str
    hub_id: str
    mode: str
    status: str
    rider_id: str
    route_id: str
    attempts: int
    created_at: datetime
    window_start: datetime
    window_end: datetime
    assigned_at: datetime | None
    out_for_delivery_at: datetime | None
    arrived_at: datetime | None
    delivered_at: datetime | None
    failed_at: datetime | None
    failure_reason: str
    cancelled_at: datetime | None
    returned_at: datetime | None  # the parcel back at the hub after the last attempt
    drop_lat: float
    drop_lon: float
    weight_kg: float
    cod_amount: float
    updated_at: datetime
    version: int


ORDER_COLUMNS = tuple(f.name for f in dataclasses.fields(OrderRow))


def fold_order(row: OrderRow | None, event: ev.Event, version: int) -> OrderRow | None:
    """The order-state row after one ledger event at ``version``; None if the event says nothing
    about a known order (e.g. history before OrderCreated, which the ledger never has)."""
    if row is not None and version <= row.version:
        return row
    at = event.occurred_at
    if isinstance(event, ev.OrderCreated):
        if row is not None:
            return row
        return OrderRow(order_id=event.order_id, tracking_id=event.tracking_id, hub_id=event.hub_id, mode=event.mode.value,
                        status=S.CREATED.value, rider_id="", route_id="", attempts=0, created_at=at,
                        window_start=event.window_start, window_end=event.window_end, assigned_at=None,
                        out_for_delivery_at=None, arrived_at=None, delivered_at=None, failed_at=None, failure_reason="",
                        cancelled_at=None, returned_at=None, drop_lat=event.drop.lat, drop_lon=event.drop.lon, weight_kg=event.weight_kg,
                        cod_amount=event.cod_amount, updated_at=at, version=version)
    if row is None:
        return None
    base = dataclasses.replace(row, updated_at=max(row.updated_at, at), version=version)
    match event:
        case ev.OrderUpdated():
            return dataclasses.replace(
                base, window_start=event.window_start or row.window_start, window_end=event.window_end or row.window_end,
                drop_lat=event.drop.lat if event.drop else row.drop_lat, drop_lon=event.drop.lon if event.drop else row.drop_lon)
        case ev.OrderCancelled():
            return dataclasses.replace(base, status=S.CANCELLED.value, cancelled_at=at)
        case ev.OrderAssigned():
            return dataclasses.replace(base, status=S.ASSIGNED.value, rider_id=event.rider_id, route_id=event.route_id,
                                       assigned_at=at)
        case ev.StatusChanged():
            to = event.to_status
            changes: dict[str, Any] = {"status": to.value}
            if to is S.OUT_FOR_DELIVERY:
                changes.update(out_for_delivery_at=at, attempts=row.attempts + 1)
            elif to is S.ARRIVED:
                changes["arrived_at"] = at
            elif to is S.DELIVERED:
                changes["delivered_at"] = at
            elif to is S.FAILED:
                changes.update(failed_at=at, failure_reason=redact(failure_text(event)))
            elif to is S.RETURNED_TO_HUB:
                changes["returned_at"] = at
            return dataclasses.replace(base, **changes)
        case _:
            return base


def failure_text(failed: ev.StatusChanged) -> str:
    """The reason code, then the rider's words when they add something (``no_access: gate locked``);
    a ledger written before reason codes has the words alone."""
    words = failed.reason.strip()
    if failed.failure_reason is None:
        return failed.reason
    code = failed.failure_reason.value
    return code if not words or words == code else f"{code}: {words}"


def order_row_values(row: OrderRow) -> tuple[Any, ...]:
    return tuple(getattr(row, c) for c in ORDER_COLUMNS)
