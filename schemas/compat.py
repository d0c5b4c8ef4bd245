"""Compatibility of the current ``.avsc`` files with every released schema version.

Every schema in ``released/vN/`` must stay readable both ways by the current schema of the same
name:

* BACKWARD: a current reader can read data written with the released schema;
* FORWARD: a reader still on the released schema can read data written with the current one.

Both are decided by Avro's own reader/writer rules (``avro.compatibility``). On top of that a
change of a field's ``logicalType`` (e.g. ``timestamp-millis`` -> ``timestamp-micros``) is a
problem: Avro resolves it silently, but the values mean something else. Removing a released
event type is a breaking change; a current schema not released yet is only noted.

Pure: reads the schema folder, prints nothing (except ``main``). Run ``python -m schemas.compat``.
"""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import avro.schema
from avro.compatibility import (
    ReaderWriterCompatibilityChecker,
    SchemaCompatibilityResult,
    SchemaCompatibilityType,
    lookup_writer_field,
)

SCHEMA_DIR = Path(__file__).parent

__all__ = ["SCHEMA_DIR", "Report", "check_compatibility", "main", "report"]


@dataclass(slots=True)
class Report:
    problems: list[str] = field(default_factory=list)  # breaking: the check fails
    notes: list[str] = field(default_factory=list)  # informational only
    checked: int = 0  # released schemas compared with their current version


def check_compatibility(schema_dir: Path = SCHEMA_DIR) -> list[str]:
    """Human-readable compatibility problems of ``schema_dir`` (empty when all is fine)."""
    return report(schema_dir).problems


def report(schema_dir: Path = SCHEMA_DIR) -> Report:
    schema_dir = Path(schema_dir)
    rep = Report()
    current: dict[str, avro.schema.Schema] = {}
    for path in sorted(schema_dir.glob("*.avsc")):
        parsed = _parse(path, rep.problems)
        if parsed is not None:
            current[path.stem] = parsed
    ever_released: set[str] = set()
    versions = _released_versions(schema_dir)
    if not versions:
        rep.notes.append(f"no released schema versions under {schema_dir / 'released'}")
    for version_dir in versions:
        version = version_dir.name
        for path in sorted(version_dir.glob("*.avsc")):
            name = path.stem
            ever_released.add(name)
            old = _parse(path, rep.problems)
            if name not in current:
                if not (schema_dir / path.name).exists():  # (an unparsable one is reported already)
                    rep.problems.append(
                        f"{name}: released in {version} but {name}.avsc is gone; removing an event type "
                        "breaks every consumer and producer of it (deprecate it instead)"
                    )
                continue
            if old is None:
                continue
            rep.problems.extend(_compare(name, version, current[name], old))
            rep.checked += 1
    for name in sorted(set(current) - ever_released):
        rep.notes.append(f"{name}: not released yet (new event type, nothing to be compatible with)")
    return rep


def _released_versions(schema_dir: Path) -> list[Path]:
    def number(p: Path) -> tuple[int, str]:
        m = re.fullmatch(r"v(\d+)", p.name)
        return (int(m.group(1)) if m else sys.maxsize, p.name)

    released = schema_dir / "released"
    return sorted((p for p in released.glob("v*") if p.is_dir()), key=number)


def _parse(path: Path, problems: list[str]) -> avro.schema.Schema | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unknown logical types: compared by _logical_type_changes
            return avro.schema.parse(path.read_text())
    except Exception as exc:  # avro raises several types for bad JSON / bad schemas
        problems.append(f"{path.stem}: {path} is not a valid Avro schema: {exc}")
        return None


# ---- one released schema against the current one -----------------------------------------------


def _compare(name: str, version: str, cur: avro.schema.Schema, old: avro.schema.Schema) -> list[str]:
    problems = []
    backward = ReaderWriterCompatibilityChecker().get_compatibility(reader=cur, writer=old)
    if backward.compatibility is not SchemaCompatibilityType.compatible:
        why = _explain(reader=cur, writer=old, result=backward, reader_label="current", writer_label=version)
        problems.append(
            f"{name}: not BACKWARD compatible with released {version} "
            f"(the current schema cannot read data written with {version}): {why}"
        )
    forward = ReaderWriterCompatibilityChecker().get_compatibility(reader=old, writer=cur)
    if forward.compatibility is not SchemaCompatibilityType.compatible:
        why = _explain(reader=old, writer=cur, result=forward, reader_label=version, writer_label="current")
        problems.append(
            f"{name}: not FORWARD compatible with released {version} "
            f"(consumers still on {version} cannot read data written with the current schema): {why}"
        )
    for path, was, now in _logical_type_changes(cur, old, ""):
        problems.append(
            f"{name}: field {path or '(root)'} changed logicalType from {was or 'none'} ({version}) to "
            f"{now or 'none'} (current); Avro resolves it silently but the values change meaning"
        )
    return problems


def _explain(
    reader: avro.schema.Schema,
    writer: avro.schema.Schema,
    result: SchemaCompatibilityResult,
    reader_label: str,
    writer_label: str,
) -> str:
    """Name the fields at fault; the checker's own locations lose field names inside unions."""
    reasons = []
    if isinstance(reader, avro.schema.RecordSchema) and isinstance(writer, avro.schema.RecordSchema):
        if reader.name != writer.name and writer.fullname not in (reader.props.get("aliases") or ()):
            reasons.append(f"record name {reader.fullname} ({reader_label}) != {writer.fullname} ({writer_label})")
        reasons.extend(_field_reasons(reader, writer, "", reader_label))
    if not reasons:  # not a record, or the checker saw something the walk above did not
        reasons.append(_describe(result))
    return "; ".join(reasons)


