"""State records without pickle (``streams.state``): every table value and tracker checkpoint
round-trips through its Avro schema, the committed schemas are what the classes give, a record of
a released older version is read, and every hostile record is refused, never executed."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import pickle
import shutil
from pathlib import Path
from typing import Any

import fastavro
import pytest
import test_notify as notices
import test_order_lifecycle as orders
import test_replan_hub as hubs
from faust.serializers import codecs as faust_codecs
from test_live_tracker import _feed

from schemas import Codec
from schemas.codec import SINGLE_OBJECT_MAGIC, schema_fingerprint
from simulator.truth import truth_day
from streams import state
from streams.domain.tracking.tracker import STATE_FORMAT, RiderLive, Tracker
from streams.workers.tracking import _fleet_snapshot, _rider_plans

EVENTS = Codec()


def _wire(event: Any) -> Any:
    """An event as a worker holds it: read from Kafka (timestamps to the millisecond)."""
    return EVENTS.decode(EVENTS.encode(event))


@pytest.fixture(scope="module")
def tracker() -> Tracker:
    """Two simulated riders halfway through their routes (plans as read from the wire)."""
    day = truth_day(5, riders=2, stops_per_rider=4, noise_m=10.0)
    day = dataclasses.replace(day, riders=tuple(dataclasses.replace(r, route=_wire(r.route)) for r in day.riders))
    t = Tracker()
    _feed(t, day, slice(0, len(day.pings) // 2))
    return t


def _order_state() -> Any:
    """Out for delivery (OTP salt, hash and expiry held) after one wrong OTP."""
    state_, notice = orders.sent_out()
    state_, _ = orders.accept(state_, orders.pod("e-pod-wrong", orders.wrong_hash(notice)))
    return state_


def _hub() -> Any:
    """Two riders on dispatch's routes, one failed delivery being re-planned (a solve in flight)."""
    hub = hubs.fold(hubs.dispatched(), hubs.status("o1", hubs.S.FAILED, "a", 700, reason="address not found"))
    started, requests = hubs.hb.start_replans(hub, hubs.ts(701))
    assert requests and started.solving
    return started


def _notice_state() -> Any:
    state_, told = notices.nt.on_tick(notices.out_with_eta(40), notices.S0 + 30 * 60)
    assert told
    return state_


def _values(tracker: Tracker) -> list[tuple[str, Any]]:
    riders = list(tracker.riders.values())
    return [
        ("order-state", _order_state()),
        ("rider-hub", "hub-1"),
        ("hub-pool", _hub()),
        ("notice-state", _notice_state()),
        *[("tracker-rider", r.snapshot()) for r in riders],
        ("tracker-plans", (None, riders[0].route)),
        ("tracker-plans", (riders[1].route, riders[0].route)),
        ("tracker-plans", (None, None)),
        ("tracker-fleet", state.FleetCheckpoint(tracker.now_s, tracker.fleet, STATE_FORMAT)),
        ("tracker-marker", bytes(range(16))),
    ]


def test_the_committed_schemas_are_what_the_state_classes_give() -> None:
    problems = state.differences()
    assert problems == [], f"{problems}: the state classes changed shape; regenerate with `{state.REGENERATE}`"


def test_every_released_schema_is_read_by_the_current_schema_of_its_kind(tmp_path: Path) -> None:
    assert state.unreadable() == []
    shutil.copytree(state.STATE_DIR, tmp_path, dirs_exist_ok=True)
    current = json.loads((tmp_path / "NoticeState.avsc").read_text())
    (tmp_path / "released").mkdir(exist_ok=True)
    (tmp_path / "released" / "NoticeState.x.avsc").write_text(json.dumps(_older(current, {"order_id"})))
    assert state.unreadable(tmp_path) == [
        "released/NoticeState.x.avsc: NoticeState.avsc cannot read it: order_id"]


def test_every_kind_round_trips_to_an_equal_value(tracker: Tracker) -> None:
    for kind, value in _values(tracker):
        data = state.encode(kind, value)
        assert state.decode(kind, data) == value, kind
        assert state.encode(kind, state.decode(kind, data)) == data, kind  # sets are written sorted


