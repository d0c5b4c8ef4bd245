"""Avro encoding of events on the wire.

Default framing is Avro single-object encoding: ``C3 01``, the 8-byte little-endian
CRC-64-AVRO fingerprint of the writer schema's canonical form, then the body. Any consumer in
any language decodes our topics with the ``.avsc`` files alone. With a schema registry
configured, events are written in the Confluent framing (``00``, 4-byte schema id, body);
both framings are always accepted on read.

Payloads written with a released earlier schema version are read into the current types by
Avro schema resolution (the writer schema is found from the fingerprint).

Errors::

    DecodeError
    ├── MalformedMessage   not an Avro message we can parse
    └── UnknownSchema      framing is fine but the fingerprint / schema id is not ours
    InvalidEvent (ValueError)  decodes, but breaks a rule of the contract (see rules.py)
"""

from __future__ import annotations

import enum
import io
import json
import struct
import typing
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from datetime import datetime
from pathlib import Path
from types import UnionType
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from schemas import events as ev
from schemas.flat import flat_reader
from schemas.rules import InvalidEvent, check

SCHEMA_DIR = Path(__file__).parent
SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"


class DecodeError(Exception):
    """A message value could not be turned into an event."""


class MalformedMessage(DecodeError):
    pass


class UnknownSchema(DecodeError):
    pass


__all__ = ["Codec", "DecodeError", "MalformedMessage", "UnknownSchema", "InvalidEvent", "load_schema"]


def load_schema(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def schema_fingerprint(parsed: Any) -> bytes:
    """CRC-64-AVRO of the parsing canonical form, little-endian, as the spec frames it."""
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))


# ---- dataclass <-> Avro record conversion -------------------------------------------------

Conv = Callable[[Any], Any]


def _identity(x: Any) -> Any:
    return x


