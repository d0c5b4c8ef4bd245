"""Deterministic ids for derived events.

An event derived from another gets ``uuid5(source event id, purpose)``: reprocessing the same
input after a crash derives the same id, so consumers that deduplicate on ``event_id`` never
count it twice.
"""

from __future__ import annotations

import uuid

NAMESPACE = uuid.UUID("6f1d8a52-3c1e-4f7e-9a55-0d7f5b2a9c11")


def derived_id(source: str, purpose: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{source}/{purpose}"))
