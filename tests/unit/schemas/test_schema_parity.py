"""The ``.avsc`` files (the contract) and their Python mirrors in ``schemas.events`` agree.

Both directions: every event class has a schema file and every schema file an event class; field
names, order, types and defaults match, recursively through nested records.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import json
import types
import typing
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from schemas import events as ev

SCHEMA_DIR = Path(ev.__file__).parent
NAMESPACE = "milestream.events"
PRIMITIVES: dict[str, type] = {
    "string": str,
    "int": int,
    "long": int,
    "double": float,
    "float": float,
    "boolean": bool,
    "bytes": bytes,
}
_MISSING = object()


def load(name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{name}.avsc").read_text())


# ---- the comparison ---------------------------------------------------------------------------


def named_types(schema: Any, found: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Every named type (record, enum, fixed) defined anywhere in ``schema``, by short and full name."""
    found = {} if found is None else found
    if isinstance(schema, list):
        for branch in schema:
            named_types(branch, found)
    elif isinstance(schema, dict):
        if schema.get("type") in ("record", "enum", "fixed"):
            name = schema["name"]
            found[name] = schema
            found[f"{schema.get('namespace', NAMESPACE)}.{name}"] = schema
        for f in schema.get("fields", ()):
            named_types(f["type"], found)
        for key in ("items", "values"):
            if key in schema:
                named_types(schema[key], found)
    return found