def test_the_realistic_states_exercise_what_the_mapping_handles(tracker: Tracker) -> None:
    """Optional, recursive (the resend memory), enum, datetime, set, map, event and nested
    request fields are all populated, so the round trips above cover them."""
    r = next(iter(tracker.riders.values()))
    assert r.device.earlier is not None and r.device.earlier[5] is not None  # a chain of Seen
    assert r.eta is not None and r.eta.emitted and r.eta.scored_keys and r.alert.raised is not None
    hub = _hub()
    assert hub.solving[0].situation.problem.jobs and hub.routes.plans and hub.pool.taken
    order = _order_state()
    assert order.otp_hash and order.otp_expires_at and len(order.seen) > 2


def test_a_restored_rider_is_the_rider_that_was_written(tracker: Tracker) -> None:
    for r in tracker.riders.values():
        snap = state.decode("tracker-rider", state.encode("tracker-rider", r.snapshot()))
        plans = state.decode("tracker-plans", state.encode("tracker-plans", (None, r.route)))
        back = RiderLive.restore(snap, plans)
        assert back.__getstate__() == r.__getstate__() and back.eta == r.eta and back.alert == r.alert


def test_a_bitmask_wider_than_64_bits_round_trips(tracker: Tracker) -> None:
    r = next(iter(tracker.riders.values()))
    snap = r.snapshot()
    wide = {**snap, "fences": snap["fences"]._replace(arrived=(1 << 130) | 5)}
    assert state.decode("tracker-rider", state.encode("tracker-rider", wide))["fences"].arrived == (1 << 130) | 5


def test_a_record_is_single_object_encoded_with_its_committed_schema() -> None:
    data = state.encode("notice-state", _notice_state())
    committed = json.loads((state.STATE_DIR / "NoticeState.avsc").read_text())
    assert data[:2] == SINGLE_OBJECT_MAGIC
    assert data[2:10] == schema_fingerprint(fastavro.parse_schema(committed, _write_hint=False))
    body = fastavro.schemaless_reader(io.BytesIO(data[10:]), fastavro.parse_schema(committed))
    assert body["order_id"] == notices.ORDER  # any Avro reader decodes it with the .avsc alone


# ---- older versions ----------------------------------------------------------------------------


def _older(schema: dict[str, Any], drop: set[str]) -> dict[str, Any]:
    return {**schema, "fields": [f for f in schema["fields"] if f["name"] not in drop]}


def _record(schema: dict[str, Any], datum: dict[str, Any]) -> bytes:
    parsed = fastavro.parse_schema(schema)
    buf = io.BytesIO()
    buf.write(SINGLE_OBJECT_MAGIC + schema_fingerprint(fastavro.parse_schema(schema, _write_hint=False)))
    fastavro.schemaless_writer(buf, parsed, datum)
    return buf.getvalue()


OLD_NOTICE = {"order_id": "ord-9", "tracking_id": "t-9", "promised_end_s": 1.0e9, "route_id": ("string", "route-1"),
              "rider_id": None, "attempt": 1, "phase": "out", "sent": ["out_for_delivery"], "delayed_for_s": None}


def test_regenerating_keeps_the_replaced_schema_and_its_records_are_read_into_the_current_classes(
        tmp_path: Path) -> None:
    """A version before ``eta`` and ``next_stop`` existed: its records read with their defaults."""
    shutil.copytree(state.STATE_DIR, tmp_path, dirs_exist_ok=True)
    current = json.loads((tmp_path / "NoticeState.avsc").read_text())
    old = _older(current, {"eta", "next_stop"})
    (tmp_path / "NoticeState.avsc").write_text(json.dumps(old))
    data = _record(old, OLD_NOTICE)
    with pytest.raises(state.StateError, match="notice-state: unknown schema fingerprint"):
        state.StateCodec(tmp_path).decode("notice-state", data)  # not kept yet: refused

    done = state.write(tmp_path)
    assert f"kept NoticeState.avsc as released/NoticeState.{data[2:10].hex()}.avsc" in done
    assert "wrote NoticeState.avsc" in done
    assert state.differences(tmp_path) == []
    value = state.StateCodec(tmp_path).decode("notice-state", data)
    assert value == notices.nt.NoticeState(order_id="ord-9", tracking_id="t-9", promised_end_s=1.0e9,
                                           route_id="route-1", attempt=1, phase=notices.nt.Phase.OUT,
                                           sent=frozenset({notices.nt.NoticeKind.OUT_FOR_DELIVERY}))


