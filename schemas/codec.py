"""Avro encoding of events on the wire.

Default framing is Avro single-object encoding: ``C3 01``, the 8-byte little-endian
CRC-64-AVRO fingerprint of the writer schema's canonical form, then the body. Any consumer in
any language decodes our topics with the ``.avsc`` files alone. With a schema registry
configured, events are written in the Confluent framing (``00``, 4-byte schema id, body);
both framings are always accepted on read.

Payloads written with a released earlier schema version are read into the current types by
Avro schema resolution (the writer schema is found from the fingerprint).

Registry look-ups never block a consumer's event loop: ``decode`` answers from the registry
client's cache (a schema id once found is kept, one not found is remembered for a while), and an
async edge fetches what :meth:`Codec.missing_schema_id` names in an executor before decoding.

Errors: the tree in :mod:`schemas.errors` (``DecodeError``, ``InvalidEvent``, ``RegistryError``
under ``SchemaError``).
"""

from __future__ import annotations

import enum
import io
import json
import struct
import threading
import time
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
from schemas.errors import DecodeError, MalformedMessage, RegistryError, UnknownSchema
from schemas.flat import flat_reader
from schemas.redact import mask_urls
from schemas.rules import InvalidEvent, check

SCHEMA_DIR = Path(__file__).parent
SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"


