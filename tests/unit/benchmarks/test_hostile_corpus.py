"""The hostile corpus says what it holds: every case on every topic it applies to, deterministic per
seed, and each message's expected outcome agrees with what the contract's decoder makes of it."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from benchmarks.hostile_corpus import (
    BROKER_MAX_MESSAGE,
    INPUTS,
    MIB,
    RESERVED_IDS,
    Hubs,
    Message,
    Outcome,
    cases,
    corpus,
)
from schemas import Codec, InvalidEvent, MalformedMessage, UnknownSchema
from schemas import events as ev
from schemas import topics as tp

NOW = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)
HUBS = Hubs(dispatch="hub-h", orders_prefix="hub-e-", riders="hub-d")
STOPS = (1_200, 2_500)  # small huge routes: the unit test needs the shape, not the size
CODEC = Codec()
SPECS = {s.name: s for s in tp.ALL}


@pytest.fixture(scope="module")
def small() -> list[Message]:
    return corpus(0, seed=3, now=NOW, tag="t", hubs=HUBS, codec=CODEC, route_stops=STOPS)


def _decoded(m: Message) -> ev.Event:
    return CODEC.decode(m.value)


def test_the_small_corpus_has_every_case_on_every_topic_it_names(small: list[Message]) -> None:
    have = {(m.case, m.topic) for m in small}
    want = {(c.name, t) for c in cases(STOPS) for t in c.topics}
    assert have == want
    assert {m.topic for m in small} == set(INPUTS)
    assert 200 <= len(small) <= 600  # a few hundred: one of every variant


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    def build(seed: int) -> list[tuple[bytes | None, bytes | None]]:
        return [(m.key, m.value) for m in corpus(400, seed=seed, now=NOW, tag="t", hubs=HUBS, codec=CODEC,
                                                 route_stops=STOPS)]
    one = build(5)
    assert one == build(5)
    assert one != build(6)


def test_a_large_corpus_reaches_its_size_and_caps_the_heavy_messages() -> None:
    big = corpus(3_000, seed=1, now=NOW, tag="t", hubs=HUBS, codec=CODEC, route_stops=STOPS, heavy_cap=20)
    assert 3_000 <= len(big) < 3_010
    heavy = [m for m in big if m.case in ("oversized", "huge_route")]
    assert len(heavy) <= 20
    assert Counter(m.outcome for m in big)[Outcome.DEAD_LETTER] > 0.9 * len(big)


def test_framing_cases_are_what_the_decoder_says(small: list[Message]) -> None:
    """Malformed and unknown-schema messages fail to decode with exactly that error."""
    expected = {ev.DeadLetterKind.MALFORMED: MalformedMessage, ev.DeadLetterKind.UNKNOWN_SCHEMA: UnknownSchema}
    checked = 0
    for m in small:
        if m.kind in expected:
            with pytest.raises(expected[m.kind]):
                _decoded(m)
            checked += 1
    assert checked > 100


def test_invalid_and_illegal_messages_decode_or_break_a_contract_rule(small: list[Message]) -> None:
    """Nothing expected as invalid or illegal is refused for its framing: the edge must see the event
    (its key, time, size, ids) to refuse it for the right reason."""
    for m in small:
        if m.kind in (ev.DeadLetterKind.INVALID, ev.DeadLetterKind.ILLEGAL_TRANSITION):
            try:
                _decoded(m)
            except InvalidEvent:
                assert m.kind is ev.DeadLetterKind.INVALID
            except (MalformedMessage, UnknownSchema) as exc:
                pytest.fail(f"{m.case}/{m.topic}/{m.variant} does not decode: {exc}")


def test_accepted_messages_and_duplicates_are_valid_events_of_their_topic(small: list[Message]) -> None:
    """What the system must take (support, first copies, follow-ups) passes the contract and the key check."""
    support = [m for m in small if m.outcome is not Outcome.DEAD_LETTER]
    assert {m.case for m in support} == {"illegal_transition", "duplicate", "empty_id"}
    for m in support:
        event = _decoded(m)
        assert isinstance(event, SPECS[m.topic].events)
        assert m.key == event.key.encode()
        assert m.event_id == event.event_id


def test_duplicates_come_in_pairs_with_the_same_bytes(small: list[Message]) -> None:
    dups = [m for m in small if m.case == "duplicate"]
    assert len(dups) == 2 * len(INPUTS)
    for first, second in zip(dups[::2], dups[1::2], strict=True):
        assert (first.outcome, second.outcome) == (Outcome.ACCEPTED, Outcome.DUPLICATE)
        assert (first.key, first.value) == (second.key, second.value)


def test_a_route_with_an_empty_stop_id_is_followed_by_a_ping_of_its_rider(small: list[Message]) -> None:
    """The ping is what would make the tracker estimate an ETA for the stop with no order."""
    i = next(i for i, m in enumerate(small) if (m.case, m.variant) == ("empty_id", "stop_order_id"))
    follow = small[i + 1]
    assert (follow.topic, follow.outcome, follow.key) == ("gps", Outcome.ACCEPTED, small[i].key)


def test_support_messages_come_before_the_illegal_one_on_the_same_key(small: list[Message]) -> None:
    for i, m in enumerate(small):
        if m.case == "illegal_transition" and m.outcome is Outcome.ACCEPTED:
            after = next(x for x in small[i + 1:] if x.case == "illegal_transition" and x.key == m.key
                         and x.outcome is Outcome.DEAD_LETTER)
            assert after.kind is ev.DeadLetterKind.ILLEGAL_TRANSITION


def test_the_transition_cases_break_the_lifecycle_not_the_contract(small: list[Message]) -> None:
    names = {m.variant for m in small if m.case == "illegal_transition" and m.outcome is Outcome.DEAD_LETTER}
    assert {"delivered_before_created", "created_then_arrived", "ended_never_started", "ended_twice"} <= names


def test_oversized_messages_straddle_the_broker_limit(small: list[Message]) -> None:
    sizes = {(m.topic, m.variant): m.size for m in small if m.case == "oversized"}
    for topic in INPUTS:
        assert BROKER_MAX_MESSAGE - 8192 < sizes[(topic, "just_under_limit")] < BROKER_MAX_MESSAGE
        assert sizes[(topic, "1MiB")] > MIB
        assert sizes[(topic, "64KiB")] > 64 * 1024


def test_huge_routes_have_the_stops_asked_for(small: list[Message]) -> None:
    routes = [_decoded(m) for m in small if m.case == "huge_route"]
    assert sorted(len(r.stops) for r in routes) == list(STOPS)  # type: ignore[attr-defined]


def test_the_full_size_huge_route_fits_under_the_broker_limit() -> None:
    big = corpus(0, seed=1, now=NOW, tag="t", hubs=HUBS, codec=CODEC, route_stops=(28_000,))
    (route,) = [m for m in big if m.case == "huge_route"]
    assert route.size < BROKER_MAX_MESSAGE


def test_keys_ids_and_times_are_what_the_case_names(small: list[Message]) -> None:
    by = {(m.case, m.topic, m.variant): m for m in small}
    for topic in INPUTS:
        assert by[("bad_key", topic, "null")].key is None
        assert by[("bad_key", topic, "empty")].key == b""
        for ident in RESERVED_IDS:
            m = by[("reserved_id", topic, repr(ident))]
            assert _decoded(m).key == ident and m.key == ident.encode()
        assert _decoded(by[("far_future", topic, "9999")]).occurred_at.year == 9999
        assert _decoded(by[("far_past", topic, "1971")]).occurred_at.year == 1971
        assert not _decoded(by[("control_chars_in_id", topic, repr("nul\x00byte"))]).key.isprintable()


def test_hostile_orders_and_shifts_name_the_dispatched_hub(small: list[Message]) -> None:
    """A poisoned hub shows on the hub the valid traffic is dispatched on."""
    for m in small:
        if m.case in ("far_future", "far_past") and m.topic in ("inbox", "riders"):
            assert _decoded(m).hub_id == HUBS.dispatch  # type: ignore[attr-defined]
