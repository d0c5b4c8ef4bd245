"""The demo's verdict: exit 0 only when ClickHouse holds every produced event and every order
settled; the JSON summary keeps its keys for scripts that read it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infra.demo import DemoSummary


def summary(**over: Any) -> DemoSummary:
    kpis = {"orders_created": 10, "delivered": 7, "failed": 2, "cancelled": 1, "in_progress": 0,
            "on_time_pct": 85.7, "first_attempt_success_pct": 70.0}
    fields: dict[str, Any] = {"kpis": kpis, "distance_km_per_rider": {"r1": 12.5}, "events_produced": 120,
                              "events_in_clickhouse": 120, "dead_letters": {}, "elapsed_s": 3.2,
                              "data_dir": Path("/tmp/d")}
    fields.update(over)
    return DemoSummary(**fields)


def test_settled_day_with_every_event_projected_is_ok() -> None:
    assert summary().ok


def test_events_missing_from_clickhouse_fail_the_demo() -> None:
    assert not summary(events_in_clickhouse=119).ok


def test_unsettled_orders_fail_the_demo() -> None:
    kpis = {**summary().kpis, "delivered": 6, "in_progress": 1}
    assert not summary(kpis=kpis).ok


def test_json_summary_flattens_kpis_next_to_the_counts() -> None:
    d = summary(dead_letters={"contract": 2}).to_dict()
    assert d["delivered"] == 7 and d["on_time_pct"] == 85.7
    assert d["events_produced"] == d["events_in_clickhouse"] == 120
    assert d["dead_letters"] == {"contract": 2}
    assert d["distance_km_per_rider"] == {"r1": 12.5}
    assert d["data_dir"] == "/tmp/d" and d["elapsed_s"] == 3.2
