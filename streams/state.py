"""State records without pickle: Faust table values and tracking checkpoints, in Avro.

Table changelogs and the tracking-state topic are read back into the workers' memory. Pickled,
whoever could write one of those topics could run code in a worker; here each record is Avro
against a schema of ``schemas/state/`` and decoding builds nothing but our own state classes.

**Wire format**: Avro single-object encoding, as for events: ``C3 01``, the CRC-64-AVRO
fingerprint of the writer schema (8 bytes, little-endian), the body. The fingerprint names the
kind and its version. A record of the current schema or of one kept in
``schemas/state/released/`` is read (an older one through Avro schema resolution); an unknown
fingerprint, another kind, truncated or trailing bytes, a body that does not decode or values our
classes refuse raise :class:`StateError`, naming the kind and why.

**Schemas are generated** from the state classes' type hints (:func:`schema_of`): dataclasses,
named tuples and typed dicts become records; ``X | None`` and other unions become unions;
tuples of one type, lists and frozensets arrays; fixed tuples records with fields ``_0``, ``_1``...;
mappings with string (or string-enum) keys Avro maps, other mappings arrays of key/value
records; string enums Avro enums; datetimes ``timestamp-micros``; events embedded as bytes in
their own single-object encoding (the event codec, so event versions resolve there). Python
defaults become Avro defaults, so a field added with a default reads older records.
``python -m streams.state write`` regenerates ``schemas/state/`` after a class changed shape
and keeps each replaced schema in ``released/`` (``python -m streams.state check`` only compares).

Kinds (:data:`KINDS`): ``order-state``, ``rider-hub``, ``hub-pool``, ``notice-state`` (Faust
tables; :func:`faust_value_type`), ``tracker-rider``, ``tracker-plans``, ``tracker-fleet`` (the
tracking worker's checkpoints) and ``tracker-marker`` (the token its restore reads up to).

Errors::

    StateError (ValueError)  a value that cannot be encoded, or a record refused on decode
"""

from __future__ import annotations

import dataclasses
import enum
import io
import json
import logging
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, TypedDict

import fastavro

from schemas import Codec, DecodeError, InvalidEvent
from schemas import events as ev
from schemas.codec import SCHEMA_DIR, SINGLE_OBJECT_MAGIC, schema_fingerprint
from streams.domain.dispatch.hub import Hub
from streams.domain.orders.lifecycle import OrderState
from streams.domain.orders.notify import NoticeState
from streams.domain.tracking import alerts, eta, geofence, hygiene, zones
from streams.domain.tracking.tracker import Fleet
from streams.errors import StateError  # a value that cannot be encoded, or a record refused

log = logging.getLogger(__name__)

NAMESPACE = "milestream.state"
STATE_DIR = SCHEMA_DIR / "state"
HEADER_LEN = 10

__all__ = ["KINDS", "NAMESPACE", "STATE_DIR", "FleetCheckpoint", "Kind", "RiderSnapshot", "StateCodec", "StateError",
           "decode", "encode", "faust_value_type", "schema_of"]




# ---- the records that are not domain classes ----------------------------------------------


class RiderSnapshot(TypedDict):
    """What :meth:`streams.domain.tracking.tracker.RiderLive.snapshot` returns (its routes, derived
    from the plan, are left out and rebuilt on restore)."""

    rider_id: str
    vehicle_type: ev.VehicleType
    device: hygiene.DeviceState
    fences: geofence.RiderFences
    zones: zones.RiderZones
    route: None
    anchor: tuple[float, float, float, float] | None
    applied: dict[str, int]
    alert: alerts.AlertState
    eta: eta.RiderEta | None
    route_id: str | None
    format: int


class FleetCheckpoint(NamedTuple):
    """The fleet's learning as the tracking worker checkpoints it."""

    now_s: float
    fleet: Fleet
    format: int


@dataclasses.dataclass(frozen=True, slots=True)
class Kind:
    """One kind of state record: the Python type of its values and the Avro record they become.

    A value that is not a record (a hub id, a tuple of plans) is wrapped in a record ``record``
    with the one field ``field``. ``omit`` names fields left out of the record (derived from
    elsewhere and rebuilt on restore): they must be None when encoded and decode as None.
    ``reuse`` names top-level fields whose encoding is kept per value of the ``reuse_by`` field
    and written again while the field's value is unchanged (an Avro record is its fields'
    encodings one after the other): a rider's ETA state is most of its record and changes far
    less often than it is checkpointed."""

    name: str
    type: Any
    record: str = ""
    field: str = ""
    omit: Mapping[type, frozenset[str]] = dataclasses.field(default_factory=dict)
    reuse: tuple[str, ...] = ()
    reuse_by: str = ""


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("order-state", OrderState),
    Kind("rider-hub", str, record="RiderHub", field="hub_id"),
    Kind("hub-pool", Hub),
    Kind("notice-state", NoticeState),
    Kind("tracker-rider", RiderSnapshot,
         omit={alerts.AlertState: frozenset({"route"}), eta.RiderEta: frozenset({"route"})},
         reuse=("alert", "eta"), reuse_by="rider_id"),
    Kind("tracker-plans", tuple[ev.RoutePlanned | None, ...], record="TrackerPlans", field="plans"),
    Kind("tracker-fleet", FleetCheckpoint),
    Kind("tracker-marker", bytes, record="TrackerMarker", field="token"),
)}


# ---- type hints -> Avro schema and converters ------------------------------------------------