def _field_reasons(
    reader: avro.schema.RecordSchema, writer: avro.schema.RecordSchema, prefix: str, reader_label: str
) -> list[str]:
    reasons = []
    for reader_field in reader.fields:
        path = prefix + reader_field.name
        writer_field = lookup_writer_field(writer_schema=writer, reader_field=reader_field)
        if writer_field is None:
            if not reader_field.has_default:
                if reader_label == "current":
                    reasons.append(f"field '{path}' was added without a default")
                else:
                    reasons.append(f"field '{path}' was removed, and {reader_label} has no default for it")
            continue
        sub = ReaderWriterCompatibilityChecker().get_compatibility(reader_field.type, writer_field.type)
        if sub.compatibility is SchemaCompatibilityType.compatible:
            continue
        nested = _same_shape_records(reader_field.type, writer_field.type)
        inner = _field_reasons(*nested, path + ".", reader_label) if nested else []
        reasons.extend(inner or [f"field '{path}': {_describe(sub)}"])
    return reasons


def _same_shape_records(
    reader: avro.schema.Schema, writer: avro.schema.Schema
) -> tuple[avro.schema.RecordSchema, avro.schema.RecordSchema] | None:
    """The nested (reader, writer) records when only their fields can differ: both records, arrays
    of records, or unions with the same branches holding one record each."""
    if isinstance(reader, avro.schema.ArraySchema) and isinstance(writer, avro.schema.ArraySchema):
        reader, writer = reader.items, writer.items
    if isinstance(reader, avro.schema.UnionSchema) and isinstance(writer, avro.schema.UnionSchema):
        shape = [(b.type, getattr(b, "fullname", None)) for b in reader.schemas]
        if shape != [(b.type, getattr(b, "fullname", None)) for b in writer.schemas]:
            return None
        records = [(r, w) for r, w in zip(reader.schemas, writer.schemas, strict=True) if r.type == "record"]
        if len(records) != 1:
            return None
        reader, writer = records[0]
    if (
        isinstance(reader, avro.schema.RecordSchema)
        and isinstance(writer, avro.schema.RecordSchema)
        and reader.fullname == writer.fullname
    ):
        return reader, writer
    return None


def _describe(result: SchemaCompatibilityResult) -> str:
    kinds = ", ".join(sorted({k.value for k in result.incompatibilities}))
    messages = "; ".join(sorted(result.messages))
    locations = ", ".join(sorted(loc for loc in result.locations if loc != "/"))
    return f"{kinds}: {messages}" + (f" (at {locations})" if locations else "")


def _logical_type_changes(
    cur: avro.schema.Schema, old: avro.schema.Schema, path: str, _seen: set[tuple[int, int]] | None = None
) -> Iterator[tuple[str, str | None, str | None]]:
    """(field path, old logicalType, new logicalType) for fields whose logical type changed."""
    seen = set() if _seen is None else _seen
    if (id(cur), id(old)) in seen:
        return
    seen.add((id(cur), id(old)))
    if isinstance(cur, avro.schema.UnionSchema) or isinstance(old, avro.schema.UnionSchema):
        cur_branches = cur.schemas if isinstance(cur, avro.schema.UnionSchema) else [cur]
        old_branches = old.schemas if isinstance(old, avro.schema.UnionSchema) else [old]
        for c in cur_branches:
            for o in old_branches:
                if c.type == o.type and getattr(c, "name", None) == getattr(o, "name", None):
                    yield from _logical_type_changes(c, o, path, seen)
                    break
        return
    if cur.type != old.type:
        return  # a type change: the compatibility checker judges it
    if isinstance(cur, avro.schema.RecordSchema):
        for cur_field in cur.fields:
            old_field = lookup_writer_field(writer_schema=old, reader_field=cur_field)
            if old_field is not None:
                sub = f"{path}.{cur_field.name}" if path else cur_field.name
                yield from _logical_type_changes(cur_field.type, old_field.type, sub, seen)
    elif isinstance(cur, avro.schema.ArraySchema):
        yield from _logical_type_changes(cur.items, old.items, f"{path}[]", seen)
    elif isinstance(cur, avro.schema.MapSchema):
        yield from _logical_type_changes(cur.values, old.values, f"{path}{{}}", seen)
    else:
        was, now = old.props.get("logicalType"), cur.props.get("logicalType")
        if was != now:
            yield path, was, now


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    schema_dir = Path(args[0]) if args else SCHEMA_DIR
    rep = report(schema_dir)
    for note in rep.notes:
        print(f"note: {note}")
    if rep.problems:
        for problem in rep.problems:
            print(f"INCOMPATIBLE: {problem}")
        print(f"{len(rep.problems)} schema compatibility problem(s) in {schema_dir}")
        return 1
    print(f"OK: {rep.checked} released schema(s) are backward and forward compatible with the current ones")
    return 0


if __name__ == "__main__":
    sys.exit(main())