def _converters(tp: Any) -> tuple[Conv, Conv]:
    """(to_avro, from_avro) for one annotated type."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        to, frm = _converters(args[0])
        if to is _identity and frm is _identity:
            return _identity, _identity
        return (lambda v: None if v is None else to(v)), (lambda v: None if v is None else frm(v))
    if origin is tuple:
        to, frm = _converters(typing.get_args(tp)[0])
        if to is _identity and frm is _identity:
            return list, tuple
        return (lambda v: [to(x) for x in v]), (lambda v: tuple(frm(x) for x in v))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return (lambda v: v.value), tp
    if is_dataclass(tp):
        return _record_converters(tp)
    return _identity, _identity


_CACHE: dict[type, tuple[Conv, Conv]] = {}


def _record_converters(cls: type) -> tuple[Conv, Conv]:
    if cls in _CACHE:
        return _CACHE[cls]
    hints = typing.get_type_hints(cls)
    plan = [(f.name, *_converters(hints[f.name])) for f in fields(cls)]

    def to_avro(obj: Any) -> dict[str, Any]:
        return {name: to(getattr(obj, name)) for name, to, _ in plan}

    def from_avro(rec: dict[str, Any]) -> Any:
        return cls(**{name: frm(rec[name]) for name, _, frm in plan if name in rec})

    if all(frm is _identity for _, _, frm in plan):  # flat records (GpsPing): fastavro's dict is the kwargs
        names = frozenset(name for name, _, _ in plan)

        def from_avro(rec: dict[str, Any]) -> Any:  # noqa: F811 - the fast path of the one above
            return cls(**rec) if rec.keys() <= names else cls(**{k: v for k, v in rec.items() if k in names})

    _CACHE[cls] = (to_avro, from_avro)
    return to_avro, from_avro


def to_record(event: ev.Event) -> dict[str, Any]:
    return _record_converters(type(event))[0](event)


def from_record(cls: type[ev.Event], record: dict[str, Any]) -> ev.Event:
    return _record_converters(cls)[1](record)


# ---- the codec ------------------------------------------------------------------------------


class _Writer(typing.NamedTuple):
    schema: Any  # parsed writer schema
    cls: type[ev.Event]
    reader: Any  # parsed current schema, or None when writer is current
    flat: Any = None  # schemas.flat reader, for current flat schemas (the GPS ping): twice as fast


class Codec:
    """Encodes events for Kafka and decodes what it reads back. Thread-safe, no I/O
    except through an optional schema registry client."""

    def __init__(self, schema_dir: Path = SCHEMA_DIR, registry: SchemaRegistryClient | None = None) -> None:
        by_name = {cls.__name__: cls for cls in ev.EVENT_TYPES}
        self._current: dict[type, tuple[Any, bytes]] = {}
        self._source: dict[type, dict[str, Any]] = {}  # the .avsc as written, for the registry
        self._by_fingerprint: dict[bytes, _Writer] = {}
        self._plain: dict[type, Any] = {}
        for path in sorted(schema_dir.glob("*.avsc")):
            cls = by_name[path.stem]
            self._source[cls] = load_schema(path)
            parsed = fastavro.parse_schema(self._source[cls], _write_hint=False)
            fp = schema_fingerprint(parsed)
            self._plain[cls] = parsed
            # Marked as parsed (the write hint): fastavro re-parses an unmarked schema on every call,
            # which made one decode ~35 us and one encode ~140 us instead of ~15 and ~25.
            fast = fastavro.parse_schema(self._source[cls])
            self._current[cls] = (fast, SINGLE_OBJECT_MAGIC + fp)
            self._by_fingerprint[fp] = _Writer(fast, cls, None, flat_reader(self._source[cls], cls))
        missing = set(by_name.values()) - set(self._current)
        if missing:
            raise RuntimeError(f"no .avsc for {sorted(c.__name__ for c in missing)}")
        for path in sorted((schema_dir / "released").glob("v*/*.avsc")):
            source = load_schema(path)
            fp = schema_fingerprint(fastavro.parse_schema(source, _write_hint=False))
            if fp not in self._by_fingerprint:
                cls = by_name[path.stem]
                self._by_fingerprint[fp] = _Writer(fastavro.parse_schema(source), cls, self._current[cls][0])
        self._registry = registry
        self._registry_ids: dict[tuple[str, type], int] = {}
        self._by_registry_id: dict[int, _Writer] = {}

    def schema_of(self, cls: type[ev.Event]) -> Any:
        return self._plain[cls]

    def header_of(self, cls: type[ev.Event]) -> bytes:
        """The 10-byte single-object header: lets a reader pick out one event type cheaply."""
        return self._current[cls][1]

    def encode(self, event: ev.Event, topic: str = "") -> bytes:
        """Validate (schema and contract rules) and encode. Raises InvalidEvent or ValueError."""
        try:
            check(event)
        except TypeError as exc:  # e.g. a string where a number belongs
            raise InvalidEvent(f"{type(event).__name__}: {exc}") from exc
        schema, header = self._current[type(event)]
        record = to_record(event)
        # The quiet check first: with raise_errors=True fastavro builds (and JSON-dumps) an error for
        # every union branch it rejects on the way to the right one, 3-5x the cost of the check.
        if not fastavro.validation.validate(record, schema, raise_errors=False):
            try:
                fastavro.validation.validate(record, schema, raise_errors=True)
            except fastavro.validation.ValidationError as exc:
                raise InvalidEvent(f"{type(event).__name__} does not match its schema: {exc}") from exc
        buf = io.BytesIO()
        if self._registry is not None:
            buf.write(CONFLUENT_MAGIC + struct.pack(">I", self._registry_id(topic, type(event))))
        else:
            buf.write(header)
        fastavro.schemaless_writer(buf, schema, record)
        return buf.getvalue()

    def decode(self, data: bytes | None) -> ev.Event:
        """Decode and check the contract rules. Raises DecodeError or InvalidEvent."""
        if not data or len(data) < 5:
            raise MalformedMessage(f"message of {0 if not data else len(data)} bytes is too short to be an event")
        if data[:2] == SINGLE_OBJECT_MAGIC:
            if len(data) < 10:
                raise MalformedMessage("single-object header is truncated")
            writer = self._by_fingerprint.get(bytes(data[2:10]))
            if writer is None:
                raise UnknownSchema(f"unknown schema fingerprint {bytes(data[2:10]).hex()}")
            body = 10
        elif data[:1] == CONFLUENT_MAGIC:
            writer = self._writer_for_registry_id(struct.unpack(">I", data[1:5])[0])
            body = 5
        else:
            raise MalformedMessage(f"unknown framing byte 0x{data[0]:02x} (expected C3 01 or 00)")
        if writer.flat is not None:
            try:
                event = writer.flat(data, body)
            except (IndexError, ValueError, struct.error, OverflowError) as exc:  # UnicodeDecodeError is a ValueError
                raise MalformedMessage(f"{writer.cls.__name__} body does not decode: {exc!r}") from exc
            check(event)
            return event
        stream = io.BytesIO(data[body:])
        try:
            record = fastavro.schemaless_reader(stream, writer.schema, writer.reader)
            event = from_record(writer.cls, record)
        except Exception as exc:  # fastavro raises many types on garbage
            raise MalformedMessage(f"{writer.cls.__name__} body does not decode: {exc!r}") from exc
        if stream.tell() != len(data) - body:
            raise MalformedMessage(f"{writer.cls.__name__}: {len(data) - body - stream.tell()} bytes after the Avro body")
        check(event)
        return event

    # -- Confluent schema registry -------------------------------------------------------

    def _registry_id(self, topic: str, cls: type[ev.Event]) -> int:
        key = (topic, cls)
        if key not in self._registry_ids:
            assert self._registry is not None
            if not topic:
                raise ValueError("with a schema registry, encode() needs the topic (subject is <topic>-<record>)")
            subject = f"{topic}-milestream.events.{cls.__name__}"  # TopicRecordNameStrategy
            schema_json = json.dumps(self._source[cls])
            self._registry_ids[key] = self._registry.register(subject, schema_json)
        return self._registry_ids[key]

    def _writer_for_registry_id(self, schema_id: int) -> _Writer:
        if schema_id not in self._by_registry_id:
            if self._registry is None:
                raise UnknownSchema(f"Confluent-framed message (schema id {schema_id}) but no schema registry is configured")
            try:
                raw = json.loads(self._registry.schema(schema_id))
            except Exception as exc:
                raise UnknownSchema(f"schema id {schema_id} not found in the registry: {exc}") from exc
            parsed = fastavro.parse_schema(raw, _write_hint=False)
            writer = self._by_fingerprint.get(schema_fingerprint(parsed))
            if writer is None:
                name = raw.get("name") if isinstance(raw, dict) else None
                cls = next((c for c in ev.EVENT_TYPES if c.__name__ == name), None)
                if cls is None:
                    raise UnknownSchema(f"schema id {schema_id} ({name}) is not a milestream event")
                writer = _Writer(fastavro.parse_schema(raw), cls, self._current[cls][0])
            self._by_registry_id[schema_id] = writer
        return self._by_registry_id[schema_id]


class SchemaRegistryClient:
    """Minimal Confluent Schema Registry REST client (register, fetch by id)."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        import urllib.request

        req = urllib.request.Request(
            self.url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
        )
        with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
            return json.loads(resp.read())

    def register(self, subject: str, schema_json: str) -> int:
        return int(self._call("POST", f"/subjects/{subject}/versions", {"schema": schema_json})["id"])

    def schema(self, schema_id: int) -> str:
        return str(self._call("GET", f"/schemas/ids/{schema_id}")["schema"])


def timestamp(dt: datetime) -> int:
    """Epoch milliseconds, the Avro timestamp-millis value."""
    return int(dt.timestamp() * 1000)