Conv = Callable[[Any], Any]
_PRIMITIVES: dict[type, str] = {bool: "boolean", int: "long", float: "double", str: "string", bytes: "bytes"}
_AVRO_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_NO_DEFAULT = object()


class _Node:
    """One type: its Avro schema, converters to and from what fastavro writes and reads (None:
    the value as it is), how a default of it reads in JSON, and how unions tell it apart."""

    __slots__ = ("schema", "to", "frm", "json", "branch", "accepts", "named", "parts", "fields")

    def __init__(self, schema: Any, to: Conv | None, frm: Conv | None, json_: Conv, branch: str,
                 accepts: Callable[[Any], bool], named: bool = False, parts: list[_Node] | None = None) -> None:
        self.schema = schema
        self.to = to
        self.frm = frm
        self.json = json_  # value -> its Avro JSON default; raises _NoJson when it has none
        self.branch = branch  # name of the union branch (full name of named types)
        self.accepts = accepts  # does this Python value belong to this type (for unions)
        self.named = named
        self.parts = parts or []  # a union's branches, in the order of its schema
        self.fields: list[tuple[str, Conv | None]] = []  # a record's fields and their converters


# Integer fields that may pass 64 bits (a bit per stop of a route): signed big-endian bytes.
WIDE_INTS: frozenset[tuple[type, str]] = frozenset({(geofence.RiderFences, "arrived")})
# Computed defaults larger than this (learned priors) are left out of the schema: a field added
# with one reads older records as refused, not as a copy of the prior.
MAX_DEFAULT_JSON = 1024


