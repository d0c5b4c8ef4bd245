"""The hostile-input corpus behind ``milestream bench hostile``: messages a producer that is not ours
could put on our input topics (``inbox``, ``gps``, ``riders``, ``routes``), each carrying what the
system must do with it, so that a run checks kinds and not only counts.

Pure and deterministic per seed: no I/O, no clock (``now`` is an argument). Valid events are
encoded with :class:`schemas.Codec`; hostile ones are written with fastavro directly (the codec's
encoder refuses them, and would refuse more of them as the contract's rules grow), then framed or
corrupted by hand.

Every message has an :class:`Outcome`: dead-lettered with a :class:`~schemas.events.DeadLetterKind`
(the hostile ones), dropped silently as a redelivery (the second copy of a duplicate), or accepted
(the first copy of a duplicate, and the orders and shifts an illegal transition needs first).
"""

from __future__ import annotations

import copy
import enum
import io
import math
import random
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro

from schemas import Codec
from schemas import events as ev
from schemas.codec import CONFLUENT_MAGIC, SCHEMA_DIR, SINGLE_OBJECT_MAGIC, load_schema, to_record

INPUTS = ("inbox", "gps", "riders", "routes")
# librdkafka's and the Kafka broker's default message.max.bytes is about 1 MB: above it a message is
# refused at produce time and never reaches us. The "just under" oversized messages aim below it.
BROKER_MAX_MESSAGE = 1_000_000
MIB = 1 << 20
ROUTE_STOPS = (10_000, 20_000, 28_000)  # 28k stops of short ids still fit in one 1 MB message
RESERVED_IDS = ("__fleet__", "__marker__", "x\x00plans")  # keys of the tracking-state topic
CONTROL_IDS = ("line\nbreak", "esc\x1b[2Jclear", "nul\x00byte", "del\x7fchar", "bell\x07")
FAR_TIMES = {"far_past": (datetime(1971, 1, 1, tzinfo=UTC), datetime(1900, 1, 1, tzinfo=UTC)),
             "far_future": (datetime(9999, 12, 30, tzinfo=UTC), None)}  # None: ``now`` + ten years
TEN_YEARS = timedelta(days=3653)
K = ev.DeadLetterKind


class Outcome(enum.StrEnum):
    DEAD_LETTER = "dead_letter"  # hostile: exactly one dead letter, of ``Message.kind``
    DUPLICATE = "duplicate"  # a redelivery: dropped silently, no dead letter
    ACCEPTED = "accepted"  # valid support traffic: processed, no dead letter


@dataclass(frozen=True, slots=True)
class Message:
    topic: str  # input topic, without the prefix
    key: bytes | None
    value: bytes | None
    case: str
    outcome: Outcome
    kind: ev.DeadLetterKind | None = None  # expected dead-letter kind (DEAD_LETTER only)
    event_id: str | None = None  # set when the value is a whole event (the ledger check looks for it)
    variant: str = ""

    @property
    def size(self) -> int:
        return len(self.value or b"") + len(self.key or b"")


@dataclass(frozen=True, slots=True, kw_only=True)
class Hubs:
    """Hubs of the corpus. Hostile orders and shifts name ``dispatch``, the hub the valid traffic is
    dispatched on (a poisoned hub shows there); the support orders of illegal transitions and
    duplicates go to ``orders_prefix``-N hubs that never see a rider, their shifts to ``riders``,
    which never sees an order: dispatch has nothing to plan for them."""

    dispatch: str
    orders_prefix: str
    riders: str
    order_hubs: int = 20


Group = list[Message]  # messages that belong together, produced in this order (same key: same partition)
Variant = Callable[[], Group]


