"""Deterministic ids for derived events.

An event derived from another gets ``uuid5(source event id, purpose)``: reprocessing the same
input after a crash derives the same id, so consumers that deduplicate on ``event_id`` never
count it twice.
"""

from __future__ import annotations

import hashlib
import uuid

NAMESPACE = uuid.UUID("6f1d8a52-3c1e-4f7e-9a55-0d7f5b2a9c11")


_NAMESPACE_BYTES = NAMESPACE.bytes


def derived_id(source: str, purpose: str) -> str:
    """``str(uuid.uuid5(NAMESPACE, f"{source}/{purpose}"))``, spelled out: the tracker derives one
    per event it emits and the uuid module's objects cost twice as much."""
    b = bytearray(hashlib.sha1(_NAMESPACE_BYTES + f"{source}/{purpose}".encode()).digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x50  # version 5
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
