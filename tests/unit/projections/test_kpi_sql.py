"""KPI queries are plain SQL strings: they target the given database, read with FINAL so
replays never double count, and keep the tracker's distance hygiene."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from projections import kpi

QUERIES = [kpi.order_kpis_sql, kpi.distance_per_rider_sql, kpi.events_in_clickhouse_sql,
           kpi.dead_letters_by_kind_sql, kpi.order_outcomes_sql]


@pytest.mark.parametrize("make", QUERIES, ids=lambda f: f.__name__)
def test_query_targets_the_given_database(make: Any) -> None:
    sql = make("db_x42")
    tables = re.findall(r"FROM\s+([\w.]+)", sql)
    qualified = [t for t in tables if "." in t]
    assert qualified and all(t.startswith("db_x42.") for t in qualified)
    assert "milestream." not in sql


def test_state_and_gps_queries_read_with_final() -> None:
    assert re.search(r"FROM db\.order_state FINAL", kpi.order_kpis_sql("db"))
    assert re.search(r"FROM db\.gps_pings FINAL", kpi.distance_per_rider_sql("db"))
    assert re.search(r"FROM db\.dead_letters FINAL", kpi.dead_letters_by_kind_sql("db"))


def test_event_count_deduplicates_on_event_id() -> None:
    assert "uniqExact(event_id)" in kpi.events_in_clickhouse_sql("db")


def test_order_kpis_name_every_kpi_column() -> None:
    sql = kpi.order_kpis_sql("db")
    for name in ("orders_created", "delivered", "failed", "cancelled", "in_progress", "on_time_pct",
                 "first_attempt_success_pct"):
        assert re.search(rf"\bAS {name}\b", sql), name


def test_order_outcomes_settle_only_delivered_returned_and_cancelled_orders() -> None:
    sql = kpi.order_outcomes_sql("db")
    assert re.search(r"FROM db\.order_state FINAL", sql)
    assert "countIf(status IN ('delivered', 'returned_to_hub', 'cancelled')) AS settled" in sql
    for name in ("orders_created", "delivered", "returned", "cancelled", "failed_open"):
        assert re.search(rf"\bAS {name}\b", sql), name


def test_distance_sql_drops_jitter_and_impossible_jumps() -> None:
    sql = kpi.distance_per_rider_sql("db")
    assert "step_m <= 45 * dt_s" in sql
    assert "least(coalesce(accuracy_m, 10), 50)" in sql
    assert "step_m > jitter_m" in sql


def test_query_dicts_zips_column_names_with_rows() -> None:
    @dataclass
    class Result:
        column_names: tuple[str, ...]
        result_rows: list[tuple[Any, ...]]

    class Client:
        def __init__(self) -> None:
            self.seen: list[str] = []

        def query(self, sql: str) -> Result:
            self.seen.append(sql)
            return Result(("rider_id", "km"), [("r1", 1.5), ("r2", 2.0)])

    client = Client()
    assert kpi.query_dicts(client, "SELECT 1") == [{"rider_id": "r1", "km": 1.5}, {"rider_id": "r2", "km": 2.0}]
    assert client.seen == ["SELECT 1"]