class _Builder:
    """Valid events per topic with fresh deterministic ids, and the encoders that skip the contract."""

    def __init__(self, codec: Codec, rng: random.Random, now: datetime, tag: str, hubs: Hubs) -> None:
        self.codec, self.rng, self.now, self.tag, self.hubs = codec, rng, now.replace(microsecond=0), tag, hubs
        self._n = 0

    def new_id(self, what: str) -> str:
        self._n += 1
        return f"{self.tag}-{what}-{self._n:07d}"

    def order_hub(self) -> str:
        return f"{self.hubs.orders_prefix}{self._n % self.hubs.order_hubs}"

    # -- valid events -------------------------------------------------------------------------

    def event(self, topic: str, at: datetime | None = None, key_id: str | None = None, hub: str | None = None) -> Any:
        t = at or self.now
        rng = self.rng
        eid = self.new_id("ev")
        if topic == "inbox":
            return ev.OrderCreated(
                event_id=eid, occurred_at=t, order_id=key_id or self.new_id("ord"), tracking_id=self.new_id("trk"),
                hub_id=hub or self.hubs.dispatch, mode=ev.DeliveryMode.LAST_MILE,
                drop=ev.Location(lat=12.97 + rng.uniform(-0.03, 0.03), lon=77.59 + rng.uniform(-0.03, 0.03),
                                 address="12 Hostile Lane"),
                window_start=t, window_end=t + timedelta(hours=4), service_time_s=60, weight_kg=1.5, volume_l=3.0,
                units=1)
        if topic == "gps":
            return ev.GpsPing(
                event_id=eid, occurred_at=t, rider_id=key_id or self.new_id("rdr"), device_id=self.new_id("dev"),
                device_time=t - timedelta(seconds=1), lat=12.97 + rng.uniform(-0.03, 0.03),
                lon=77.59 + rng.uniform(-0.03, 0.03), speed_mps=4.0, heading_deg=90.0, accuracy_m=8.0, battery_pct=80.0)
        if topic == "riders":
            return ev.RiderShiftStarted(
                event_id=eid, occurred_at=t, rider_id=key_id or self.new_id("rdr"), hub_id=hub or self.hubs.dispatch,
                vehicle_type=ev.VehicleType.SCOOTER, capacity_weight_kg=30.0, capacity_volume_l=90.0, capacity_units=25,
                shift_start=t, shift_end=t + timedelta(hours=8), start=ev.GeoPoint(lat=12.9716, lon=77.5946))
        if topic == "routes":
            return self.route(2, t, key_id)
        raise ValueError(f"not an input topic: {topic}")

    def route(self, stops: int, at: datetime | None = None, rider_id: str | None = None,
              short_ids: bool = False) -> ev.RoutePlanned:
        t = at or self.now
        rng = self.rng
        base = self.new_id("o")
        planned = tuple(ev.PlannedStop(
            order_id=f"o{i}" if short_ids else f"{base}-{i}", kind=ev.StopKind.DROP,
            lat=12.97 + rng.uniform(-0.05, 0.05), lon=77.59 + rng.uniform(-0.05, 0.05),
            planned_arrival=t + timedelta(minutes=10 + i % 400), service_time_s=60) for i in range(stops))
        return ev.RoutePlanned(
            event_id=self.new_id("ev"), occurred_at=t, rider_id=rider_id or self.new_id("rdr"),
            route_id=self.new_id("route"), hub_id=self.hubs.riders, stops=planned,
            start=ev.GeoPoint(lat=12.9716, lon=77.5946), planned_start=t, planned_end=t + timedelta(hours=3),
            distance_m=4200.0)

    # -- encoders ------------------------------------------------------------------------------

    def encode(self, event: ev.Event) -> bytes:
        """A valid event, through the codec (which validates it)."""
        return self.codec.encode(event)

    def body(self, cls: type[ev.Event], record: dict[str, Any], schema: Any = None) -> bytes:
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, schema or self.codec.schema_of(cls), record)
        return buf.getvalue()

    def raw(self, event: ev.Event, schema: Any = None) -> bytes:
        """Single-object framed, written by fastavro from the event as it is: no contract check."""
        return self.codec.header_of(type(event)) + self.body(type(event), to_record(event), schema)

    def raw_record(self, cls: type[ev.Event], record: dict[str, Any]) -> bytes:
        return self.codec.header_of(cls) + self.body(cls, record)


def _key(event: ev.Event) -> bytes:
    return event.key.encode()


def _hostile(b: _Builder, topic: str, case: str, kind: ev.DeadLetterKind, value: bytes | None,
             key: bytes | None, event_id: str | None = None, variant: str = "") -> Message:
    return Message(topic=topic, key=key, value=value, case=case, outcome=Outcome.DEAD_LETTER, kind=kind,
                   event_id=event_id, variant=variant)


def _accepted(topic: str, case: str, event: ev.Event, value: bytes) -> Message:
    return Message(topic=topic, key=_key(event), value=value, case=case, outcome=Outcome.ACCEPTED,
                   event_id=event.event_id)


