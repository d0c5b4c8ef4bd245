"""The projection tables. ReplacingMergeTree everywhere: a replayed batch re-inserts rows with
the same sorting key and they collapse; read with FINAL for exact counts."""

from __future__ import annotations

TABLES = {
    "events": """
CREATE TABLE IF NOT EXISTS {db}.events (
    event_id String,
    event_type LowCardinality(String),
    stream_key String,
    occurred_at DateTime64(3, 'UTC'),
    topic LowCardinality(String),
    partition UInt16,
    offset UInt64,
    schema_version UInt16,
    payload String COMMENT 'the event as JSON (bytes as hex)'
) ENGINE = ReplacingMergeTree
ORDER BY (event_type, event_id)
COMMENT 'Every accepted event and dead letter, immutable, one row per event_id'""",
    "gps_pings": """
CREATE TABLE IF NOT EXISTS {db}.gps_pings (
    event_id String,
    rider_id String,
    device_id String,
    device_time DateTime64(3, 'UTC'),
    received_at DateTime64(3, 'UTC'),
    lat Float64,
    lon Float64,
    speed_mps Nullable(Float64),
    heading_deg Nullable(Float64),
    accuracy_m Nullable(Float64),
    battery_pct Nullable(Float64)
) ENGINE = ReplacingMergeTree
ORDER BY (rider_id, device_time, event_id)""",
    "order_state": """
CREATE TABLE IF NOT EXISTS {db}.order_state (
    order_id String,
    tracking_id String,
    hub_id LowCardinality(String),
    mode LowCardinality(String),
    status LowCardinality(String),
    rider_id String,
    route_id String,
    attempts UInt16,
    created_at DateTime64(3, 'UTC'),
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    assigned_at Nullable(DateTime64(3, 'UTC')),
    out_for_delivery_at Nullable(DateTime64(3, 'UTC')),
    arrived_at Nullable(DateTime64(3, 'UTC')),
    delivered_at Nullable(DateTime64(3, 'UTC')),
    failed_at Nullable(DateTime64(3, 'UTC')),
    failure_reason String COMMENT 'reason code, then the words of the rider: no_access: gate locked',
    cancelled_at Nullable(DateTime64(3, 'UTC')),
    returned_at Nullable(DateTime64(3, 'UTC')) COMMENT 'back at the hub after the last attempt',
    drop_lat Float64,
    drop_lon Float64,
    weight_kg Float64,
    cod_amount Float64,
    updated_at DateTime64(3, 'UTC'),
    version UInt64 COMMENT 'offset of the last ledger event folded in'
) ENGINE = ReplacingMergeTree(version)
ORDER BY order_id""",
    "dead_letters": """
CREATE TABLE IF NOT EXISTS {db}.dead_letters (
    event_id String,
    occurred_at DateTime64(3, 'UTC'),
    source_topic LowCardinality(String),
    source_partition UInt16,
    source_offset UInt64,
    source_key String,
    error_kind LowCardinality(String),
    reason String,
    original String COMMENT 'original message value, hex'
) ENGINE = ReplacingMergeTree
ORDER BY (source_topic, source_partition, source_offset, event_id)""",
}


# Columns added after a table was first created: a database made by an earlier version gets them too.
ADDED_COLUMNS = (
    "ALTER TABLE {db}.order_state ADD COLUMN IF NOT EXISTS returned_at Nullable(DateTime64(3, 'UTC')) "
    "AFTER cancelled_at",
)


def create_statements(database: str) -> list[str]:
    return ([f"CREATE DATABASE IF NOT EXISTS {database}"] + [sql.format(db=database) for sql in TABLES.values()]
            + [sql.format(db=database) for sql in ADDED_COLUMNS])