def test_a_released_version_the_current_classes_cannot_read_is_refused_with_the_reason(tmp_path: Path) -> None:
    """Written before ``order_id`` existed (it has no default): refused, not guessed."""
    shutil.copytree(state.STATE_DIR, tmp_path, dirs_exist_ok=True)
    old = _older(json.loads((tmp_path / "NoticeState.avsc").read_text()), {"order_id"})
    (tmp_path / "released").mkdir(exist_ok=True)
    (tmp_path / "released" / "NoticeState.old.avsc").write_text(json.dumps(old))
    data = _record(old, {k: v for k, v in OLD_NOTICE.items() if k != "order_id"})
    with pytest.raises(state.StateError, match=r"notice-state: body does not decode: .*order_id"):
        state.StateCodec(tmp_path).decode("notice-state", data)


# ---- hostile records ---------------------------------------------------------------------------


def _plans_record(*items: Any) -> bytes:
    return _record(json.loads((state.STATE_DIR / "TrackerPlans.avsc").read_text()), {"plans": list(items)})


def _hostile() -> list[tuple[str, bytes | None, str]]:
    good = state.encode("order-state", _order_state())
    other = orders.created()  # an event of another type
    return [
        ("empty", b"", "0 bytes is shorter than its 10-byte header"),
        ("none", None, "0 bytes is shorter"),
        ("header only, short", good[:6], "6 bytes is shorter"),
        ("unknown fingerprint", good[:2] + b"\x01" * 8 + good[10:], "unknown schema fingerprint 0101"),
        ("an event", EVENTS.encode(other), "unknown schema fingerprint"),
        ("truncated", good[:-3], "body does not decode"),
        ("trailing bytes", good + b"\x00", "1 bytes after the Avro body"),
        ("a pickle", pickle.dumps(_order_state()), r"not a state record \(a pickle\)"),
        ("a pickle behind a valid header", good[:10] + pickle.dumps(_order_state()), "order-state: "),
        ("random bytes", bytes(range(7, 250)), "not a state record"),
        ("enum symbol out of range", good[:10] + _bad_enum(good), "body does not decode"),
    ]


def _bad_enum(good: bytes) -> bytes:
    """The order state body with its status enum index replaced by 99 (zig-zag 198)."""
    schema = fastavro.parse_schema(json.loads((state.STATE_DIR / "OrderState.avsc").read_text()))
    record = fastavro.schemaless_reader(io.BytesIO(good[10:]), schema)
    prefix = io.BytesIO()
    fastavro.schemaless_writer(prefix, fastavro.parse_schema(
        {"type": "record", "name": "P", "fields": [{"name": f, "type": "string"}
                                                    for f in ("order_id", "tracking_id", "hub_id")]}), record)
    head = prefix.getvalue()
    assert good[10:10 + len(head)] == head
    return head + b"\xc6\x01" + good[10 + len(head) + 1:]


@pytest.mark.parametrize("case", range(11))
def test_a_hostile_record_is_refused_naming_the_kind_and_why(case: int) -> None:
    what, data, why = _hostile()[case]
    with pytest.raises(state.StateError, match=why) as refused:
        state.decode("order-state", data)
    assert str(refused.value).startswith("order-state: "), what


def test_a_record_of_another_kind_is_refused() -> None:
    data = state.encode("notice-state", _notice_state())
    with pytest.raises(state.StateError, match="order-state: the record is a notice-state record"):
        state.decode("order-state", data)
    with pytest.raises(state.StateError, match="unknown state kind 'orders'"):
        state.decode("orders", data)


def test_an_embedded_event_that_is_not_the_plan_it_claims_is_refused(tracker: Tracker) -> None:
    route = next(iter(tracker.riders.values())).route
    other = orders.created()  # an event of another type
    assert state.decode("tracker-plans", _plans_record(None, ("bytes", EVENTS.encode(route)))) == (None, route)
    with pytest.raises(state.StateError, match="tracker-plans: embedded OrderCreated where a RoutePlanned belongs"):
        state.decode("tracker-plans", _plans_record(None, ("bytes", EVENTS.encode(other))))
    with pytest.raises(state.StateError, match="tracker-plans: embedded RoutePlanned: .*unknown framing"):
        state.decode("tracker-plans", _plans_record(None, ("bytes", pickle.dumps(route))))