def _set(record: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """``record`` with the field at a dotted path (``drop.lat``, ``stops.0.order_id``) replaced."""
    out = copy.deepcopy(record)
    node: Any = out
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return out


def _zigzag(n: int) -> bytes:
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        byte = z & 0x7F
        z >>= 7
        if z:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


# -- the cases: each maps a topic to its variants (thunks, so a large corpus builds only what it uses) --


def _framing(case: str, kind: ev.DeadLetterKind, make: Callable[[Any, str], list[tuple[str, bytes | None]]]
             ) -> Callable[[_Builder, str], list[Variant]]:
    """A case whose variants are values made from one valid event of the topic, keyed as it is."""

    def variants(b: _Builder, topic: str) -> list[Variant]:
        probe = _Builder(b.codec, random.Random(0), b.now, "probe", b.hubs)  # only to name the variants
        names = [name for name, _ in make(_WithEvent(probe, probe.event(topic)), topic)]

        def one(i: int) -> Variant:
            def build() -> Group:
                event = b.event(topic)
                name, value = make(_WithEvent(b, event), topic)[i]
                return [_hostile(b, topic, case, kind, value, _key(event), event.event_id, name)]
            return build
        return [one(i) for i in range(len(names))]

    return variants


class _WithEvent:
    """The builder as a framing case sees it, with the event of this variant (``valid()``: its bytes)."""

    def __init__(self, b: _Builder, event: ev.Event) -> None:
        self.b, self.event = b, event

    def valid(self) -> bytes:
        return self.b.raw(self.event)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.b, name)


def _random_bytes(b: Any, topic: str) -> list[tuple[str, bytes | None]]:
    def noise(n: int) -> bytes:
        first = b.rng.choice([x for x in range(1, 256) if x != SINGLE_OBJECT_MAGIC[0]])
        return bytes([first]) + b.rng.randbytes(n - 1)
    return [("16", noise(16)), ("300", noise(300)), ("4096", noise(4096))]


def _short(b: Any, topic: str) -> list[tuple[str, bytes | None]]:
    fp = b.valid()[:10]
    return [("empty", b""), ("null", None), ("c3", b"\xc3"), ("c301", SINGLE_OBJECT_MAGIC), ("00x3", b"\x00\x00\x00"),
            ("header_truncated", fp[:6]), ("header_only", fp)]


def _unknown_fingerprint(b: Any, topic: str) -> list[tuple[str, bytes | None]]:
    body = b.valid()[10:]
    return [("random", SINGLE_OBJECT_MAGIC + b.rng.randbytes(8) + body),
            ("zero", SINGLE_OBJECT_MAGIC + bytes(8) + body)]


def _unknown_registry_id(b: Any, topic: str) -> list[tuple[str, bytes | None]]:
    body = b.valid()[10:]
    return [(str(i), CONFLUENT_MAGIC + struct.pack(">I", i) + body) for i in (1, 424242, 0xFFFFFFFF)]


