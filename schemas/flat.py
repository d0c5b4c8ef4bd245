"""A decoder for flat records (primitives, nullable primitives, timestamps): the GPS ping.

Every ping the tracking worker reads is decoded once; fastavro's reader plus building the frozen
dataclass cost about 17 us a ping here, this about 9 (the worker's budget is 50 us a ping). It is
built from the ``.avsc`` itself and only for records it can decode completely; anything else
(nested records, arrays, enums, other unions, older writer schemas) stays with fastavro, and the
codec's tests check both give the same events.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DOUBLE = struct.Struct("<d").unpack_from
_FLOAT = struct.Struct("<f").unpack_from

Read = Callable[[bytes, int], tuple[Any, int]]


def _long(b: bytes, i: int) -> tuple[int, int]:
    """Zig-zag varint (Avro int and long)."""
    n = b[i]
    i += 1
    if n < 0x80:
        return (n >> 1) ^ -(n & 1), i
    n &= 0x7F
    shift = 7
    while True:
        x = b[i]
        i += 1
        n |= (x & 0x7F) << shift
        if x < 0x80:
            return (n >> 1) ^ -(n & 1), i
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def _string(b: bytes, i: int) -> tuple[str, int]:
    n, i = _long(b, i)
    if n < 0 or i + n > len(b):
        raise ValueError(f"string of {n} bytes overruns the record")
    return b[i:i + n].decode(), i + n


def _double(b: bytes, i: int) -> tuple[float, int]:
    return _DOUBLE(b, i)[0], i + 8


def _float(b: bytes, i: int) -> tuple[float, int]:
    return _FLOAT(b, i)[0], i + 4


def _boolean(b: bytes, i: int) -> tuple[bool, int]:
    v = b[i]
    if v > 1:
        raise ValueError(f"boolean byte {v}")
    return v == 1, i + 1


def _timestamp_ms(b: bytes, i: int) -> tuple[datetime, int]:
    n, i = _long(b, i)
    return _EPOCH + timedelta(0, 0, 0, n), i  # positional milliseconds: exact, and 40% cheaper than by keyword


_PRIMITIVES: dict[str, Read] = {"string": _string, "long": _long, "int": _long, "double": _double, "float": _float,
                                "boolean": _boolean}


def _nullable(read: Read, null_first: bool) -> Read:
    """["null", X] (branch 0 is null, zig-zag 0x00; branch 1 is 0x02) or [X, "null"]."""
    null_tag, value_tag = (0, 2) if null_first else (2, 0)

    def read_nullable(b: bytes, i: int) -> tuple[Any, int]:
        tag = b[i]
        if tag == null_tag:
            return None, i + 1
        if tag == value_tag:
            return read(b, i + 1)
        raise ValueError(f"union branch byte {tag}")

    return read_nullable


def _field_reader(t: Any) -> Read | None:
    if isinstance(t, str):
        return _PRIMITIVES.get(t)
    if isinstance(t, dict):
        if t.get("type") == "long" and t.get("logicalType") == "timestamp-millis":
            return _timestamp_ms
        if set(t) == {"type"}:
            return _field_reader(t["type"])
        return None
    if isinstance(t, list) and len(t) == 2 and "null" in t:
        other = t[1] if t[0] == "null" else t[0]
        read = _field_reader(other)
        return None if read is None or other == "null" else _nullable(read, t[0] == "null")
    return None


def flat_reader(source: dict[str, Any], cls: type) -> Callable[[bytes, int], Any] | None:
    """A reader of ``cls`` records written with schema ``source`` from ``data[start:]`` (which must
    end with the record), or None when the schema is not flat or its fields are not ``cls``'s."""
    names = [f["name"] for f in source.get("fields", ())]
    if sorted(names) != sorted(f.name for f in fields(cls)):
        return None
    readers = [_field_reader(f["type"]) for f in source["fields"]]
    if any(r is None for r in readers):
        return None
    # the slots of a frozen dataclass, set directly (its __init__ would go through object.__setattr__)
    setters = [next(k.__dict__[n] for k in cls.__mro__ if n in k.__dict__).__set__ for n in names]
    steps = tuple(zip(setters, readers, strict=True))
    new = object.__new__

    def read(data: bytes, start: int) -> Any:
        obj = new(cls)
        i = start
        for set_, read_ in steps:
            value, i = read_(data, i)
            set_(obj, value)
        if i != len(data):
            raise ValueError(f"{len(data) - i} bytes after the record")
        return obj

    return read


__all__ = ["flat_reader"]
