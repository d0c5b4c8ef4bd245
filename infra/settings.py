"""One frozen settings object, read from the environment once at start-up.

Every setting is ``MILESTREAM_<NAME>``; ``milestream config`` prints them with their values
(secrets masked). Pointing the system at a production Kafka cluster and ClickHouse server is a
matter of setting ``MILESTREAM_KAFKA_BOOTSTRAP`` and ``MILESTREAM_CLICKHOUSE_DSN``.

Whatever shows a setting goes through :meth:`Settings.display`: secrets as ``****`` and the
password of any ``scheme://user:password@`` in a value masked (``schemas.redact``, the one way).
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from schemas.redact import MASK, mask_urls

if TYPE_CHECKING:
    from streams.domain.hub_policy import HubPolicies


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
        "doc": "Confluent Schema Registry URL; https://key:secret@host sends key and secret as basic auth. "
               "Empty: Avro single-object encoding (readable with the .avsc files alone)."})
    schema_registry_timeout_s: float = field(default=2.0, metadata={
        "doc": "Longest one schema-registry look-up waits; below the session timeout, so a slow registry "
               "never costs a consumer its partitions."})
    schema_registry_miss_ttl_s: float = field(default=60.0, metadata={
        "doc": "How long a schema id the registry did not give is remembered as unknown before it is asked again."})
    clickhouse_dsn: str = field(default="", metadata={
        "doc": "clickhouse-connect DSN: chdb:///path (embedded, default <data_dir>/clickhouse) or http(s)://user:pass@host:8123."})
    clickhouse_database: str = field(default="milestream", metadata={"doc": "ClickHouse database of the projections."})
    data_dir: str = field(default_factory=_default_data_dir, metadata={"doc": "Where embedded ClickHouse and worker state live."})
    otp_key: str = field(default="", metadata={
        "doc": "Secret shared with the customer-notification system: derives and seals delivery OTPs. At least 32 "
               "random bytes as hex (64+ digits) or base64url; every process gets the same one. Required by "
               "`milestream up` and the workers; `milestream demo` makes one per run. "
               "Make one: python -c \"import secrets; print(secrets.token_hex(32))\"",
        "secret": True})
    otp_max_attempts: int = field(default=3, metadata={"doc": "Wrong OTP entries allowed before POD by OTP is locked for an order."})
    otp_ttl_s: int = field(default=12 * 3600, metadata={"doc": "How long an issued OTP stays valid."})
    dispatch_batch_window_s: float = field(default=0.5, metadata={"doc": "Wall seconds a hub is quiet (or twice that busy) before its new orders are planned."})
    dispatch_time_limit_s: float = field(default=3.0, metadata={"doc": "Solver time per dispatch plan."})
    hub_policies: str = field(default="", metadata={
        "doc": "Each hub's operating policy: inline JSON (starting with '{') or the path of a JSON file, "
               "{\"default\": {...}, \"hubs\": {\"<hub id>\": {...}}} with reattempt (max_attempts, mode "
               "same_day|next_day|customer_slot, same_day_after_min, same_day_window_min), horizon_min, "
               "even_workload, learned_speeds; a hub's entry overrides the default field by field. "
               "Empty: the defaults (2 attempts, same day, 120 min horizon)."})
    tracker_checkpoint_s: float = field(default=2.0, metadata={
        "doc": "Seconds between the tracking worker's checkpoints (outputs acknowledged, rider state written, "
               "offsets committed): at most this much is processed again after a crash."})
    zones_file: str = field(default="", metadata={
        "doc": "GeoJSON FeatureCollection of Polygons (properties.zone_id) watched as custom zones for every "
               "rider: entered, exited and dwelled events on the tracking topic. Empty: none."})
    projection_batch_size: int = field(default=20000, metadata={"doc": "Most events the projection inserts per ClickHouse batch."})
    projection_flush_s: float = field(default=0.5, metadata={"doc": "Longest a projection batch waits before it is flushed."})
    max_message_bytes: int = field(default=512 * 1024, metadata={
        "doc": "Largest message accepted on an input topic; a larger one is dead-lettered with its first bytes, "
               "length and SHA-256."})
    max_event_age_s: float = field(default=7 * 86400.0, metadata={
        "doc": "How far an event's occurred_at may lie before its record's timestamp (or now, when it has none)."})
    max_event_lead_s: float = field(default=3600.0, metadata={
        "doc": "How far an event's occurred_at may lie after its record's timestamp, and after now."})
    max_route_stops: int = field(default=1000, metadata={"doc": "Most stops one RoutePlanned may carry."})
    max_order_skills: int = field(default=32, metadata={"doc": "Most skills one order may require."})
    max_id_chars: int = field(default=128, metadata={"doc": "Longest id (order, rider, hub, device...) accepted."})
    max_text_chars: int = field(default=4000, metadata={"doc": "Longest free-text field (address, reason...) accepted."})
    max_zone_cells: int = field(default=5000, metadata={"doc": "Most H3 cells one custom zone may cover."})
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
        for name in ("dispatch_time_limit_s", "projection_flush_s", "kafka_session_timeout_s", "kafka_heartbeat_s",
                     "schema_registry_timeout_s", "schema_registry_miss_ttl_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"MILESTREAM_{name.upper()} must be > 0, got {getattr(self, name)}")
        if self.schema_registry_url and self.schema_registry_timeout_s >= self.kafka_session_timeout_s:
            raise ValueError(f"MILESTREAM_SCHEMA_REGISTRY_TIMEOUT_S ({self.schema_registry_timeout_s:g}) must be below "
                             f"MILESTREAM_KAFKA_SESSION_TIMEOUT_S ({self.kafka_session_timeout_s:g})")
        dsn = self.clickhouse_dsn
        if dsn and not dsn.startswith(("chdb://", "http://", "https://")):
            raise ValueError(f"MILESTREAM_CLICKHOUSE_DSN must start with chdb://, http:// or https://, got "
                             f"{mask_urls(dsn)!r}")
        self.parsed_hub_policies()
        if self.otp_key:
            from streams.domain.orders.otp import secret_bytes

            try:
                secret_bytes(self.otp_key)
            except ValueError as exc:
                raise ValueError(f"MILESTREAM_OTP_KEY: {exc}") from None

    def parsed_hub_policies(self) -> HubPolicies:
        """``MILESTREAM_HUB_POLICIES`` read (inline or from its file) and checked; a bad one fails
        naming the variable, the file and the field."""
        from streams.domain.hub_policy import HubPolicies, PolicyError, parse

        raw = self.hub_policies.strip()
        if not raw:
            return HubPolicies()
        where = "MILESTREAM_HUB_POLICIES"
        if raw.startswith("{"):
            text = raw
        else:
            where = f"MILESTREAM_HUB_POLICIES ({raw})"
            try:
                text = Path(raw).read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"{where}: not inline JSON (no leading '{{') and the file cannot be read: "
                                 f"{exc}") from None
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where} is not JSON: {exc}") from None
        try:
            return parse(document)
        except PolicyError as exc:
            raise ValueError(f"{where}: {exc}") from None

    @property
    def resolved_clickhouse_dsn(self) -> str:
        return self.clickhouse_dsn or f"chdb://{Path(self.data_dir).resolve() / 'clickhouse'}"

    @property
    def embedded_clickhouse(self) -> bool:
        return self.resolved_clickhouse_dsn.startswith("chdb://")

    def require_otp_key(self) -> Settings:
        """These settings, if they carry an OTP key: a process that issues OTPs must share its key
        with the notification system and every other worker, so none may draw its own."""
        if not self.otp_key:
            from streams.domain.orders.otp import MAKE_ONE

            raise ValueError("MILESTREAM_OTP_KEY is not set: the workers seal delivery OTPs with the key the "
                             "customer-notification system shares, the same for every process (at least 32 random "
                             f"bytes). Make one with: {MAKE_ONE}")
        return self

    def with_otp_key(self) -> Settings:
        """These settings with an OTP key, drawing a random one if none is set: for the demo, which
        hands the same settings to every process it starts."""
        return self if self.otp_key else dataclasses.replace(self, otp_key=secrets.token_hex(32))

    def registry_client(self) -> Any:
        """The schema-registry client these settings describe, or None without a registry URL."""
        if not self.schema_registry_url:
            return None
        from schemas.codec import SchemaRegistryClient

        return SchemaRegistryClient(self.schema_registry_url, timeout_s=self.schema_registry_timeout_s,
                                    miss_ttl_s=self.schema_registry_miss_ttl_s)

    def make_data_dir(self) -> Path:
        """The data dir and its ``logs`` folder, private to the owner (0700; tightened if they
        exist): they hold addresses, GPS traces and dead-lettered originals."""
        root = Path(self.data_dir)
        for folder in (root, root / "logs"):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            folder.chmod(0o700)
        return root

    def topic(self, name: str) -> str:
        return self.topic_prefix + name

    def to_env(self) -> dict[str, str]:
        """As environment variables, to hand to a child process."""
        return {"MILESTREAM_" + f.name.upper(): str(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def display(self, name: str) -> str:
        """A setting (or a derived one such as ``resolved_clickhouse_dsn``) as it may be shown,
        logged or stored: a secret as ``****``, credentials in a URL masked."""
        value = str(getattr(self, name))
        if value and name in _SECRETS:
            return MASK
        return mask_urls(value)

    def describe(self) -> list[tuple[str, str, str, str]]:
        """(variable, value, default, doc) for each setting, secrets masked."""
        rows = []
        for f in dataclasses.fields(self):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            rows.append(("MILESTREAM_" + f.name.upper(), self.display(f.name), mask_urls(str(default)),
                         f.metadata["doc"]))
        return rows

    def __repr__(self) -> str:  # kept by @dataclass: a logged or printed Settings shows no secret
        shown = ", ".join(f"{f.name}={self.display(f.name)!r}" for f in dataclasses.fields(self))
        return f"Settings({shown})"


_SECRETS = frozenset(f.name for f in dataclasses.fields(Settings) if f.metadata.get("secret"))