def compare_record(schema: dict[str, Any], cls: Any, path: str, named: dict[str, dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        return [f"{path}: Avro record {schema['name']} but Python type {cls!r} is not a dataclass"]
    if schema["name"] != cls.__name__:
        problems.append(f"{path}: Avro record {schema['name']} mirrored by dataclass {cls.__name__}")
    avro_fields = {f["name"]: f for f in schema["fields"]}
    py_fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in avro_fields.keys() - py_fields.keys():
        problems.append(f"{path}.{name}: in the .avsc but not in {cls.__name__}")
    for name in py_fields.keys() - avro_fields.keys():
        problems.append(f"{path}.{name}: in {cls.__name__} but not in the .avsc")
    common_avro = [n for n in avro_fields if n in py_fields]
    common_py = [n for n in py_fields if n in avro_fields]
    if common_avro != common_py:
        problems.append(f"{path}: field order differs: .avsc {common_avro} vs {cls.__name__} {common_py}")
    hints = typing.get_type_hints(cls)
    for name in common_avro:
        field_path = f"{path}.{name}"
        avro_field, py_field = avro_fields[name], py_fields[name]
        problems += compare_type(avro_field["type"], hints[name], field_path, named)
        problems += compare_default(avro_field, py_field, hints[name], field_path, named)
    return problems


def resolve(avro_type: Any, named: dict[str, dict[str, Any]]) -> Any:
    if isinstance(avro_type, str) and avro_type not in PRIMITIVES and avro_type != "null":
        return named.get(avro_type, avro_type)
    if isinstance(avro_type, dict) and avro_type.get("type") in PRIMITIVES and len(avro_type) == 1:
        return avro_type["type"]  # {"type": "string"} is "string"
    return avro_type


def optional_arg(hint: Any) -> Any:
    """X for ``X | None`` (or Optional[X]); _MISSING for anything else."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if len(args) == 2 and type(None) in args:
            return next(a for a in args if a is not type(None))
    return _MISSING


def compare_type(avro_type: Any, hint: Any, path: str, named: dict[str, dict[str, Any]]) -> list[str]:
    avro_type = resolve(avro_type, named)
    inner = optional_arg(hint)
    if isinstance(avro_type, list):
        branches = [resolve(b, named) for b in avro_type]
        if len(branches) != 2 or "null" not in branches:
            return [f"{path}: union {avro_type} has no Python mirror (only [\"null\", X] is supported)"]
        if inner is _MISSING:
            return [f"{path}: Avro union with null but Python type {hint!r} is not `X | None`"]
        (other,) = [b for b in branches if b != "null"]
        return compare_type(other, inner, path, named)
    if inner is not _MISSING:
        return [f"{path}: Python type {hint!r} is optional but the Avro type {avro_type!r} is not a union with null"]
    if isinstance(avro_type, str):
        if avro_type not in PRIMITIVES:
            return [f"{path}: unknown Avro type {avro_type!r}"]
        if hint is not PRIMITIVES[avro_type]:
            return [f"{path}: Avro {avro_type} needs Python {PRIMITIVES[avro_type].__name__}, got {hint!r}"]
        return []
    kind = avro_type.get("type")
    if avro_type.get("logicalType") is not None:
        if (kind, avro_type["logicalType"]) != ("long", "timestamp-millis"):
            return [f"{path}: logical type {avro_type['logicalType']} on {kind} has no Python mirror"]
        if hint is not datetime:
            return [f"{path}: timestamp-millis needs Python datetime, got {hint!r}"]
        return []
    if kind == "enum":
        if not (isinstance(hint, type) and issubclass(hint, enum.Enum)):
            return [f"{path}: Avro enum {avro_type['name']} needs a Python Enum, got {hint!r}"]
        problems = []
        if hint.__name__ != avro_type["name"]:
            problems.append(f"{path}: Avro enum {avro_type['name']} mirrored by {hint.__name__}")
        if not issubclass(hint, str):
            problems.append(f"{path}: {hint.__name__} must be a str Enum")
        values = [m.value for m in hint]
        if values != avro_type["symbols"]:
            problems.append(f"{path}: enum symbols differ: .avsc {avro_type['symbols']} vs {hint.__name__} {values}")
        default = avro_type.get("default")
        if default is not None and default not in values:
            problems.append(f"{path}: enum default {default!r} is not a symbol of {hint.__name__}")
        return problems
    if kind == "array":
        args = typing.get_args(hint)
        if typing.get_origin(hint) is not tuple or len(args) != 2 or args[1] is not Ellipsis:
            return [f"{path}: Avro array needs Python tuple[X, ...], got {hint!r}"]
        return compare_type(avro_type["items"], args[0], f"{path}[]", named)
    if kind == "record":
        return compare_record(avro_type, hint, path, named)
    return [f"{path}: Avro type {kind!r} has no Python mirror"]


def avro_default_as_python(default: Any, avro_type: Any, hint: Any, named: dict[str, dict[str, Any]]) -> Any:
    avro_type = resolve(avro_type, named)
    if default is None:
        return None
    if isinstance(avro_type, list):  # a union's default is of its first branch
        return avro_default_as_python(default, avro_type[0], optional_arg(hint), named)
    if avro_type in ("double", "float") and isinstance(default, int) and not isinstance(default, bool):
        return float(default)  # JSON 0 is a fine default for a double
    if avro_type == "bytes":
        return default.encode("latin-1")  # JSON strings stand for bytes 0-255
    if isinstance(avro_type, dict):
        if avro_type.get("type") == "array":
            (item,) = typing.get_args(hint)[:1]
            return tuple(avro_default_as_python(d, avro_type["items"], item, named) for d in default)
        if avro_type.get("type") == "enum":
            return hint(default)
        if avro_type.get("type") == "record":
            hints = typing.get_type_hints(hint)
            return hint(**{
                f["name"]: avro_default_as_python(default[f["name"]], f["type"], hints[f["name"]], named)
                for f in avro_type["fields"] if f["name"] in default
            })
    return default


def compare_default(
    avro_field: dict[str, Any], py_field: dataclasses.Field, hint: Any, path: str, named: dict[str, dict[str, Any]]
) -> list[str]:
    if py_field.default is not dataclasses.MISSING:
        py_default = py_field.default
    elif py_field.default_factory is not dataclasses.MISSING:
        py_default = py_field.default_factory()
    else:
        py_default = _MISSING
    avro_type = resolve(avro_field["type"], named)
    if isinstance(avro_type, list) and "null" in avro_type:
        problems = []
        if avro_type[0] != "null":
            problems.append(f"{path}: optional union must list \"null\" first (so null can be its default)")
        if avro_field.get("default", _MISSING) is not None:
            problems.append(f"{path}: optional field needs \"default\": null in the .avsc")
        if py_default is not None:
            problems.append(f"{path}: optional field needs default None in Python, has {py_default!r}")
        return problems
    if "default" not in avro_field or py_default is _MISSING:
        return []
    try:
        expected = avro_default_as_python(avro_field["default"], avro_field["type"], hint, named)
    except Exception as exc:  # a default of the wrong shape for its type
        return [f"{path}: .avsc default {avro_field['default']!r} does not fit its type: {exc!r}"]
    if type(expected) is not type(py_default) or expected != py_default:
        return [f"{path}: default differs: .avsc {avro_field['default']!r} vs Python {py_default!r}"]
    return []


def parity_problems(schema: dict[str, Any], cls: type) -> list[str]:
    problems = []
    if schema.get("type") != "record":
        problems.append(f"{cls.__name__}: top-level schema must be a record")
    if schema.get("namespace") != NAMESPACE:
        problems.append(f"{cls.__name__}: namespace must be {NAMESPACE}, is {schema.get('namespace')!r}")
    return problems + compare_record(schema, cls, cls.__name__, named_types(schema))


# ---- the tests ----------------------------------------------------------------------------------


def test_every_event_class_has_a_schema_file_and_every_schema_file_an_event_class() -> None:
    classes = {cls.__name__ for cls in ev.EVENT_TYPES}
    files = {p.stem for p in SCHEMA_DIR.glob("*.avsc")}
    assert sorted(classes - files) == [], "event classes without schemas/<ClassName>.avsc"
    assert sorted(files - classes) == [], ".avsc files without a class in schemas.events.EVENT_TYPES"
    assert len(ev.EVENT_TYPES) == len(classes) == 24


@pytest.mark.parametrize("cls", ev.EVENT_TYPES, ids=lambda c: c.__name__)
def test_schema_and_dataclass_match_field_for_field(cls: type) -> None:
    assert parity_problems(load(cls.__name__), cls) == []


@pytest.mark.parametrize("cls", [*ev.EVENT_TYPES, ev.Location, ev.GeoPoint, ev.PlannedStop, ev.PlannedBreak, ev.RouteBreak], ids=lambda c: c.__name__)
def test_event_dataclasses_are_frozen_slotted_and_keyword_only(cls: type) -> None:
    assert cls.__dataclass_params__.frozen
    assert all(f.kw_only for f in dataclasses.fields(cls))
    assert "__slots__" in cls.__dict__


def test_every_nested_record_is_covered() -> None:
    """The parity walk reaches the shared records, not just the top-level events."""
    reached: set[str] = set()
    for cls in ev.EVENT_TYPES:
        reached |= {s["name"] for s in named_types(load(cls.__name__)).values() if s["type"] == "record"}
    assert {"Location", "GeoPoint", "PlannedStop", "PlannedBreak", "RouteBreak"} <= reached


# ---- the comparison itself finds what it should (so the green tests above mean something) -----


def mutate(name: str, change: typing.Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    schema = copy.deepcopy(load(name))
    change(schema)
    return schema


def field_of(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in schema["fields"] if f["name"] == name)


def _nested_location_lat(s: dict[str, Any]) -> None:
    field_of(field_of(s, "drop")["type"], "lat")["type"] = "string"


def _nested_stop_kind_symbols(s: dict[str, Any]) -> None:
    field_of(field_of(s, "stops")["type"]["items"], "kind")["type"]["symbols"].append("return")


def _swap_lat_lon(s: dict[str, Any]) -> None:
    i, j = (s["fields"].index(field_of(s, n)) for n in ("lat", "lon"))
    s["fields"][i], s["fields"][j] = s["fields"][j], s["fields"][i]


@pytest.mark.parametrize(
    ("name", "change", "expected"),
    [
        ("GpsPing", lambda s: s["fields"].pop(), "GpsPing.battery_pct: in GpsPing but not in the .avsc"),
        ("GpsPing", lambda s: s["fields"].append({"name": "floor", "type": "int"}),
         "GpsPing.floor: in the .avsc but not in GpsPing"),
        ("GpsPing", _swap_lat_lon, "GpsPing: field order differs"),
        ("GpsPing", lambda s: field_of(s, "lat").update(type="string"), "GpsPing.lat: Avro string needs Python str"),
        ("GpsPing", lambda s: field_of(s, "device_time").update(type="long"), "GpsPing.device_time: Avro long needs"),
        ("GpsPing", lambda s: field_of(s, "battery_pct").update(type="double", default=0.0),
         "GpsPing.battery_pct: Python type float | None is optional"),
        ("OrderCreated", _nested_location_lat, "OrderCreated.drop.lat: Avro string needs Python str"),
        ("RoutePlanned", _nested_stop_kind_symbols, "RoutePlanned.stops[].kind: enum symbols differ"),
        ("OrderCreated", lambda s: field_of(s, "mode")["type"]["symbols"].reverse(),
         "OrderCreated.mode: enum symbols differ"),
        ("OrderCreated", lambda s: field_of(s, "required_skills").update(type="string"),
         "OrderCreated.required_skills: Avro string needs Python str"),
        ("OrderCreated", lambda s: field_of(s, "priority").update(default=1),
         "OrderCreated.priority: default differs: .avsc 1 vs Python 0"),
        ("OrderCreated", lambda s: field_of(s, "cod_amount").update(default=1.5),
         "OrderCreated.cod_amount: default differs"),
        ("OrderCreated", lambda s: field_of(s, "currency").update(default=0),
         "OrderCreated.currency: default differs"),
        ("OrderCreated", lambda s: field_of(s, "pickup").update(type=["Location", "null"]),
         "OrderCreated.pickup: optional union must list \"null\" first"),
        ("OrderCancelled", lambda s: field_of(s, "cancelled_by").update(default="customer"),
         "OrderCancelled.cancelled_by: default differs"),
        ("PodSubmitted", lambda s: field_of(s, "otp_hash").update(type=["null", "string"]),
         "PodSubmitted.otp_hash: Avro string needs Python str"),
        ("PodSubmitted", lambda s: field_of(s, "location").pop("default"),
         "PodSubmitted.location: optional field needs \"default\": null"),
        ("AlertRaised", lambda s: field_of(s, "severity")["type"].update(name="Level"),
         "AlertRaised.severity: Avro enum Level mirrored by Severity"),
        ("DeadLetter", lambda s: field_of(s, "source_offset").update(type="boolean"),
         "DeadLetter.source_offset: Avro boolean needs Python bool"),
        ("RiderShiftStarted", lambda s: field_of(s, "start")["type"]["fields"].pop(),
         "RiderShiftStarted.start.lon: in GeoPoint but not in the .avsc"),
        ("StatusChanged", lambda s: s.update(namespace="other"), "StatusChanged: namespace must be milestream.events"),
    ],
)
def test_parity_check_reports_each_mismatch_with_its_field_path(
    name: str, change: typing.Callable[[dict[str, Any]], None], expected: str
) -> None:
    cls = getattr(ev, name)
    assert parity_problems(load(name), cls) == []
    problems = parity_problems(mutate(name, change), cls)
    assert any(p.startswith(expected) for p in problems), problems
