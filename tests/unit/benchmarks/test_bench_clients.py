"""The pure parts of ``milestream bench clients``: its backlog and its figures."""

from __future__ import annotations

import pytest

from benchmarks.clients import backlog, median_ratio
from schemas import Codec
from schemas import events as ev


def test_backlog_is_the_same_bytes_for_the_same_seed_and_differs_for_another() -> None:
    first, again, other = backlog(300, seed=4), backlog(300, seed=4), backlog(300, seed=5)
    assert first == again
    assert first != other


def test_backlog_holds_exactly_the_pings_asked_for_keyed_by_their_rider() -> None:
    messages = backlog(900, seed=2, stops=1)  # 3 riders with one stop send 870: riders are added
    assert len(messages) == 900
    codec = Codec()
    pings = [codec.decode(value) for _, value in messages]
    assert all(isinstance(p, ev.GpsPing) for p in pings)
    assert [key.decode() for key, _ in messages] == [p.rider_id for p in pings]
    assert len({p.rider_id for p in pings}) > 3
    assert [p.occurred_at for p in pings] == sorted(p.occurred_at for p in pings)  # delivery order


def test_backlog_refuses_an_empty_request() -> None:
    with pytest.raises(ValueError, match="messages=0"):
        backlog(0)


def test_ratio_is_kafka_python_median_over_confluent_median() -> None:
    figures = {"confluent-kafka": {"tracker": [100.0, 300.0, 200.0]},
               "kafka-python": {"tracker": [10.0, 50.0, 30.0]}}
    assert median_ratio(figures, "tracker") == pytest.approx(30.0 / 200.0)
