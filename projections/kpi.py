"""The KPI queries analysts and the demo read. Counts use FINAL so replays never double count."""

from __future__ import annotations

from typing import Any

TERMINAL_FAILED = "('failed', 'returned_to_hub')"


def order_kpis_sql(db: str) -> str:
    return f"""
SELECT
    count() AS orders_created,
    countIf(status = 'delivered') AS delivered,
    countIf(status IN {TERMINAL_FAILED}) AS failed,
    countIf(status = 'cancelled') AS cancelled,
    countIf(status NOT IN ('delivered', 'cancelled', 'failed', 'returned_to_hub')) AS in_progress,
    round(100 * countIf(status = 'delivered' AND delivered_at <= window_end)
          / nullIf(countIf(status = 'delivered'), 0), 1) AS on_time_pct,
    round(100 * countIf(status = 'delivered' AND attempts = 1) / nullIf(countIf(attempts >= 1), 0), 1)
        AS first_attempt_success_pct
FROM {db}.order_state FINAL"""


def order_outcomes_sql(db: str) -> str:
    """Where every order ended: settled is delivered, returned to the hub after its last attempt, or
    cancelled; a failed order still waiting for a re-attempt or its customer's slot is not."""
    return f"""
SELECT
    count() AS orders_created,
    countIf(status IN ('delivered', 'returned_to_hub', 'cancelled')) AS settled,
    countIf(status = 'delivered') AS delivered,
    countIf(status = 'returned_to_hub') AS returned,
    countIf(status = 'cancelled') AS cancelled,
    countIf(status = 'failed') AS failed_open
FROM {db}.order_state FINAL"""


def distance_per_rider_sql(db: str) -> str:
    """Distance driven per rider from GPS, with the tracker's hygiene: steps within the fix's
    jitter (accuracy, capped at 50 m) and impossible jumps (> 45 m/s) are not distance."""
    return f"""
SELECT rider_id, round(sum(step_m) / 1000, 2) AS km
FROM (
    SELECT rider_id,
           geoDistance(lon, lat, prev_lon, prev_lat) AS step_m,
           dateDiff('millisecond', prev_time, device_time) / 1000 AS dt_s,
           least(coalesce(accuracy_m, 10), 50) AS jitter_m,
           n
    FROM (
        SELECT rider_id, lat, lon, accuracy_m, device_time,
               lagInFrame(lat) OVER w AS prev_lat, lagInFrame(lon) OVER w AS prev_lon,
               lagInFrame(device_time) OVER w AS prev_time, row_number() OVER w AS n
        FROM {db}.gps_pings FINAL
        WINDOW w AS (PARTITION BY rider_id ORDER BY device_time ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
    )
)
WHERE n > 1 AND dt_s > 0 AND step_m > jitter_m AND step_m <= 45 * dt_s
GROUP BY rider_id
ORDER BY rider_id"""


def events_in_clickhouse_sql(db: str) -> str:
    return f"SELECT uniqExact(event_id) FROM {db}.events"


def dead_letters_by_kind_sql(db: str) -> str:
    return f"SELECT error_kind, count() AS n FROM {db}.dead_letters FINAL GROUP BY error_kind ORDER BY error_kind"


def query_dicts(client: Any, sql: str) -> list[dict[str, Any]]:
    result = client.query(sql)
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]