def _wide_int() -> _Node:
    def to(v: int) -> bytes:
        return v.to_bytes(v.bit_length() // 8 + 1, "big", signed=True)

    def frm(v: bytes) -> int:
        return int.from_bytes(v, "big", signed=True)

    return _Node({"type": "bytes", "logicalType": "milestream-wide-int"}, to, frm, lambda v: to(v).decode("latin-1"),
                 "bytes", lambda v: isinstance(v, int) and not isinstance(v, bool))


class _NoJson(Exception):
    """A default with no JSON form (an infinite float, say): the field gets no Avro default."""


def _plain_json(v: Any) -> Any:
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        raise _NoJson(repr(v))
    return v


def _aware(v: datetime) -> datetime:
    if v.tzinfo is None:
        raise StateError(f"naive datetime {v.isoformat()} (state datetimes carry their zone)")
    return v


def _micros(v: datetime) -> int:
    return round(_aware(v).timestamp() * 1_000_000)


def _sorted(v: Any) -> list[Any]:
    try:
        return sorted(v)
    except TypeError:  # unorderable members: any order reads back the same set
        return list(v)


def _is_typeddict(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, dict) and hasattr(tp, "__total__")


def _is_namedtuple(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, tuple) and hasattr(tp, "_fields")


class _Builder:
    """Builds one kind's schema. Named types are defined at their first use and referenced by
    name after (recursive ones too: the converters of a type being built are looked up late)."""

    def __init__(self, kind: Kind, events: Codec) -> None:
        self.kind = kind
        self.events = events
        self.names: dict[Any, str] = {}  # type key -> full Avro name
        self.taken: dict[str, Any] = {}  # Avro short name -> type key
        self.done: dict[Any, _Node] = {}
        self.cells: dict[Any, list[Conv | None]] = {}  # type key -> [to, frm] while being built
        self.aliases: dict[int, str] = {}  # id of a module-level type alias -> its name
        self.alias_objects: list[Any] = []

    # -- names ---------------------------------------------------------------------------

    def _scan_aliases(self, module: types.ModuleType) -> None:
        for name, value in vars(module).items():
            if isinstance(value, types.GenericAlias | types.UnionType) and id(value) not in self.aliases:
                self.aliases[id(value)] = name
                self.alias_objects.append(value)  # keeps the id valid

    def _name(self, key: Any, short: str, module: str) -> str:
        if short in self.taken and self.taken[short] != key:
            short = f"{module.rsplit('.', 1)[-1]}_{short}"
        n, base = 2, short
        while short in self.taken and self.taken[short] != key:
            short, n = f"{base}{n}", n + 1
        self.taken[short] = key
        full = f"{NAMESPACE}.{short}"
        self.names[key] = full
        return full

    # -- hints ---------------------------------------------------------------------------

    def _hints(self, cls: type) -> list[tuple[str, Any, Any]]:
        """(field, type, default) in declaration order; annotations evaluated in the class's module
        without rebuilding type aliases (so a recursive alias stays the same object)."""
        module = sys.modules[cls.__module__]
        self._scan_aliases(module)
        ns = vars(module)
        omit = self.kind.omit.get(cls, frozenset())
        if dataclasses.is_dataclass(cls):
            items = [(f.name, f.type, f.default if f.default is not dataclasses.MISSING else
                      (f.default_factory() if f.default_factory is not dataclasses.MISSING else _NO_DEFAULT))
                     for f in dataclasses.fields(cls) if f.init]
        elif _is_namedtuple(cls):
            defaults = getattr(cls, "_field_defaults", {})
            items = [(name, cls.__annotations__[name], defaults.get(name, _NO_DEFAULT)) for name in cls._fields]
        elif _is_typeddict(cls):
            items = [(name, tp, _NO_DEFAULT) for name, tp in cls.__annotations__.items()]
        else:
            raise TypeError(f"{cls.__qualname__} is not a dataclass, named tuple or typed dict")
        return [(name, self._eval(tp, ns, f"{cls.__qualname__}.{name}"), default)
                for name, tp, default in items if name not in omit]

    def _eval(self, tp: Any, ns: Mapping[str, Any], where: str) -> Any:
        if isinstance(tp, typing.ForwardRef):
            tp = tp.__forward_arg__
        if isinstance(tp, str):
            try:
                return eval(tp, dict(ns))  # noqa: S307 - our own annotations, at schema build time
            except NameError as exc:
                raise TypeError(f"{where}: annotation {tp!r} does not resolve: {exc}") from exc
        return tp

    # -- nodes ---------------------------------------------------------------------------

    def node(self, tp: Any, where: str, ns: Mapping[str, Any]) -> _Node:
        tp = self._eval(tp, ns, where)
        if tp is None or tp is type(None):
            return _Node("null", None, None, lambda v: None, "null", lambda v: v is None)
        if tp is datetime:
            return _Node({"type": "long", "logicalType": "timestamp-micros"}, _aware, None, _micros, "long",
                         lambda v: isinstance(v, datetime))
        if tp in _PRIMITIVES:
            avro = _PRIMITIVES[tp]
            if tp is bool:
                accepts: Callable[[Any], bool] = lambda v: isinstance(v, bool)  # noqa: E731
            elif tp is int:
                accepts = lambda v: isinstance(v, int) and not isinstance(v, bool)  # noqa: E731
            elif tp is float:
                accepts = lambda v: isinstance(v, float | int) and not isinstance(v, bool)  # noqa: E731
            else:
                accepts = lambda v, t=tp: isinstance(v, t)  # noqa: E731
            json_ = (lambda v: v.decode("latin-1")) if tp is bytes else _plain_json
            return _Node(avro, None, None, json_, avro, accepts)
        origin = typing.get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            return self._union(tp, where, ns)
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return self._enum(tp)
        if isinstance(tp, type) and issubclass(tp, ev.Event):
            return self._event(tp)
        if origin is tuple or tp is tuple:
            args = typing.get_args(tp)
            if len(args) == 2 and args[1] is Ellipsis:
                return self._array(args[0], where, ns, tuple, lambda v: isinstance(v, tuple))
            return self._fixed_tuple(tp, args, where, ns)
        if origin is list:
            return self._array(typing.get_args(tp)[0], where, ns, list, lambda v: isinstance(v, list))
        if origin in (frozenset, set, AbstractSet):
            return self._set(typing.get_args(tp)[0], where, ns)
        if origin is Sequence:
            return self._array(typing.get_args(tp)[0], where, ns, tuple, lambda v: isinstance(v, tuple | list))
        if origin in (dict, Mapping, typing.Mapping):  # noqa: UP006 - either spelling in hints
            key, value = typing.get_args(tp)
            return self._mapping(key, value, where, ns)
        if dataclasses.is_dataclass(tp) or _is_namedtuple(tp) or _is_typeddict(tp):
            return self._record(tp)
        raise TypeError(f"{where}: no Avro mapping for {tp!r}")

    def _union(self, tp: Any, where: str, ns: Mapping[str, Any]) -> _Node:
        branches = [self.node(a, where, ns) for a in typing.get_args(tp)]
        unnamed = [b.branch for b in branches if not b.named]
        if len(set(unnamed)) != len(unnamed):
            raise TypeError(f"{where}: union {tp!r} has two branches of Avro type {unnamed}")
        by_name = {b.branch: b for b in branches}
        plain = {b.branch: b for b in branches if not b.named}  # read back as bare values
        schema = [b.schema for b in branches]
        if len(branches) == 2 and branches[1].branch == "null":  # X | None: null first, as Avro defaults want
            branches.reverse()
            schema.reverse()
        if len(branches) == 2 and branches[0].branch == "null":
            other = branches[1]
            name, to_x, frm_x = other.branch, other.to, other.frm
            null = ("null", None)
            if to_x is None:
                def to(v: Any) -> Any:
                    return null if v is None else (name, v)
            else:
                def to(v: Any) -> Any:
                    return null if v is None else (name, to_x(v))
            if other.named:  # read back as (name, value)
                def frm(v: Any) -> Any:
                    return None if v is None else (v[1] if frm_x is None else frm_x(v[1]))
            elif frm_x is None:
                frm = None  # type: ignore[assignment]
            else:
                def frm(v: Any) -> Any:
                    return None if v is None else frm_x(v)
        else:
            def to(v: Any) -> Any:
                for b in branches:
                    if b.accepts(v):
                        return (b.branch, v if b.to is None else b.to(v))
                raise StateError(f"{where}: {type(v).__name__} is none of {[b.branch for b in branches]}")

            def frm(v: Any) -> Any:
                if isinstance(v, tuple):  # a named branch: (full name, value)
                    b = by_name[v[0]]
                    v = v[1]
                else:
                    b = next((b for b in plain.values() if _reads_as(b, v)), None)
                    if b is None:
                        raise StateError(f"{where}: {type(v).__name__} read for a union of {list(by_name)}")
                return v if b.frm is None else b.frm(v)

        def json_(v: Any) -> Any:
            return next(b for b in branches if b.accepts(v)).json(v)

        def accepts(v: Any) -> bool:
            return any(b.accepts(v) for b in branches)

        return _Node(schema, to, frm, json_, "union", accepts, parts=branches)

    def _enum(self, tp: type[enum.Enum]) -> _Node:
        key = tp
        symbols = [m.value for m in tp]
        if not all(isinstance(s, str) and _AVRO_NAME.match(s) for s in symbols):
            raise TypeError(f"{tp.__qualname__}: values {symbols} are not all Avro enum symbols")
        members = {m.value: m for m in tp}

        def frm(v: str) -> Any:
            return members[v]

        def to(v: Any) -> Any:
            return v.value

        to_ = None if issubclass(tp, str) else to
        if key in self.names:
            schema: Any = self.names[key]
        else:
            full = self._name(key, tp.__name__, tp.__module__)
            schema = {"type": "enum", "name": full.rsplit(".", 1)[-1], "namespace": NAMESPACE, "symbols": symbols}
        return _Node(schema, to_, frm, lambda v: v.value, self.names[key], lambda v: isinstance(v, tp), named=True)

    def _event(self, tp: type[ev.Event]) -> _Node:
        codec = self.events

        def to(v: ev.Event) -> bytes:
            try:
                return codec.encode(v)
            except (InvalidEvent, ValueError) as exc:
                raise StateError(f"embedded {type(v).__name__} does not encode: {exc}") from exc

        def frm(v: bytes) -> ev.Event:
            try:
                event = codec.decode(v)
            except (DecodeError, InvalidEvent) as exc:
                raise StateError(f"embedded {tp.__name__}: {exc}") from exc
            if not isinstance(event, tp):
                raise StateError(f"embedded {type(event).__name__} where a {tp.__name__} belongs")
            return event

        def json_(v: Any) -> Any:
            raise _NoJson("events have no JSON default")

        return _Node("bytes", to, frm, json_, "bytes", lambda v: isinstance(v, tp))

    def _array(self, item_tp: Any, where: str, ns: Mapping[str, Any], kind: type,
               accepts: Callable[[Any], bool]) -> _Node:
        item = self.node(item_tp, f"{where}[]", ns)
        to_i, frm_i = item.to, item.frm
        to = None if to_i is None else (lambda v: [to_i(x) for x in v])
        if frm_i is None:
            frm: Conv = kind
        else:
            def frm(v: Any) -> Any:
                return kind(map(frm_i, v))
        return _Node({"type": "array", "items": item.schema}, to, frm, lambda v: [item.json(x) for x in v], "array",
                     accepts)

    def _set(self, item_tp: Any, where: str, ns: Mapping[str, Any]) -> _Node:
        item = self.node(item_tp, f"{where}[]", ns)
        to_i, frm_i = item.to, item.frm
        to = _sorted if to_i is None else (lambda v: [to_i(x) for x in _sorted(v)])
        frm: Conv = frozenset if frm_i is None else (lambda v: frozenset(map(frm_i, v)))
        return _Node({"type": "array", "items": item.schema}, to, frm,
                     lambda v: [item.json(x) for x in _sorted(v)], "array",
                     lambda v: isinstance(v, frozenset | set))

    def _mapping(self, key_tp: Any, value_tp: Any, where: str, ns: Mapping[str, Any]) -> _Node:
        key_tp = self._eval(key_tp, ns, where)
        value = self.node(value_tp, f"{where}{{}}", ns)
        to_v, frm_v = value.to, value.frm
        accepts: Callable[[Any], bool] = lambda v: isinstance(v, Mapping)  # noqa: E731
        if key_tp is str or (isinstance(key_tp, type) and issubclass(key_tp, enum.StrEnum)):
            members = None if key_tp is str else {m.value: m for m in key_tp}
            to = None if to_v is None and members is None else (
                lambda v: {str(k): x if to_v is None else to_v(x) for k, x in v.items()})
            if members is None and frm_v is None:
                frm: Conv = dict
            else:
                def frm(v: Any) -> Any:
                    return {(k if members is None else members[k]): (x if frm_v is None else frm_v(x))
                            for k, x in v.items()}
            return _Node({"type": "map", "values": value.schema}, to, frm,
                         lambda v: {str(k): value.json(x) for k, x in v.items()}, "map", accepts)
        # other keys: an array of key/value records
        key = self.node(key_tp, f"{where}{{key}}", ns)
        to_k, frm_k = key.to, key.frm
        entry = f"{_camel(where)}Entry"
        self._name(("entry", where), entry, "")
        entry_schema = {"type": "record", "name": self.names[("entry", where)].rsplit(".", 1)[-1],
                        "namespace": NAMESPACE,
                        "fields": [{"name": "key", "type": key.schema}, {"name": "value", "type": value.schema}]}

        def to(v: Any) -> Any:  # type: ignore[no-redef]
            return [{"key": k if to_k is None else to_k(k), "value": x if to_v is None else to_v(x)}
                    for k, x in v.items()]

        def frm(v: Any) -> Any:  # type: ignore[no-redef]
            out = {}
            for e in v:
                out[e["key"] if frm_k is None else frm_k(e["key"])] = e["value"] if frm_v is None else frm_v(e["value"])
            return out

        return _Node({"type": "array", "items": entry_schema}, to, frm,
                     lambda v: [{"key": key.json(k), "value": value.json(x)} for k, x in v.items()], "array", accepts)

    def _fixed_tuple(self, tp: Any, args: tuple[Any, ...], where: str, ns: Mapping[str, Any]) -> _Node:
        if len(set(args)) == 1 and args[0] in (int, float):  # (lat, lon), (index, ahead, slot): a short array
            return self._short_array(args[0], len(args), where, ns)
        alias = self.aliases.get(id(tp))
        key = ("alias", alias, id(tp)) if alias else ("tuple", tp)
        names = [f"_{i}" for i in range(len(args))]
        return self._named(key, alias or _camel(where), "", names, list(args), ns, where,
                           build=tuple, accepts=lambda v: isinstance(v, tuple) and len(v) == len(args),
                           positional=True)

    def _short_array(self, item_tp: Any, n: int, where: str, ns: Mapping[str, Any]) -> _Node:
        """A fixed tuple of numbers: an Avro array (written as the tuple itself), its length checked on read."""
        item = self.node(item_tp, f"{where}[]", ns)

        def frm(v: list[Any]) -> tuple[Any, ...]:
            if len(v) != n:
                raise StateError(f"{where}: {len(v)} numbers where {n} belong")
            return tuple(v)

        return _Node({"type": "array", "items": item.schema}, None, frm, lambda v: [item.json(x) for x in v], "array",
                     lambda v: isinstance(v, tuple) and len(v) == n)

    def _record(self, cls: type) -> _Node:
        fields = self._hints(cls)
        ns = vars(sys.modules[cls.__module__])
        omitted = self.kind.omit.get(cls, frozenset())
        if _is_typeddict(cls):
            build: Callable[..., Any] = dict
        elif _is_namedtuple(cls):
            build = cls
        else:
            build = cls
        defaults = [d for _, _, d in fields]
        return self._named(cls, cls.__name__, cls.__module__, [f for f, _, _ in fields], [t for _, t, _ in fields], ns,
                           cls.__qualname__, build=build,
                           accepts=(lambda v: isinstance(v, dict)) if _is_typeddict(cls) else (lambda v: isinstance(v, cls)),
                           positional=False, defaults=defaults, omitted=omitted,
                           is_tuple=_is_namedtuple(cls), is_dict=_is_typeddict(cls))

    def _named(self, key: Any, short: str, module: str, fields: list[str], types_: list[Any], ns: Mapping[str, Any],
               where: str, *, build: Callable[..., Any], accepts: Callable[[Any], bool], positional: bool,
               defaults: list[Any] | None = None, omitted: frozenset[str] = frozenset(), is_tuple: bool = True,
               is_dict: bool = False) -> _Node:
        if key in self.done:
            done = self.done[key]
            return _Node(self.names[key], done.to, done.frm, done.json, self.names[key], done.accepts, named=True)
        if key in self.cells:  # recursive: a reference whose converters are looked up when used
            cell = self.cells[key]
            return _Node(self.names[key], lambda v: cell[0](v), lambda v: cell[1](v),  # type: ignore[misc]
                         lambda v: (_ for _ in ()).throw(_NoJson("recursive")), self.names[key], accepts, named=True)
        full = self._name(key, short, module)
        cell: list[Conv | None] = [None, None]
        self.cells[key] = cell
        nodes = [_wide_int() if (key, f) in WIDE_INTS else self.node(t, f"{where}.{f}", ns)
                 for f, t in zip(fields, types_, strict=True)]
        avro_fields = []
        for i, (f, n) in enumerate(zip(fields, nodes, strict=True)):
            spec: dict[str, Any] = {"name": f, "type": n.schema}
            default = defaults[i] if defaults else _NO_DEFAULT
            if default is not _NO_DEFAULT:
                try:
                    spec["default"] = n.json(default)
                    if len(json.dumps(spec["default"])) > MAX_DEFAULT_JSON:
                        raise _NoJson("too large to be worth a default")
                except _NoJson:
                    spec.pop("default", None)
                else:
                    if n.parts:  # a union's default is of its first branch
                        first = next(j for j, b in enumerate(n.parts) if b.accepts(default))
                        spec["type"] = [n.schema[first], *n.schema[:first], *n.schema[first + 1:]]
            avro_fields.append(spec)
        schema = {"type": "record", "name": full.rsplit(".", 1)[-1], "namespace": NAMESPACE, "fields": avro_fields}
        getters = [(f, n.to) for f, n in zip(fields, nodes, strict=True)]
        readers = [(f, n.frm) for f, n in zip(fields, nodes, strict=True)]
        omit_none = {f: None for f in omitted}

        if is_dict:
            expected = frozenset(fields)

            def to(v: Any) -> dict[str, Any]:
                if v.keys() != expected:
                    raise StateError(f"{where}: keys {sorted(v.keys() ^ expected)} differ from the record's")
                return {f: v[f] if c is None else c(v[f]) for f, c in getters}
        elif (positional or is_tuple) and all(c is None for _, c in getters):
            names = tuple(fields)

            def to(v: Any) -> dict[str, Any]:
                return dict(zip(names, v, strict=True))
        elif positional or is_tuple:
            def to(v: Any) -> dict[str, Any]:
                return {f: x if c is None else c(x) for (f, c), x in zip(getters, v, strict=True)}
        else:
            def to(v: Any) -> dict[str, Any]:
                out = {f: getattr(v, f) if c is None else c(getattr(v, f)) for f, c in getters}
                for f in omitted:
                    if getattr(v, f) is not None:
                        raise StateError(f"{where}.{f} is left out of the record but is not None")
                return out

        if positional:
            def frm(v: dict[str, Any]) -> Any:
                return build(v[f] if c is None else c(v[f]) for f, c in readers)
        elif is_tuple:
            def frm(v: dict[str, Any]) -> Any:
                return build(*[v[f] if c is None else c(v[f]) for f, c in readers])
        else:
            def frm(v: dict[str, Any]) -> Any:
                return build(**{f: v[f] if c is None else c(v[f]) for f, c in readers}, **omit_none)

        def json_(v: Any) -> Any:
            if positional or is_tuple:
                return {f: n.json(x) for f, n, x in zip(fields, nodes, v, strict=True)}
            if is_dict:
                return {f: n.json(v[f]) for f, n in zip(fields, nodes, strict=True)}
            return {f: n.json(getattr(v, f)) for f, n in zip(fields, nodes, strict=True)}

        cell[0], cell[1] = to, frm
        del self.cells[key]
        node = _Node(schema, to, frm, json_, full, accepts, named=True)
        node.fields = getters
        self.done[key] = node
        return node


def _reads_as(node: _Node, v: Any) -> bool:
    """Whether a bare value read from a union came from this (unnamed) branch."""
    avro = node.branch
    return {"null": v is None, "boolean": isinstance(v, bool), "string": isinstance(v, str),
            "bytes": isinstance(v, bytes), "double": isinstance(v, float),
            "long": isinstance(v, int | datetime) and not isinstance(v, bool),
            "array": isinstance(v, list), "map": isinstance(v, dict)}.get(avro, False)


def _camel(where: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in re.split(r"[^A-Za-z0-9]+", where) if p)


@dataclasses.dataclass(frozen=True, slots=True)
class _Compiled:
    kind: Kind
    schema: dict[str, Any]  # the Avro schema (JSON)
    to: Conv
    frm: Conv
    fields: list[tuple[str, Conv | None]] = dataclasses.field(default_factory=list)  # a record kind's


def _compile(kind: Kind, events: Codec) -> _Compiled:
    b = _Builder(kind, events)
    this = sys.modules[__name__]
    if kind.field:
        inner = b.node(kind.type, f"{kind.record}.{kind.field}", vars(this))
        to_i, frm_i = inner.to, inner.frm
        schema = {"type": "record", "name": kind.record, "namespace": NAMESPACE,
                  "fields": [{"name": kind.field, "type": inner.schema}]}
        name = kind.field

        def to(v: Any) -> Any:
            return {name: v if to_i is None else to_i(v)}

        def frm(v: Any) -> Any:
            return v[name] if frm_i is None else frm_i(v[name])

        return _Compiled(kind, schema, to, frm)
    node = b.node(kind.type, kind.name, vars(this))
    assert node.to is not None and node.frm is not None and isinstance(node.schema, dict)
    return _Compiled(kind, node.schema, node.to, node.frm, node.fields)


def _segments(compiled: _Compiled) -> list[_Segment]:
    """The record's fields cut into runs of fields written together and the fields reused alone."""
    named: dict[str, Any] = {}
    fastavro.parse_schema(compiled.schema, named_schemas=named, _write_hint=False)
    specs = {f["name"]: f for f in compiled.schema["fields"]}
    runs: list[tuple[list[tuple[str, Conv | None]], bool]] = []
    for name, conv in compiled.fields:
        reused = name in compiled.kind.reuse
        if reused or not runs or runs[-1][1]:
            runs.append(([], reused))
        runs[-1][0].append((name, conv))
    out = []
    for i, (fields, reused) in enumerate(runs):
        schema = {"type": "record", "name": f"_{compiled.schema['name']}Part{i}", "namespace": NAMESPACE,
                  "fields": [_by_name(specs[f]) for f, _ in fields]}
        out.append(_Segment(tuple(fields), fastavro.parse_schema(schema, named_schemas=named), reused))
    return out


def _by_name(spec: Any) -> Any:
    """A schema with its named types referenced by name (they are defined in the whole record)."""
    if isinstance(spec, list):
        return [_by_name(s) for s in spec]
    if isinstance(spec, dict):
        if spec.get("type") in ("record", "enum", "fixed"):
            return f"{spec.get('namespace', NAMESPACE)}.{spec['name']}"
        return {k: _by_name(v) if k in ("type", "items", "values") else v for k, v in spec.items()}
    return spec


def schema_of(kind: str, events: Codec | None = None) -> dict[str, Any]:
    """The Avro schema the state classes give ``kind`` (what ``schemas/state/`` must hold)."""
    return _compile(_kind(kind), events or Codec()).schema


def _kind(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise StateError(f"unknown state kind {name!r} (known: {', '.join(KINDS)})") from None


# ---- the codec --------------------------------------------------------------------------------


class _Reader(NamedTuple):
    kind: str
    writer: Any  # parsed writer schema
    reader: Any  # parsed current schema when the writer is an older version, else None


class _Segment(NamedTuple):
    """Consecutive top-level fields of a record kind, written as a record of their own (the same
    bytes as inside the whole record)."""

    fields: tuple[tuple[str, Conv | None], ...]
    schema: Any  # parsed
    reused: bool  # one field, its bytes kept while its value is unchanged


class StateCodec:
    """Encodes state values of each kind and decodes what was written, refusing anything else.
    Reads the schema folder once. Decoding is thread-safe; encoding a kind with reused fields
    keeps their last encoding per key (one writer per key, as tables and the tracker have)."""

    def __init__(self, state_dir: Path = STATE_DIR, events: Codec | None = None) -> None:
        self.events = events or Codec()
        self._compiled: dict[str, _Compiled] = {}
        self._writers: dict[str, tuple[Any, bytes]] = {}
        self._readers: dict[bytes, _Reader] = {}
        self._segments: dict[str, list[_Segment]] = {}
        self._kept: dict[tuple[str, Any, str], tuple[Any, bytes]] = {}  # (kind, key, field) -> (value, bytes)
        by_record: dict[str, str] = {}
        for name, kind in KINDS.items():
            compiled = _compile(kind, self.events)
            self._compiled[name] = compiled
            fp = schema_fingerprint(fastavro.parse_schema(compiled.schema, _write_hint=False))
            parsed = fastavro.parse_schema(compiled.schema)
            self._writers[name] = (parsed, SINGLE_OBJECT_MAGIC + fp)
            self._readers[fp] = _Reader(name, parsed, None)
            by_record[f"{NAMESPACE}.{compiled.schema['name']}"] = name
            if kind.reuse:
                self._segments[name] = _segments(compiled)
        for path in sorted((state_dir / "released").glob("*.avsc")):
            source = json.loads(path.read_text())
            fp = schema_fingerprint(fastavro.parse_schema(source, _write_hint=False))
            full = f"{source.get('namespace', NAMESPACE)}.{source['name']}"
            name = by_record.get(full)
            if name is None or fp in self._readers:
                continue
            self._readers[fp] = _Reader(name, fastavro.parse_schema(source), self._writers[name][0])

    def fingerprints(self) -> dict[bytes, str]:
        """Every fingerprint this codec reads, with its kind."""
        return {fp: r.kind for fp, r in self._readers.items()}

    def schema(self, kind: str) -> dict[str, Any]:
        return self._compiled[_kind(kind).name].schema

    def encode(self, kind: str, value: Any) -> bytes:
        compiled = self._compiled[_kind(kind).name]
        schema, header = self._writers[kind]
        buf = io.BytesIO()
        buf.write(header)
        try:
            segments = self._segments.get(kind)
            if segments is None:
                fastavro.schemaless_writer(buf, schema, compiled.to(value))
            else:
                self._write_segments(buf, kind, segments, value)
        except StateError as exc:
            raise StateError(f"{kind}: {exc}") from exc
        except Exception as exc:  # fastavro raises many types on a value that does not fit
            raise StateError(f"{kind}: {type(value).__name__} does not fit its schema: {exc!r}") from exc
        return buf.getvalue()

    def _write_segments(self, buf: io.BytesIO, kind: str, segments: list[_Segment], value: Any) -> None:
        get = value.__getitem__ if isinstance(value, dict) else value.__getattribute__
        if isinstance(value, dict) and value.keys() != {f for seg in segments for f, _ in seg.fields}:
            raise StateError(f"keys {sorted(value.keys() ^ {f for seg in segments for f, _ in seg.fields})} "
                             f"differ from the record's")
        key = get(self._compiled[kind].kind.reuse_by)
        for seg in segments:
            if seg.reused:
                ((name, conv),) = seg.fields
                v = get(name)
                kept = self._kept.get((kind, key, name))
                if kept is not None and kept[0] == v:
                    buf.write(kept[1])
                    continue
                part = io.BytesIO()
                fastavro.schemaless_writer(part, seg.schema, {name: v if conv is None else conv(v)})
                self._kept[(kind, key, name)] = (v, part.getvalue())
                buf.write(part.getvalue())
            else:
                fastavro.schemaless_writer(buf, seg.schema, {f: get(f) if c is None else c(get(f)) for f, c in seg.fields})

    def forget(self, kind: str, key: Any) -> None:
        """Drop the encodings kept for ``key`` (a rider handed to another worker)."""
        for name in _kind(kind).reuse:
            self._kept.pop((kind, key, name), None)

    def decode(self, kind: str, data: bytes | bytearray | memoryview | None) -> Any:
        """The value written by :meth:`encode` (of this or a released version); anything else is
        refused with a :class:`StateError`."""
        kind = _kind(kind).name
        if data is None or len(data) < HEADER_LEN:
            raise StateError(f"{kind}: record of {0 if data is None else len(data)} bytes is shorter than its "
                             f"{HEADER_LEN}-byte header")
        data = bytes(data)
        if data[:2] != SINGLE_OBJECT_MAGIC:
            what = " (a pickle)" if data[:1] == b"\x80" else ""
            raise StateError(f"{kind}: not a state record{what}: starts with {data[:2].hex()}, expected c301")
        reader = self._readers.get(data[2:HEADER_LEN])
        if reader is None:
            raise StateError(f"{kind}: unknown schema fingerprint {data[2:HEADER_LEN].hex()} (not a schema of "
                             f"schemas/state/ or its released/)")
        if reader.kind != kind:
            raise StateError(f"{kind}: the record is a {reader.kind} record")
        stream = io.BytesIO(data)
        stream.seek(HEADER_LEN)
        try:
            record = fastavro.schemaless_reader(stream, reader.writer, reader.reader, return_named_type=True)
        except Exception as exc:  # fastavro raises many types on garbage
            raise StateError(f"{kind}: body does not decode: {exc!r}") from exc
        if stream.tell() != len(data):
            raise StateError(f"{kind}: {len(data) - stream.tell()} bytes after the Avro body")
        try:
            return self._compiled[kind].frm(record)
        except StateError as exc:
            raise StateError(f"{kind}: {exc}") from exc
        except Exception as exc:  # our classes refused a value (a validating __post_init__, an unknown enum)
            raise StateError(f"{kind}: the record does not make a state: {exc!r}") from exc


_default: StateCodec | None = None


def _codec() -> StateCodec:
    global _default
    if _default is None:
        _default = StateCodec()
    return _default


def encode(kind: str, value: Any) -> bytes:
    """``value`` as a state record of ``kind`` (header and Avro body). Raises StateError."""
    return _codec().encode(kind, value)


def decode(kind: str, data: bytes | bytearray | memoryview | None) -> Any:
    """The value of a state record of ``kind``. Raises StateError for anything else."""
    return _codec().decode(kind, data)


# ---- Faust ----------------------------------------------------------------------------------


def faust_value_type(kind: str) -> type:
    """A table ``value_type`` whose values are state records of ``kind``.

    Faust takes a table's value serializer from ``value_type._options.serializer`` (changelog
    writes and recovery alike). A value of None (a rider off shift has no hub) is written as a
    tombstone, which reads back as no value. A changelog record that is refused is logged and read
    as no value (the key's default), so a hostile record neither runs nor stops the worker."""
    from faust.serializers import codecs

    name = f"milestream-state-{_kind(kind).name}"

    class StateRecordCodec(codecs.Codec):
        def _dumps(self, value: Any) -> bytes | None:
            return None if value is None else encode(kind, value)

        def _loads(self, data: bytes) -> Any:
            try:
                return decode(kind, data)
            except StateError as exc:
                log.warning("table record refused, read as no value: %s", exc)
                return None

    codecs.register(name, StateRecordCodec())

    class Options:
        serializer = name

    def from_data(cls: type, data: Any, *, preferred_type: Any = None) -> Any:
        """Faust hands decoded values to the value type; ours are complete already."""
        return data

    return type(f"StateRecord_{_camel(kind)}", (), {"_options": Options, "from_data": classmethod(from_data),
                                                    "__doc__": f"Table values: {kind} state records."})


# ---- the schema folder --------------------------------------------------------------------------


def _file(state_dir: Path, schema: Mapping[str, Any]) -> Path:
    return state_dir / f"{schema['name']}.avsc"


def _dumps(schema: Mapping[str, Any]) -> str:
    return json.dumps(schema, indent=2) + "\n"


def differences(state_dir: Path = STATE_DIR, events: Codec | None = None) -> list[str]:
    """Kinds whose committed ``.avsc`` differs from what the classes give (empty when in step)."""
    events = events or Codec()
    out = []
    for kind in KINDS:
        schema = schema_of(kind, events)
        path = _file(state_dir, schema)
        if not path.exists():
            out.append(f"{kind}: {path.name} is missing from {state_dir}")
        elif json.loads(path.read_text()) != schema:
            out.append(f"{kind}: {path.name} differs from the classes")
    return out


def write(state_dir: Path = STATE_DIR, events: Codec | None = None) -> list[str]:
    """Regenerate the schema folder: each schema that changed is kept in ``released/`` (named by
    its fingerprint) so that records already written stay readable. Returns what it did."""
    events = events or Codec()
    done = []
    for kind in KINDS:
        schema = schema_of(kind, events)
        path = _file(state_dir, schema)
        if path.exists():
            old = json.loads(path.read_text())
            if old == schema:
                continue
            fp = schema_fingerprint(fastavro.parse_schema(old, _write_hint=False)).hex()
            kept = state_dir / "released" / f"{old['name']}.{fp}.avsc"
            kept.parent.mkdir(parents=True, exist_ok=True)
            kept.write_text(_dumps(old))
            done.append(f"kept {old['name']}.avsc as released/{kept.name}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_dumps(schema))
        done.append(f"wrote {path.name}")
    return done


def unreadable(state_dir: Path = STATE_DIR) -> list[str]:
    """Released schemas whose records the current schema of their kind cannot read (Avro's reader
    and writer rules): such records would be refused, so a class change that causes this needs a
    default for the new field, or the released file removed on purpose."""
    import warnings

    import avro.errors
    import avro.schema
    from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

    def parse(path: Path) -> avro.schema.Schema:
        with warnings.catch_warnings():  # our wide ints are bytes to Avro: the rules for bytes apply
            warnings.simplefilter("ignore", avro.errors.IgnoredLogicalType)
            return avro.schema.parse(path.read_text())

    current = {json.loads(p.read_text())["name"]: p for p in state_dir.glob("*.avsc")}
    out = []
    for path in sorted((state_dir / "released").glob("*.avsc")):
        name = json.loads(path.read_text())["name"]
        if name not in current:
            out.append(f"released/{path.name}: no current schema named {name}")
            continue
        result = ReaderWriterCompatibilityChecker().get_compatibility(
            reader=parse(current[name]), writer=parse(path))
        if result.compatibility is not SchemaCompatibilityType.compatible:
            out.append(f"released/{path.name}: {name}.avsc cannot read it: {'; '.join(sorted(result.messages))}")
    return out


REGENERATE = "python -m streams.state write"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["write"]:
        for line in write():
            print(line)  # noqa: T201 - a command
        for line in unreadable():
            print(f"warning: {line}")  # noqa: T201
        return 0
    if args == ["check"]:
        problems = differences() + unreadable()
        for line in problems:
            print(line)  # noqa: T201 - a command
        if problems:
            print(f"regenerate with: {REGENERATE}")  # noqa: T201
        return 1 if problems else 0
    print("usage: python -m streams.state write|check")  # noqa: T201
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