def test_values_that_do_not_fit_are_refused_on_encode(tracker: Tracker) -> None:
    naive = dataclasses.replace(_order_state(), otp_expires_at=orders.at(60).replace(tzinfo=None))
    with pytest.raises(state.StateError, match="order-state: naive datetime"):
        state.encode("order-state", naive)
    with pytest.raises(state.StateError, match="notice-state: OrderState does not fit"):
        state.encode("notice-state", _order_state())
    snap = next(iter(tracker.riders.values())).snapshot()
    with pytest.raises(state.StateError, match=r"tracker-rider: .*\['extra'\] differ"):
        state.encode("tracker-rider", {**snap, "extra": 1})
    with_route = {**snap, "eta": dataclasses.replace(snap["eta"], route=object())}
    with pytest.raises(state.StateError, match="route is left out of the record but is not None"):
        state.encode("tracker-rider", with_route)


class _CreatesAFile:
    """Unpickling this runs ``open(path, "w")``: what a hostile changelog record could do."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


def test_a_pickle_that_would_create_a_file_is_refused_everywhere_and_creates_nothing(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    proof = tmp_path / "proof"
    payload = pickle.dumps(_CreatesAFile(proof))
    pickle.loads(payload).close()  # the payload is real: unpickled, it creates its file
    assert proof.exists()
    target = tmp_path / "pwned"
    payload = pickle.dumps(_CreatesAFile(target))
    header = state.encode("order-state", _order_state())[:10]
    for data in (payload, header + payload):
        for kind in state.KINDS:
            with pytest.raises(state.StateError, match=f"^{kind}: "):
                state.decode(kind, data)
        for table in ("order-state", "rider-hub", "hub-pool", "notice-state"):
            codec = faust_codecs.get_codec(state.faust_value_type(table)._options.serializer)
            with caplog.at_level(logging.WARNING, logger="streams.state"):
                assert codec.loads(data) is None  # read as no value: the key's default
        assert _fleet_snapshot(data) is None
        assert _rider_plans("rider-1", data) == (None, None)
    assert not target.exists()
    assert "table record refused, read as no value" in caplog.text


def test_faust_tables_get_a_serializer_that_round_trips_their_values() -> None:
    value_type = state.faust_value_type("order-state")
    codec = faust_codecs.get_codec(value_type._options.serializer)
    value = _order_state()
    data = codec.dumps(value)
    assert data == state.encode("order-state", value) and codec.loads(data) == value
    assert value_type.from_data(value) is value  # what Faust hands the value type after loads
    assert faust_codecs.get_codec(state.faust_value_type("rider-hub")._options.serializer).dumps(None) is None


def test_plans_under_another_riders_key_are_refused(tracker: Tracker) -> None:
    r = next(iter(tracker.riders.values()))
    data = state.encode("tracker-plans", (None, r.route))
    assert _rider_plans(r.rider_id, data) == (None, r.route)
    assert _rider_plans("someone-else", data) == (None, None)


def test_reused_fields_write_the_same_bytes_as_the_whole_record(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rider's ETA and alert state are written again while unchanged; the record is byte for
    byte the one written whole, checkpoint after checkpoint of a simulated day."""
    day = truth_day(7, riders=2, stops_per_rider=6, noise_m=10.0)
    day = dataclasses.replace(day, riders=tuple(dataclasses.replace(r, route=_wire(r.route)) for r in day.riders))
    reusing = state.StateCodec()
    monkeypatch.setitem(state.KINDS, "tracker-rider", dataclasses.replace(state.KINDS["tracker-rider"], reuse=()))
    whole = state.StateCodec()
    t = Tracker()
    _feed(t, day, slice(0, 0))
    kept = 0
    for offset, obs in enumerate(day.pings):
        t.on_ping(obs.ping, "gps", offset, obs.received_s)
        r = t.riders[obs.ping.rider_id]
        snap = r.snapshot()
        before = dict(reusing._kept)
        data = reusing.encode("tracker-rider", snap)
        assert data == whole.encode("tracker-rider", snap)
        kept += before.get(("tracker-rider", r.rider_id, "eta"), (None,))[0] == snap["eta"]
    assert state.decode("tracker-rider", data) == snap
    assert kept > len(day.pings) / 2  # most checkpoints reuse the ETA state's bytes
