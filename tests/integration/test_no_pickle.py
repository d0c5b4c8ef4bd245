"""No pickle in any topic: a short demo day on the broker, then every record of every topic it wrote
(our topics, Faust's table changelogs, the tracker's state topic) decodes with the event schemas
or the state schemas of the repository, none is a pickle, and no state record passes 100 KB."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from harness import every_record

from infra.kafka import EmbeddedBroker
from schemas import Codec, DecodeError, InvalidEvent
from streams import state

ROOT = Path(__file__).resolve().parents[2]
RUN = uuid.uuid4().hex[:8]
MAX_STATE_BYTES = 100_000
PICKLE_PROTOCOL_2_UP = b"\x80"  # the first byte of every pickle of protocol 2 and later


@dataclass
class Scan:
    topics: set[str] = field(default_factory=set)
    events: Counter[str] = field(default_factory=Counter)  # event type -> records
    states: Counter[str] = field(default_factory=Counter)  # state kind -> records
    tombstones: int = 0
    largest_state: tuple[int, str] = (0, "")
    pickles: list[str] = field(default_factory=list)
    undecodable: list[str] = field(default_factory=list)


def scan(bootstrap: str, prefix: str, idle_s: float = 3.0) -> Scan:
    """Every record of every topic whose name starts with ``prefix``, decoded."""
    events = Codec()
    codec = state.StateCodec()
    state_kinds = codec.fingerprints()
    out = Scan()
    for m in every_record(bootstrap, (prefix,), idle_s):
        out.topics.add(m.topic())  # topics with records: the changelogs and the state topic must be among them
        where = f"{m.topic()}/{m.partition()}/{m.offset()} key {m.key()!r}"
        value = m.value()
        if value is None:
            out.tombstones += 1
            continue
        if value[:1] == PICKLE_PROTOCOL_2_UP:
            out.pickles.append(where)
        kind = state_kinds.get(bytes(value[2:10])) if value[:2] == b"\xc3\x01" else None
        try:
            if kind is not None:
                codec.decode(kind, value)
                out.states[kind] += 1
                out.largest_state = max(out.largest_state, (len(value), f"{kind} at {where}"))
            else:
                out.events[type(events.decode(value)).__name__] += 1
        except (state.StateError, DecodeError, InvalidEvent) as exc:
            out.undecodable.append(f"{where}: {exc}")
    return out


def test_a_demo_day_leaves_no_pickle_on_any_topic(broker: EmbeddedBroker, tmp_path: Path) -> None:
    tag = f"nopickle{RUN}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILESTREAM_")}
    env.update({"MILESTREAM_KAFKA_BOOTSTRAP": broker.bootstrap, "MILESTREAM_TOPIC_PREFIX": f"{tag}.",
                "MILESTREAM_APP_ID": tag, "MILESTREAM_OTP_KEY": os.urandom(32).hex(),
                "MILESTREAM_DISPATCH_BATCH_WINDOW_S": "0.5", "MILESTREAM_DISPATCH_TIME_LIMIT_S": "1"})
    demo = subprocess.run([sys.executable, "-m", "infra.cli", "demo", "--orders", "12", "--riders", "2", "--speedup",
                           "1200", "--timeout", "150", "--data-dir", str(tmp_path / "demo"), "--json"],
                          cwd=ROOT, env=env, capture_output=True, timeout=420)
    # Whether the day settled every order is the demo's own test; here it only has to have run.
    found = scan(broker.bootstrap, tag)
    output = (demo.stdout + demo.stderr).decode()[-3000:]
    assert found.states and found.events, output
    assert found.pickles == []
    assert found.undecodable == []
    # the day went through every table and the tracker's checkpoints, so each kind was scanned
    assert set(found.states) >= {"order-state", "rider-hub", "hub-pool", "notice-state", "tracker-rider",
                                 "tracker-plans", "tracker-fleet", "tracker-marker"}, found.states
    assert any(t.endswith("-changelog") for t in found.topics) and any(t.endswith("-tracking-state")
                                                                       for t in found.topics), found.topics
    assert found.events["RoutePlanned"] >= 1 and found.events["GpsPing"] > 0, found.events
    assert found.largest_state[0] <= MAX_STATE_BYTES, found.largest_state
