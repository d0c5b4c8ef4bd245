"""One frozen settings object, read from the environment once at start-up.

Every setting is ``MILESTREAM_<NAME>``; ``milestream config`` prints them with their values
(secrets masked). Pointing the system at a production Kafka cluster and ClickHouse server is a
matter of setting ``MILESTREAM_KAFKA_BOOTSTRAP`` and ``MILESTREAM_CLICKHOUSE_DSN``.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _default_data_dir() -> str:
    return str(Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "milestream")


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    kafka_bootstrap: str = field(default="", metadata={
        "doc": "Kafka bootstrap servers (host:port,...). Empty: start the embedded Tansu broker on a free loopback port."})
    kafka_security_protocol: str = field(default="PLAINTEXT", metadata={
        "doc": "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (MSK, Confluent Cloud, Redpanda Cloud)."})
    kafka_sasl_mechanism: str = field(default="PLAIN", metadata={"doc": "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512."})
    kafka_sasl_username: str = field(default="", metadata={"doc": "SASL user name."})
    kafka_sasl_password: str = field(default="", metadata={"doc": "SASL password.", "secret": True})
    kafka_replication_factor: int = field(default=1, metadata={"doc": "Replication factor for the topics we create (3 in production)."})
    kafka_partitions: int = field(default=3, metadata={"doc": "Partitions per topic we create; the most parallel workers a stream can use."})
    kafka_session_timeout_s: float = field(default=6.0, metadata={"doc": "Consumer-group session timeout; also used as the rebalance timeout."})
    kafka_heartbeat_s: float = field(default=1.0, metadata={"doc": "Consumer-group heartbeat interval."})
    topic_prefix: str = field(default="milestream.", metadata={"doc": "Prefix of every topic name."})
    app_id: str = field(default="milestream", metadata={"doc": "Faust application id: consumer groups and changelog topic names derive from it."})
    schema_registry_url: str = field(default="", metadata={
        "doc": "Confluent Schema Registry URL. Empty: Avro single-object encoding (readable with the .avsc files alone)."})
    clickhouse_dsn: str = field(default="", metadata={
        "doc": "clickhouse-connect DSN: chdb:///path (embedded, default <data_dir>/clickhouse) or http(s)://user:pass@host:8123."})
    clickhouse_database: str = field(default="milestream", metadata={"doc": "ClickHouse database of the projections."})
    data_dir: str = field(default_factory=_default_data_dir, metadata={"doc": "Where embedded ClickHouse and worker state live."})
    otp_key: str = field(default="", metadata={
        "doc": "Secret shared with the customer-notification system: derives and seals delivery OTPs. Empty: a random key per run.",
        "secret": True})
    otp_max_attempts: int = field(default=3, metadata={"doc": "Wrong OTP entries allowed before POD by OTP is locked for an order."})
    otp_ttl_s: int = field(default=12 * 3600, metadata={"doc": "How long an issued OTP stays valid."})
    dispatch_batch_window_s: float = field(default=2.0, metadata={"doc": "Wall seconds the dispatcher collects a hub's new orders before planning."})
    dispatch_time_limit_s: float = field(default=3.0, metadata={"doc": "Solver time per dispatch plan."})
    tracker_checkpoint_s: float = field(default=2.0, metadata={
        "doc": "Seconds between the tracking worker's checkpoints (outputs acknowledged, rider state written, "
               "offsets committed): at most this much is processed again after a crash."})
    zones_file: str = field(default="", metadata={
        "doc": "GeoJSON FeatureCollection of Polygons (properties.zone_id) watched as custom zones for every "
               "rider: entered, exited and dwelled events on the tracking topic. Empty: none."})
    projection_batch_size: int = field(default=20000, metadata={"doc": "Most events the projection inserts per ClickHouse batch."})
    projection_flush_s: float = field(default=0.5, metadata={"doc": "Longest a projection batch waits before it is flushed."})
    log_level: str = field(default="INFO", metadata={"doc": "Log level of workers and the command line."})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read ``MILESTREAM_*``; bad values fail here, naming the variable."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            var = "MILESTREAM_" + f.name.upper()
            if var not in env:
                continue
            raw = env[var]
            try:
                values[f.name] = {"int": int, "float": float}.get(str(f.type), str)(raw)
            except ValueError as exc:
                raise ValueError(f"{var}={raw!r} is not a valid {f.type}") from exc
        values.update(overrides)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.kafka_partitions < 1:
            raise ValueError(f"MILESTREAM_KAFKA_PARTITIONS must be >= 1, got {self.kafka_partitions}")
        for name in ("otp_max_attempts", "otp_ttl_s", "projection_batch_size", "kafka_replication_factor"):
            if getattr(self, name) < 1:
                raise ValueError(f"MILESTREAM_{name.upper()} must be >= 1, got {getattr(self, name)}")
        for name in ("dispatch_time_limit_s", "projection_flush_s", "kafka_session_timeout_s", "kafka_heartbeat_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"MILESTREAM_{name.upper()} must be > 0, got {getattr(self, name)}")
        dsn = self.clickhouse_dsn
        if dsn and not dsn.startswith(("chdb://", "http://", "https://")):
            raise ValueError(f"MILESTREAM_CLICKHOUSE_DSN must start with chdb://, http:// or https://, got {dsn!r}")

    @property
    def resolved_clickhouse_dsn(self) -> str:
        return self.clickhouse_dsn or f"chdb://{Path(self.data_dir).resolve() / 'clickhouse'}"

    @property
    def embedded_clickhouse(self) -> bool:
        return self.resolved_clickhouse_dsn.startswith("chdb://")

    def with_otp_key(self) -> Settings:
        """These settings with an OTP key, generating a random one if none is set."""
        return self if self.otp_key else dataclasses.replace(self, otp_key=secrets.token_hex(32))

    def topic(self, name: str) -> str:
        return self.topic_prefix + name

    def to_env(self) -> dict[str, str]:
        """As environment variables, to hand to a child process."""
        return {"MILESTREAM_" + f.name.upper(): str(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def describe(self) -> list[tuple[str, str, str, str]]:
        """(variable, value, default, doc) for each setting, secrets masked."""
        rows = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            if f.metadata.get("secret") and value:
                value = "****"
            rows.append(("MILESTREAM_" + f.name.upper(), str(value), str(default), f.metadata["doc"]))
        return rows