def _truncated(b: Any, topic: str) -> list[tuple[str, bytes | None]]:
    v = b.valid()
    return [("half", v[:10 + (len(v) - 10) // 2]), ("last_byte", v[:-1]), ("one_byte_body", v[:11])]


def _trailing(b: Any, topic: str) -> list[tuple[str, bytes | None]]:
    v = b.valid()
    return [("zero", v + b"\x00"), ("random", v + b.rng.randbytes(32)), ("twice", v + v)]


def _garbage_body(b: Any, topic: str) -> list[tuple[str, bytes | None]]:
    head = b.valid()[:10]
    return [("runaway_varint", head + b"\xff" * 20), ("huge_length", head + _zigzag(1 << 40) + b"abc"),
            ("negative_length", head + _zigzag(-7) + b"abcdefgh"), ("all_zero", head + bytes(64))]


def _bad_utf8(b: Any, topic: str) -> list[tuple[str, bytes | None]]:
    """An id field's bytes swapped for as many bytes that are not UTF-8: the Avro framing still holds."""
    event = b.event
    field = {"inbox": "order_id", "gps": "rider_id", "riders": "rider_id", "routes": "rider_id"}[topic]
    ident = getattr(event, field).encode()
    v = b.valid()
    at = v.index(ident, 10)
    return [("ff", v[:at] + b"\xff" * len(ident) + v[at + len(ident):]),
            ("lone_surrogate", v[:at] + (b"\xed\xa0\x80" * len(ident))[:len(ident)] + v[at + len(ident):])]


def _timestamp_overflow(b: Any, topic: str) -> list[tuple[str, bytes | None]]:
    """occurred_at beyond any datetime (the long is fine, the timestamp is not)."""
    event = b.event
    out = []
    for name, millis in (("2^62", 1 << 62), ("-2^62", -(1 << 62))):
        record = _set(to_record(event), "occurred_at", millis)
        out.append((name, b.raw_record(type(event), record)))
    return out


def _out_of_range_tag(b: Any, topic: str) -> list[tuple[str, bytes | None]]:
    """An enum symbol or union branch the schema does not have: written with a widened copy of it."""
    event = b.event
    cls = type(event)
    source = load_schema(SCHEMA_DIR / f"{cls.__name__}.avsc")
    record = to_record(event)

    def field(schema: dict[str, Any], name: str) -> dict[str, Any]:
        return next(f for f in schema["fields"] if f["name"] == name)

    if topic == "gps":
        field(source, "speed_mps")["type"] = ["null", "double", "string"]
        record["speed_mps"] = "warp"
        name = "union_branch"
    elif topic == "inbox":
        field(source, "mode")["type"]["symbols"] = [*field(source, "mode")["type"]["symbols"], "teleport"]
        record["mode"] = "teleport"
        name = "enum_symbol"
    elif topic == "riders":
        field(source, "vehicle_type")["type"]["symbols"] = [*field(source, "vehicle_type")["type"]["symbols"], "rocket"]
        record["vehicle_type"] = "rocket"
        name = "enum_symbol"
    else:
        kind = field(field(source, "stops")["type"]["items"], "kind")["type"]
        kind["symbols"] = [*kind["symbols"], "airdrop"]
        record["stops"][0]["kind"] = "airdrop"
        name = "enum_symbol"
    schema = fastavro.parse_schema(source, _write_hint=False)
    return [(name, b.codec.header_of(cls) + b.body(cls, record, schema))]


def _event_variants(case: str, kind: ev.DeadLetterKind,
                    make: Callable[[_Builder, str], list[tuple[str, Callable[[], tuple[ev.Event | dict[str, Any], bytes | None]]]]]
                    ) -> Callable[[_Builder, str], list[Variant]]:
    """A case whose variants are whole events (or records) that decode: (name, thunk -> (event, key))."""

    def variants(b: _Builder, topic: str) -> list[Variant]:
        def one(name: str, thunk: Callable[[], tuple[Any, ...]]) -> Variant:
            def build() -> Group:
                event, key, *then = thunk()  # then: valid events that follow it on other topics
                if isinstance(event, tuple):  # (cls, record): a record the dataclass would not hold
                    cls, record = event
                    first = _hostile(b, topic, case, kind, b.raw_record(cls, record), key, record["event_id"], name)
                else:
                    first = _hostile(b, topic, case, kind, b.raw(event), key, event.event_id, name)
                return [first, *(_accepted(t, case, e, b.encode(e)) for t, e in (then[0] if then else ()))]
            return build
        return [one(name, thunk) for name, thunk in make(b, topic)]

    return variants


_ID_FIELD = {"inbox": "order_id", "gps": "rider_id", "riders": "rider_id", "routes": "rider_id"}
_OTHER_TOPIC = {"inbox": "gps", "gps": "riders", "riders": "routes", "routes": "inbox"}


def _wrong_type(b: _Builder, topic: str) -> list[tuple[str, Callable[[], Any]]]:
    def make() -> Any:
        e = b.event(_OTHER_TOPIC[topic])
        return e, _key(e)
    return [(_OTHER_TOPIC[topic], make)]


_BAD_NUMBERS: dict[str, list[tuple[str, str, Any]]] = {
    "inbox": [("drop_lat_nan", "drop.lat", math.nan), ("drop_lon_inf", "drop.lon", math.inf),
              ("drop_lat_91", "drop.lat", 91.0), ("weight_negative", "weight_kg", -1.0),
              ("volume_nan", "volume_l", math.nan), ("cod_inf", "cod_amount", math.inf),
              ("service_negative", "service_time_s", -60), ("units_negative", "units", -5),
              ("service_huge", "service_time_s", 2**31 - 1), ("weight_1e300", "weight_kg", 1e300)],
    "gps": [("lat_nan", "lat", math.nan), ("lon_inf", "lon", math.inf), ("lat_95", "lat", 95.0),
            ("lon_-181", "lon", -181.0), ("accuracy_negative", "accuracy_m", -3.0), ("accuracy_nan", "accuracy_m", math.nan),
            ("speed_nan", "speed_mps", math.nan), ("speed_negative", "speed_mps", -5.0), ("speed_1e9", "speed_mps", 1e9),
            ("heading_720", "heading_deg", 720.0), ("battery_250", "battery_pct", 250.0),
            ("battery_negative", "battery_pct", -1.0)],
    "riders": [("start_lat_nan", "start.lat", math.nan), ("start_lon_-inf", "start.lon", -math.inf),
               ("capacity_inf", "capacity_weight_kg", math.inf), ("volume_negative", "capacity_volume_l", -1.0),
               ("units_negative", "capacity_units", -3), ("capacity_nan", "capacity_weight_kg", math.nan)],
    "routes": [("stop_lat_nan", "stops.0.lat", math.nan), ("stop_lon_200", "stops.1.lon", 200.0),
               ("start_lat_inf", "start.lat", math.inf), ("distance_nan", "distance_m", math.nan),
               ("distance_negative", "distance_m", -1.0), ("service_negative", "stops.0.service_time_s", -30)],
}


def _bad_numbers(b: _Builder, topic: str) -> list[tuple[str, Callable[[], Any]]]:
    def one(path: str, value: Any) -> Callable[[], Any]:
        def make() -> Any:
            e = b.event(topic)
            return (type(e), _set(to_record(e), path, value)), _key(e)
        return make
    return [(name, one(path, value)) for name, path, value in _BAD_NUMBERS[topic]]


def _reversed_window(b: _Builder, topic: str) -> list[tuple[str, Callable[[], Any]]]:
    def make() -> Any:
        e = b.event(topic)
        t = e.occurred_at
        if topic == "inbox":
            e = replace(e, window_start=t + timedelta(hours=2), window_end=t)
        elif topic == "riders":
            e = replace(e, shift_start=t, shift_end=t - timedelta(hours=1))
        elif topic == "routes":
            first = replace(e.stops[0], window_start=t + timedelta(hours=1), window_end=t)
            e = replace(e, stops=(first, *e.stops[1:]))
        return e, _key(e)
    return [("reversed", make)]


def _times(case: str) -> Callable[[_Builder, str], list[tuple[str, Callable[[], Any]]]]:
    def variants(b: _Builder, topic: str) -> list[tuple[str, Callable[[], Any]]]:
        def one(at: datetime | None) -> Callable[[], Any]:
            def make() -> Any:
                e = b.event(topic, at=at or b.now + TEN_YEARS)
                return e, _key(e)
            return make
        return [((at or b.now + TEN_YEARS).strftime("%Y"), one(at)) for at in FAR_TIMES[case]]
    return variants


def _keys(b: _Builder, topic: str) -> list[tuple[str, Callable[[], Any]]]:
    def one(key: Callable[[ev.Event], bytes | None]) -> Callable[[], Any]:
        def make() -> Any:
            e = b.event(topic)
            return e, key(e)
        return make
    return [("null", one(lambda e: None)), ("empty", one(lambda e: b"")),
            ("other_id", one(lambda e: b.new_id("other").encode())),
            ("not_utf8", one(lambda e: b"\xff\xfe" + _key(e))),
            ("case_differs", one(lambda e: e.key.upper().encode()))]


def _ids(values: tuple[str, ...], unique: bool) -> Callable[[_Builder, str], list[tuple[str, Callable[[], Any]]]]:
    """Events keyed by these ids; ``unique``: each draw its own id (the value, a dash and a number), so
    a repeated draw is not also an order created twice."""
    def variants(b: _Builder, topic: str) -> list[tuple[str, Callable[[], Any]]]:
        def one(ident: str) -> Callable[[], Any]:
            def make() -> Any:
                e = b.event(topic, key_id=b.new_id(ident) if unique else ident)
                return e, _key(e)
            return make
        return [(repr(ident), one(ident)) for ident in values]
    return variants


def _empty_ids(b: _Builder, topic: str) -> list[tuple[str, Callable[[], Any]]]:
    def one(path: str, cls: type | None = None) -> Callable[[], Any]:
        def make() -> Any:
            if cls is ev.OrderAssigned:
                e: Any = ev.OrderAssigned(event_id=b.new_id("ev"), occurred_at=b.now, order_id=b.new_id("ord"),
                                          rider_id=b.new_id("rdr"), route_id=b.new_id("route"), sequence=1,
                                          planned_arrival=b.now + timedelta(minutes=30))
            elif cls is ev.PodSubmitted:
                e = ev.PodSubmitted(event_id=b.new_id("ev"), occurred_at=b.now, order_id=b.new_id("ord"),
                                    rider_id=b.new_id("rdr"), otp_hash=b"\x01" * 32)
            else:
                e = b.event(topic)
            if path == "stops.0.order_id":  # the rider's next ping would estimate an ETA for that stop
                ping = replace(b.event("gps", key_id=e.key), occurred_at=e.occurred_at + timedelta(seconds=30))
                return (type(e), _set(to_record(e), path, "")), _key(e), [("gps", ping)]
            return (type(e), _set(to_record(e), path, "")), _key(e)
        return make
    paths: dict[str, list[tuple[str, str, type | None]]] = {
        "inbox": [("event_id", "event_id", None), ("hub_id", "hub_id", None), ("tracking_id", "tracking_id", None),
                  ("assigned_route_id", "route_id", ev.OrderAssigned), ("assigned_rider_id", "rider_id", ev.OrderAssigned),
                  ("pod_rider_id", "rider_id", ev.PodSubmitted)],
        "gps": [("event_id", "event_id", None), ("device_id", "device_id", None)],
        "riders": [("event_id", "event_id", None), ("hub_id", "hub_id", None)],
        "routes": [("event_id", "event_id", None), ("stop_order_id", "stops.0.order_id", None),
                   ("route_id", "route_id", None), ("hub_id", "hub_id", None)],
    }
    return [(name, one(path, cls)) for name, path, cls in paths[topic]]


def _oversized(b: _Builder, topic: str) -> list[tuple[str, Callable[[], Any]]]:
    """A free-text field of 64 KiB, of just under the broker's limit, and of 1 MiB (above it: the
    broker may refuse it, and then it is not input we received)."""
    def one(size: int | None) -> Callable[[], Any]:
        def make() -> Any:
            e = b.event(topic)
            field = {"inbox": "instructions", "gps": "device_id", "riders": "skills", "routes": "reason"}[topic]
            n = size
            if n is None:  # just under: the whole message BROKER_MAX_MESSAGE - 4 KiB
                n = BROKER_MAX_MESSAGE - 4096 - len(b.raw(e)) - len(_key(e))
            text = "x" * n
            e = replace(e, **{field: (text,) if field == "skills" else text})
            return e, _key(e)
        return make
    return [("64KiB", one(64 * 1024)), ("just_under_limit", one(None)), ("1MiB", one(MIB))]


def _many_items(b: _Builder, topic: str) -> list[tuple[str, Callable[[], Any]]]:
    def make() -> Any:
        e = b.event(topic)
        skills = tuple(f"skill-{i}" for i in range(10_000))
        e = replace(e, required_skills=skills) if topic == "inbox" else replace(e, skills=skills)
        return e, _key(e)
    return [("10000_skills", make)]


def _huge_route(stops: tuple[int, ...]) -> Callable[[_Builder, str], list[tuple[str, Callable[[], Any]]]]:
    def variants(b: _Builder, topic: str) -> list[tuple[str, Callable[[], Any]]]:
        def one(n: int) -> Callable[[], Any]:
            def make() -> Any:
                e = b.route(n, short_ids=True)
                return e, _key(e)
            return make
        return [(f"{n}_stops", one(n)) for n in stops]
    return variants


def _illegal(b: _Builder, topic: str) -> list[Variant]:
    """Transitions the order lifecycle or the shift rules refuse, some after the orders and shifts
    they need (those are accepted)."""
    case = "illegal_transition"

    def unknown(make: Callable[[str], ev.Event], name: str) -> Variant:
        def build() -> Group:
            e = make(b.new_id("ord"))
            return [_hostile(b, topic, case, K.ILLEGAL_TRANSITION, b.raw(e), _key(e), e.event_id, name)]
        return build

    def after(name: str, first: Callable[[], list[ev.Event]], then: Callable[[ev.Event], ev.Event]) -> Variant:
        def build() -> Group:
            setup = first()
            e = then(setup[0])
            return [*(_accepted(topic, case, s, b.encode(s)) for s in setup),
                    _hostile(b, topic, case, K.ILLEGAL_TRANSITION, b.raw(e), _key(e), e.event_id, name)]
        return build

    def status(order_id: str, to: ev.OrderStatus) -> ev.StatusChanged:
        return ev.StatusChanged(event_id=b.new_id("ev"), occurred_at=b.now, order_id=order_id, to_status=to,
                                rider_id=b.new_id("rdr"), reason="hostile")

    if topic == "inbox":
        def created() -> list[ev.Event]:
            return [b.event("inbox", hub=b.order_hub())]

        def cancel(order_id: str) -> ev.OrderCancelled:
            return ev.OrderCancelled(event_id=b.new_id("ev"), occurred_at=b.now, order_id=order_id, reason="hostile")

        return [
            unknown(lambda o: status(o, ev.OrderStatus.DELIVERED), "delivered_before_created"),
            unknown(lambda o: status(o, ev.OrderStatus.OUT_FOR_DELIVERY), "out_before_created"),
            unknown(lambda o: ev.PodSubmitted(event_id=b.new_id("ev"), occurred_at=b.now, order_id=o,
                                              rider_id=b.new_id("rdr"), otp_hash=b"\x00" * 32), "pod_before_created"),
            unknown(cancel, "cancel_before_created"),
            after("created_then_arrived", created, lambda c: status(c.key, ev.OrderStatus.ARRIVED)),
            after("created_then_delivered", created, lambda c: status(c.key, ev.OrderStatus.DELIVERED)),
            after("created_twice", created, lambda c: replace(c, event_id=b.new_id("ev"))),
            after("cancelled_then_cancelled", lambda: (lambda c: [c, cancel(c.key)])(created()[0]),
                  lambda c: cancel(c.key)),
        ]
    if topic == "riders":
        def ended(rider_id: str) -> ev.RiderShiftEnded:
            return ev.RiderShiftEnded(event_id=b.new_id("ev"), occurred_at=b.now, rider_id=rider_id)

        def started_and_ended() -> list[ev.Event]:
            s = b.event("riders", hub=b.hubs.riders)
            return [s, ended(s.key)]

        def build_unknown() -> Group:
            e = ended(b.new_id("rdr"))
            return [_hostile(b, topic, case, K.ILLEGAL_TRANSITION, b.raw(e), _key(e), e.event_id, "ended_never_started")]

        return [build_unknown, after("ended_twice", started_and_ended, lambda s: ended(s.key))]
    return []


def _duplicates(b: _Builder, topic: str) -> list[Variant]:
    """The same valid event twice: the second is a redelivery, dropped without a dead letter."""
    def build() -> Group:
        hub = b.order_hub() if topic == "inbox" else b.hubs.riders
        e = b.event(topic, hub=hub) if topic in ("inbox", "riders") else b.event(topic)
        value = b.encode(e)
        first = _accepted(topic, "duplicate", e, value)
        return [first, replace(first, outcome=Outcome.DUPLICATE)]
    return [build]


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    topics: tuple[str, ...]
    variants: Callable[[_Builder, str], list[Variant]]
    heavy: bool = False  # about 1 MB a message: a large corpus repeats it at most ``heavy_cap`` times


def cases(route_stops: tuple[int, ...] = ROUTE_STOPS) -> tuple[Case, ...]:
    every = INPUTS
    return (
        Case("random_bytes", every, _framing("random_bytes", K.MALFORMED, _random_bytes)),
        Case("short_or_empty", every, _framing("short_or_empty", K.MALFORMED, _short)),
        Case("unknown_fingerprint", every, _framing("unknown_fingerprint", K.UNKNOWN_SCHEMA, _unknown_fingerprint)),
        Case("unknown_registry_id", every, _framing("unknown_registry_id", K.UNKNOWN_SCHEMA, _unknown_registry_id)),
        Case("truncated", every, _framing("truncated", K.MALFORMED, _truncated)),
        Case("trailing_bytes", every, _framing("trailing_bytes", K.MALFORMED, _trailing)),
        Case("garbage_body", every, _framing("garbage_body", K.MALFORMED, _garbage_body)),
        Case("bad_utf8", every, _framing("bad_utf8", K.MALFORMED, _bad_utf8)),
        Case("timestamp_overflow", every, _framing("timestamp_overflow", K.MALFORMED, _timestamp_overflow)),
        Case("out_of_range_tag", every, _framing("out_of_range_tag", K.MALFORMED, _out_of_range_tag)),
        Case("wrong_event_type", every, _event_variants("wrong_event_type", K.INVALID, _wrong_type)),
        Case("bad_numbers", every, _event_variants("bad_numbers", K.INVALID, _bad_numbers)),
        Case("reversed_times", ("inbox", "riders", "routes"), _event_variants("reversed_times", K.INVALID, _reversed_window)),
        Case("far_past", every, _event_variants("far_past", K.INVALID, _times("far_past"))),
        Case("far_future", every, _event_variants("far_future", K.INVALID, _times("far_future"))),
        Case("bad_key", every, _event_variants("bad_key", K.INVALID, _keys)),
        Case("control_chars_in_id", every, _event_variants("control_chars_in_id", K.INVALID, _ids(CONTROL_IDS, unique=True))),
        Case("reserved_id", every, _event_variants("reserved_id", K.INVALID, _ids(RESERVED_IDS, unique=False))),
        Case("empty_id", every, _event_variants("empty_id", K.INVALID, _empty_ids)),
        Case("many_skills", ("inbox", "riders"), _event_variants("many_skills", K.INVALID, _many_items)),
        Case("oversized", every, _event_variants("oversized", K.INVALID, _oversized), heavy=True),
        Case("huge_route", ("routes",), _event_variants("huge_route", K.INVALID, _huge_route(route_stops)), heavy=True),
        Case("illegal_transition", ("inbox", "riders"), _illegal),
        Case("duplicate", every, _duplicates),
    )


def corpus(messages: int = 0, *, seed: int = 1, now: datetime, tag: str, hubs: Hubs, codec: Codec | None = None,
           route_stops: tuple[int, ...] = ROUTE_STOPS, heavy_cap: int = 40, skip: frozenset[str] = frozenset()
           ) -> list[Message]:
    """Every variant of every case on every topic it applies to once (the small corpus), then, up to
    ``messages`` in all, light variants drawn at random; heavy ones (about 1 MB each) repeat at most
    ``heavy_cap`` times in all. Groups keep their order; the groups are shuffled. ``skip``: case names
    left out (to see past a case that stops the system)."""
    unknown = skip - {c.name for c in cases(route_stops)}
    if unknown:
        raise ValueError(f"no such hostile cases: {sorted(unknown)}")
    rng = random.Random(seed)
    b = _Builder(codec or Codec(), rng, now, tag, hubs)
    table = [(c, topic, c.variants(b, topic)) for c in cases(route_stops) if c.name not in skip for topic in c.topics]
    groups: list[Group] = [variant() for _, _, variants in table for variant in variants]
    total = sum(len(g) for g in groups)
    heavy_left = max(0, heavy_cap - sum(len(variants) for c, _, variants in table if c.heavy))
    light = [v for c, _, variants in table if not c.heavy for v in variants]
    heavy = [v for c, _, variants in table if c.heavy for v in variants]
    while total < messages:
        pool = heavy if heavy_left > 0 and heavy and rng.random() < 0.002 else light
        group = rng.choice(pool)()
        if pool is heavy:
            heavy_left -= 1
        groups.append(group)
        total += len(group)
    rng.shuffle(groups)
    return [m for g in groups for m in g]


def count(messages: list[Message]) -> Iterator[tuple[str, int]]:
    """(case/topic, hostile messages) in a stable order: the report's rows."""
    seen: dict[str, int] = {}
    for m in messages:
        if m.outcome is Outcome.DEAD_LETTER:
            seen[f"{m.case}/{m.topic}"] = seen.get(f"{m.case}/{m.topic}", 0) + 1
    yield from sorted(seen.items())


__all__ = ["BROKER_MAX_MESSAGE", "INPUTS", "Case", "Hubs", "Message", "Outcome", "cases", "corpus", "count"]
