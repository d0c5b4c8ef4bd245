"""A decoder for flat records (primitives, nullable primitives, timestamps): the GPS ping.

Every ping the tracking worker reads is decoded once; fastavro's reader plus building the frozen
dataclass cost about 17 us a ping here, this about 6 (the worker's budget is 50 us a ping). It is
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

def _varint_code(depth: int = 1) -> str:
    """Statements reading a zigzag varint into ``n``: unrolled, one nested branch per byte (the
    loop cost more than the arithmetic on the 6-byte varints of timestamps)."""
    pad = "    " * depth
    lines = [f"{pad}n = b[i]; i += 1", f"{pad}if n >= 0x80:", f"{pad}    n &= 0x7F"]
    for k, shift in enumerate(range(7, 64, 7)):
        inner = pad + "    " * (k + 1)
        lines += [f"{inner}x = b[i]; i += 1", f"{inner}n |= (x & 0x7F) << {shift}", f"{inner}if x >= 0x80:"]
    lines.append(pad + "    " * 10 + 'raise ValueError("varint longer than 10 bytes")')
    lines.append(f"{pad}n = (n >> 1) ^ -(n & 1)")
    return "\n".join(lines) + "\n"


_VARINT = _varint_code()
_CODE = {  # statements reading one value into `v` from b[i:], advancing i (generated inline: no call per field)
    "long": _VARINT + "    v = n\n",
    "int": _VARINT + "    v = n\n",
    # fromtimestamp costs a third less than the timedelta sum and is exact while the double n / 1000
    # errs by under half a microsecond (1970 to 2106); outside that span the exact sum
    "timestamp-millis": _VARINT + "    v = FROMTS(n / 1000, UTC) if 0 <= n < 4294967296000 else EPOCH + timedelta(0, 0, 0, n)\n",
    "string": _VARINT + "    if n < 0 or i + n > end: raise ValueError('string overruns the record')\n"
                        "    v = b[i:i + n].decode(); i += n\n",
    "double": "    v = DOUBLE(b, i)[0]; i += 8\n",
    "float": "    v = FLOAT(b, i)[0]; i += 4\n",
    "boolean": "    v = b[i]; i += 1\n    if v > 1: raise ValueError('boolean byte')\n    v = v == 1\n",
}


def _kind(t: Any) -> tuple[str, bool | None] | None:
    """(value kind, None | null-first | null-second) of a field type the reader handles."""
    if isinstance(t, str):
        return (t, None) if t in _CODE and t != "timestamp-millis" else None
    if isinstance(t, dict):
        if t.get("type") == "long" and t.get("logicalType") == "timestamp-millis":
            return "timestamp-millis", None
        return _kind(t["type"]) if set(t) == {"type"} else None
    if isinstance(t, list) and len(t) == 2 and "null" in t and t[0] != t[1]:
        inner = _kind(t[1] if t[0] == "null" else t[0])
        return None if inner is None or inner[1] is not None else (inner[0], t[0] == "null")
    return None


def flat_reader(source: dict[str, Any], cls: type) -> Callable[[bytes, int], Any] | None:
    """A reader of ``cls`` records written with schema ``source`` from ``data[start:]`` (which must
    end with the record), or None when the schema is not flat or its fields are not ``cls``'s.

    The reader is generated Python (one function, every field inline): a call per field cost as
    much as the decoding itself."""
    names = [f["name"] for f in source.get("fields", ())]
    if sorted(names) != sorted(f.name for f in fields(cls)):
        return None
    kinds = [_kind(f["type"]) for f in source["fields"]]
    if any(k is None for k in kinds):
        return None
    lines = ["def read(b, i):", "    end = len(b)", "    o = new(cls)"]
    env: dict[str, Any] = {"new": object.__new__, "cls": cls, "EPOCH": _EPOCH, "timedelta": timedelta,
                           "FROMTS": datetime.fromtimestamp, "UTC": UTC,
                           "DOUBLE": _DOUBLE, "FLOAT": _FLOAT}
    for k, (name, kind) in enumerate(zip(names, kinds, strict=True)):
        assert kind is not None
        value, nullable = kind
        # the slot of a frozen dataclass, set directly (its __init__ goes through object.__setattr__)
        env[f"set{k}"] = next(c.__dict__[name] for c in cls.__mro__ if name in c.__dict__).__set__
        body = _CODE[value]
        if nullable is not None:
            null_tag, value_tag = (0, 2) if nullable else (2, 0)
            body = (f"    tag = b[i]; i += 1\n    if tag == {null_tag}:\n        v = None\n"
                    f"    elif tag == {value_tag}:\n" + "".join("    " + ln + "\n" for ln in body.splitlines())
                    + "    else:\n        raise ValueError(f'union branch byte {tag}')\n")
        lines.append(body.rstrip("\n"))
        lines.append(f"    set{k}(o, v)")
    lines += ["    if i != end:", "        raise ValueError(f'{end - i} bytes after the record')", "    return o"]
    exec("\n".join(lines), env)  # noqa: S102 - source built above from the schema's field kinds only
    read: Callable[[bytes, int], Any] = env["read"]
    return read


__all__ = ["flat_reader"]
