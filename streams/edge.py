"""The stream edge, pure part: what every consumer does to a record before the domain sees it, and
the dead letter it writes when the record cannot be accepted.

A record is accepted when it decodes (framing, schema, contract rules), belongs on its topic, has
the key its event's stream key says, carries an event time within bounds of the broker timestamp
(or of now when it has none) and not past now, and fits the limits (size, ids, text, stops per
route, skills per order). Anything else becomes one ``DeadLetter`` with the reason; an original
too large to keep whole is kept as its first bytes with its length and SHA-256.

The Kafka clients live in :mod:`streams.kafka` and the Faust adapter in :mod:`streams.app`; both
call :meth:`Edge.accept` and :meth:`Edge.dead_letter`, so there is one decode and one dead-letter
path for every worker.
"""

from __future__ import annotations

import dataclasses
import hashlib
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from schemas import Codec, DecodeError, InvalidEvent, UnknownSchema
from schemas import events as ev
from schemas import topics as tp
from schemas.redact import redact
from streams.domain.ids import derived_id

# Keys the tracking worker's state topic uses for itself; no stream key may take them.
RESERVED_IDS = frozenset({"__fleet__", "__marker__"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """What one record may hold; the settings ``MILESTREAM_MAX_*`` set them."""

    max_message_bytes: int = 512 * 1024
    max_event_age_s: float = 7 * 86400.0  # event time before the broker timestamp (or now)
    max_event_lead_s: float = 3600.0  # event time after the broker timestamp, and after now
    max_route_stops: int = 1000
    max_order_skills: int = 32
    max_id_chars: int = 128
    max_text_chars: int = 4000
    max_breaks: int = 24  # planned breaks per shift, and per route
    dead_letter_keep_bytes: int = 16 * 1024  # of an original over max_message_bytes


class Record(NamedTuple):
    """What the edge needs of a consumed record, whichever client read it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None = None  # the broker's (or producer's) timestamp; None or <= 0 when absent


@dataclass(frozen=True, slots=True)
class Rejection:
    kind: ev.DeadLetterKind
    reason: str


def _string_fields(cls: type) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(id fields, text fields, string-tuple fields) of an event class, from its annotations."""
    ids, texts, tuples = [], [], []
    for f in dataclasses.fields(cls):
        hint = str(f.type).replace(" ", "")
        if hint in ("str", "str|None"):
            (ids if f.name.endswith("_id") or f.name == "device_id" else texts).append(f.name)
        elif hint == "tuple[str,...]":
            tuples.append(f.name)
    return tuple(ids), tuple(texts), tuple(tuples)


_FIELDS: dict[type, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    cls: _string_fields(cls) for cls in (*ev.EVENT_TYPES, ev.PlannedStop, ev.Location, ev.PlannedBreak, ev.RouteBreak)}


class Edge:
    """Checks records against the contract and the limits; builds dead letters. No I/O, no clock
    of its own: callers pass ``now_s``."""

    def __init__(self, codec: Codec, topics: Mapping[str, tp.TopicSpec], limits: Limits = Limits()) -> None:
        self.codec = codec
        self.topics = dict(topics)  # full topic name -> spec
        self.limits = limits

    # -- accept -------------------------------------------------------------------------------

    def accept(self, record: Record, now_s: float, *, rekeyed: bool = False) -> ev.Event | Rejection:
        """The event in ``record``, or why it is refused. ``rekeyed``: the topic is keyed by another
        field than the event's stream key on purpose (dispatch-queue, by hub); the key must still be there."""
        value = record.value
        limits = self.limits
        if value is not None and len(value) > limits.max_message_bytes:
            return Rejection(ev.DeadLetterKind.INVALID, f"message of {len(value)} bytes is over the limit of "
                                                        f"{limits.max_message_bytes} (MILESTREAM_MAX_MESSAGE_BYTES)")
        try:
            event = self.codec.decode(value)
        except UnknownSchema as exc:
            return Rejection(ev.DeadLetterKind.UNKNOWN_SCHEMA, str(exc))
        except DecodeError as exc:
            return Rejection(ev.DeadLetterKind.MALFORMED, str(exc))
        except InvalidEvent as exc:
            return Rejection(ev.DeadLetterKind.INVALID, str(exc))
        spec = self.topics.get(record.topic)
        if spec is not None and not isinstance(event, spec.events):
            return Rejection(ev.DeadLetterKind.INVALID, f"{type(event).__name__} does not belong on {record.topic}")
        key = record.key
        if key is None or not key:
            return Rejection(ev.DeadLetterKind.INVALID, f"message has no key; {type(event).__name__} must be keyed "
                                                        f"by its stream key {event.key!r}")
        if not rekeyed and key != event.key.encode():
            return Rejection(ev.DeadLetterKind.INVALID,
                             f"message key {key[:64]!r} differs from the event's stream key {event.key[:64]!r}")
        problem = self.envelope_problem(event, record.timestamp_ms, now_s)
        if problem is not None:
            return Rejection(ev.DeadLetterKind.INVALID, problem)
        return event

    def envelope_problem(self, event: ev.Event, timestamp_ms: int | None, now_s: float) -> str | None:
        """Why an otherwise valid event is refused at the edge, or None."""
        limits = self.limits
        at = event.occurred_at.timestamp()
        ref = timestamp_ms / 1000.0 if timestamp_ms is not None and timestamp_ms > 0 else now_s
        if at < ref - limits.max_event_age_s or at > ref + limits.max_event_lead_s or at > now_s + limits.max_event_lead_s:
            return (f"{type(event).__name__}.occurred_at {event.occurred_at.isoformat()} is outside "
                    f"{limits.max_event_age_s:g} s before and {limits.max_event_lead_s:g} s after the record's "
                    f"timestamp {_iso(ref)} (MILESTREAM_MAX_EVENT_AGE_S, MILESTREAM_MAX_EVENT_LEAD_S)")
        problem = self._strings_problem(event)
        if problem is not None:
            return problem
        if type(event) is ev.RoutePlanned:
            if len(event.stops) > limits.max_route_stops:
                return (f"RoutePlanned {event.route_id!r} has {len(event.stops)} stops, over the limit of "
                        f"{limits.max_route_stops} (MILESTREAM_MAX_ROUTE_STOPS)")
            for stop in event.stops:
                if (problem := self._strings_problem(stop, "stop ")) is not None:
                    return problem
            if (problem := self._breaks_problem(event, event.breaks)) is not None:
                return problem
        elif type(event) is ev.OrderCreated:
            if len(event.required_skills) > limits.max_order_skills:
                return (f"OrderCreated {event.order_id!r} needs {len(event.required_skills)} skills, over the limit "
                        f"of {limits.max_order_skills} (MILESTREAM_MAX_ORDER_SKILLS)")
            for where in ("drop", "pickup"):
                place = getattr(event, where)
                if place is not None and (problem := self._strings_problem(place, where + " ")) is not None:
                    return problem
        elif type(event) is ev.RiderShiftStarted:
            if len(event.skills) > limits.max_order_skills:
                return (f"RiderShiftStarted {event.rider_id!r} has {len(event.skills)} skills, over the limit of "
                        f"{limits.max_order_skills} (MILESTREAM_MAX_ORDER_SKILLS)")
            if (problem := self._breaks_problem(event, event.breaks)) is not None:
                return problem
        elif type(event) is ev.OrderUpdated:
            for where in ("drop", "pickup"):
                place = getattr(event, where)
                if place is not None and (problem := self._strings_problem(place, where + " ")) is not None:
                    return problem
        return None

    def _breaks_problem(self, event: ev.RiderShiftStarted | ev.RoutePlanned,
                        breaks: tuple[ev.PlannedBreak, ...] | tuple[ev.RouteBreak, ...]) -> str | None:
        if len(breaks) > self.limits.max_breaks:
            return (f"{type(event).__name__} of rider {event.rider_id!r} has {len(breaks)} breaks, over the limit of "
                    f"{self.limits.max_breaks}")
        for pause in breaks:
            if (problem := self._strings_problem(pause, "break ")) is not None:
                return problem
        return None

    def _strings_problem(self, obj: Any, where: str = "") -> str | None:
        ids, texts, tuples = _FIELDS[type(obj)]
        limits = self.limits
        for name in ids:
            value = getattr(obj, name)
            if value is None:
                continue
            if not value or len(value) > limits.max_id_chars or not value.isprintable() or value in RESERVED_IDS:
                return (f"{where}{name} {value[:64]!r} is not an id: ids are non-empty, printable, at most "
                        f"{limits.max_id_chars} characters (MILESTREAM_MAX_ID_CHARS), and not one of "
                        f"{sorted(RESERVED_IDS)}")
        for name in texts:
            value = getattr(obj, name)
            if value is not None and len(value) > limits.max_text_chars:
                return (f"{where}{name} has {len(value)} characters, over the limit of {limits.max_text_chars} "
                        f"(MILESTREAM_MAX_TEXT_CHARS)")
        for name in tuples:
            for value in getattr(obj, name):
                if not value or len(value) > limits.max_id_chars or not value.isprintable():
                    return f"{where}{name} holds {value[:64]!r}: entries are printable, at most {limits.max_id_chars} characters"
        return None

    # -- dead letters ---------------------------------------------------------------------------

    def dead_letter(self, record: Record, rejection: Rejection, now_s: float) -> ev.DeadLetter:
        """The dead letter for ``record``; its id derives from where the record was, so a replay
        writes the same id. An original over the size limit is kept as its first bytes, with its
        length and SHA-256, so the letter itself always fits the topic."""
        where = f"{record.topic}/{record.partition}/{record.offset}"
        original = bytes(record.value or b"")
        size = len(original)
        digest = None
        keep = self.limits.dead_letter_keep_bytes
        if size > self.limits.max_message_bytes or size > keep * 4:
            digest = hashlib.sha256(original).hexdigest()
            original = original[:keep]
        key = (record.key or b"")[:self.limits.max_id_chars * 4].decode("utf-8", "replace")
        return ev.DeadLetter(
            event_id=derived_id(where, "dead-letter"), occurred_at=datetime.fromtimestamp(now_s, UTC),
            source_key=key or where, source_topic=record.topic, source_partition=record.partition,
            source_offset=record.offset, original=original, error_kind=rejection.kind,
            reason=redact(rejection.reason)[:2000], original_size=size if digest else None, original_sha256=digest)


def _iso(epoch_s: float) -> str:
    try:
        return datetime.fromtimestamp(epoch_s, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return f"{epoch_s:g} s"


def edge_for(codec: Codec, topic_name: typing.Callable[[str], str], limits: Limits = Limits()) -> Edge:
    """An edge that knows every contract topic by its full name (``topic_name`` adds the prefix)."""
    return Edge(codec, {topic_name(spec.name): spec for spec in tp.ALL}, limits)


__all__ = ["RESERVED_IDS", "Edge", "Limits", "Record", "Rejection", "edge_for"]