__all__ = ["Codec", "DecodeError", "MalformedMessage", "RegistryError", "SchemaRegistryClient", "UnknownSchema",
           "InvalidEvent", "load_schema"]


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
    except through an optional schema registry client.

    ``fetch_on_decode``: whether ``decode`` may ask the registry for a schema id it has never
    looked up (fine on a consumer thread, with the client's short timeout). An event-loop edge
    passes False and fetches :meth:`missing_schema_id` in an executor first; a remembered miss is
    ``UnknownSchema`` without any request either way."""

    def __init__(self, schema_dir: Path = SCHEMA_DIR, registry: SchemaRegistryClient | None = None,
                 fetch_on_decode: bool = True) -> None:
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
        self._fetch_on_decode = fetch_on_decode
        self._registry_ids: dict[tuple[str, type], int] = {}
        self._by_registry_id: dict[int, _Writer] = {}
        self._not_ours: dict[int, str] = {}  # registry ids whose schema is not one of our events

    @property
    def registry(self) -> SchemaRegistryClient | None:
        return self._registry

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

    def missing_schema_id(self, data: bytes | None) -> int | None:
        """The schema id of a Confluent-framed message that ``decode`` would have to ask the
        registry for (never looked up, or a remembered miss that has expired); None when decoding
        needs no request. Cheap: an async edge calls it on every message."""
        if self._registry is None or not data or len(data) < 5 or data[:1] != CONFLUENT_MAGIC:
            return None
        schema_id = struct.unpack(">I", data[1:5])[0]
        if schema_id in self._by_registry_id or schema_id in self._not_ours:
            return None
        return None if self._registry.cached(schema_id) is not None else schema_id

    def fetch_schema(self, schema_id: int) -> None:
        """Look ``schema_id`` up in the registry (blocking, bounded by its timeout) so that the next
        ``decode`` answers from the cache. For an executor."""
        if self._registry is not None:
            self._registry.fetch(schema_id)

    def _writer_for_registry_id(self, schema_id: int) -> _Writer:
        writer = self._by_registry_id.get(schema_id)
        if writer is not None:
            return writer
        if schema_id in self._not_ours:
            raise UnknownSchema(self._not_ours[schema_id])
        if self._registry is None:
            raise UnknownSchema(f"Confluent-framed message (schema id {schema_id}) but no schema registry is configured")
        found = self._registry.cached(schema_id)
        if found is None:
            if not self._fetch_on_decode:
                raise UnknownSchema(f"schema id {schema_id} has not been looked up in the registry yet")
            found = self._registry.fetch(schema_id)
        if found.schema is None:
            raise UnknownSchema(f"schema id {schema_id} not found in the registry: {found.reason}")
        try:
            raw = json.loads(found.schema)
            parsed = fastavro.parse_schema(raw, _write_hint=False)
        except Exception as exc:  # the registry's text is input too
            raise UnknownSchema(f"schema id {schema_id}: the registry's schema does not parse: {exc!r}") from exc
        writer = self._by_fingerprint.get(schema_fingerprint(parsed))
        if writer is None:
            name = raw.get("name") if isinstance(raw, dict) else None
            cls = next((c for c in ev.EVENT_TYPES if c.__name__ == name), None)
            if cls is None:
                self._not_ours[schema_id] = f"schema id {schema_id} ({str(name)[:100]!r}) is not a milestream event"
                raise UnknownSchema(self._not_ours[schema_id])
            writer = _Writer(fastavro.parse_schema(raw), cls, self._current[cls][0])
        self._by_registry_id[schema_id] = writer
        return writer


class Lookup(typing.NamedTuple):
    """What the registry said about one schema id: its schema, or why there is none."""

    schema: str | None
    reason: str = ""


class SchemaRegistryClient:
    """Minimal Confluent Schema Registry REST client: register a schema, look one up by id.

    Credentials in the URL (``https://key:secret@host``) are sent as basic auth and kept out of
    ``url`` and of every error text. Look-ups are cached: a schema found stays (ids are immutable),
    a miss (not found, refused, unreachable, too slow) is remembered for ``miss_ttl_s`` so a flood
    of unknown ids costs one request per id and TTL. Thread-safe."""

    MAX_MISSES = 10_000

    def __init__(self, url: str, timeout_s: float = 2.0, miss_ttl_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        import base64
        from urllib.parse import unquote, urlsplit, urlunsplit

        parts = urlsplit(url)
        self._auth: str | None = None
        if parts.username is not None or parts.password is not None:
            pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
            self._auth = "Basic " + base64.b64encode(pair.encode()).decode()
            host = parts.hostname or ""
            netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
            parts = parts._replace(netloc=netloc)
        self.url = urlunsplit(parts).rstrip("/")
        self.timeout_s = timeout_s
        self.miss_ttl_s = miss_ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._found: dict[int, str] = {}
        self._missed: dict[int, tuple[float, str]] = {}  # id -> (remembered until, reason)

    def __repr__(self) -> str:
        return f"SchemaRegistryClient({self.url!r}, timeout_s={self.timeout_s:g})"

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        import urllib.error
        import urllib.request

        headers = {"Content-Type": "application/vnd.schemaregistry.v1+json",
                   "Accept": "application/vnd.schemaregistry.v1+json"}
        if self._auth:
            headers["Authorization"] = self._auth
        req = urllib.request.Request(self.url + path, method=method, headers=headers,
                                     data=None if body is None else json.dumps(body).encode())
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # timeout: per socket operation
                answer = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            try:
                detail = exc.read(300).decode("utf-8", "replace")
            except OSError:
                detail = ""
            raise RegistryError(mask_urls(f"{method} {self.url}{path}: HTTP {exc.code} {detail}")) from None
        except (OSError, ValueError) as exc:  # URLError, timeouts, refused connections, bad JSON
            raise RegistryError(mask_urls(f"{method} {self.url}{path}: {exc}")) from None
        if not isinstance(answer, dict):
            raise RegistryError(f"{method} {self.url}{path}: the answer is not a JSON object")
        return answer

    def register(self, subject: str, schema_json: str) -> int:
        answer = self._call("POST", f"/subjects/{subject}/versions", {"schema": schema_json})
        if not isinstance(answer.get("id"), int):
            raise RegistryError(f"POST {self.url}/subjects/{subject}/versions: no schema id in the answer")
        return int(answer["id"])

    def cached(self, schema_id: int) -> Lookup | None:
        """What is known about ``schema_id`` without a request; None if it must be fetched."""
        with self._lock:
            if schema_id in self._found:
                return Lookup(self._found[schema_id])
            missed = self._missed.get(schema_id)
            if missed is not None and missed[0] > self._clock():
                return Lookup(None, missed[1])
        return None

    def fetch(self, schema_id: int) -> Lookup:
        """The schema of ``schema_id``, from the cache or one request of at most ``timeout_s``;
        a failure is a remembered miss, never an exception."""
        known = self.cached(schema_id)
        if known is not None:
            return known
        try:
            schema = self._call("GET", f"/schemas/ids/{int(schema_id)}").get("schema")
            if not isinstance(schema, str):
                raise RegistryError(f"GET {self.url}/schemas/ids/{schema_id}: no schema text in the answer")
        except RegistryError as exc:
            reason = str(exc)
            with self._lock:
                if len(self._missed) >= self.MAX_MISSES:
                    now = self._clock()
                    for key in [k for k, (until, _) in self._missed.items() if until <= now]:
                        del self._missed[key]
                    while len(self._missed) >= self.MAX_MISSES:
                        del self._missed[next(iter(self._missed))]
                self._missed[schema_id] = (self._clock() + self.miss_ttl_s, reason)
            return Lookup(None, reason)
        with self._lock:
            self._found[schema_id] = schema
            self._missed.pop(schema_id, None)
        return Lookup(schema)


def timestamp(dt: datetime) -> int:
    """Epoch milliseconds, the Avro timestamp-millis value."""
    return int(dt.timestamp() * 1000)
