"""The stream edge, Kafka part: topic administration, a producer that waits for acks, commits, and
the one place Kafka's exceptions become ours (by error code, never by message text).

Clients are configured by the entry points (``infra.kafka``) and handed in as librdkafka
configuration dicts; nothing here reads settings or the environment.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from streams.edge import Record
from streams.errors import KafkaFailure, TopicError

log = logging.getLogger(__name__)

# The longest a fetch may wait for data, for every librdkafka consumer of ours. Not lower: the
# embedded broker's time to answer a fetch grows with the partition's length (batches, not the
# offset asked for), and it answers empty when the wait runs out first, so a short wait stops a
# consumer for good once its partitions grow (pinned in test_broker_contract.py). A fetch still
# returns as soon as data is there.
FETCH_WAIT_MS = 500


def translate(exc: BaseException, doing: str) -> KafkaFailure:
    """A Kafka client's exception (confluent-kafka's, or aiokafka's under Faust) as ours."""
    from confluent_kafka import KafkaError, KafkaException

    err = exc.args[0] if isinstance(exc, KafkaException) and exc.args else exc
    if isinstance(err, KafkaError):
        return KafkaFailure(f"{doing}: {err.name()}: {err.str()}", code=err.code(), name=err.name(),
                            retriable=err.retriable(), fatal=err.fatal())
    errno = getattr(exc, "errno", None)  # aiokafka's broker errors carry the protocol error code
    return KafkaFailure(f"{doing}: {type(exc).__name__}: {exc}", code=errno if isinstance(errno, int) else None,
                        name=type(exc).__name__, retriable=bool(getattr(exc, "retriable", False)))


def code_of(name: str) -> int:
    """The numeric code of a named Kafka error (``TOPIC_ALREADY_EXISTS``, ``_NO_OFFSET``...)."""
    from confluent_kafka import KafkaError

    return int(getattr(KafkaError, name))


@dataclass(frozen=True, slots=True)
class TopicPlan:
    """A topic as we want it."""

    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict)


def ensure_topics(client_config: dict[str, Any], topics: Iterable[TopicPlan], timeout_s: float = 15.0) -> list[str]:
    """Create the topics that do not exist yet; existing ones are kept. Returns the names created."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(client_config)
    try:
        existing = set(admin.list_topics(timeout=timeout_s).topics)
    except KafkaException as exc:
        raise translate(exc, "listing topics") from exc
    wanted = [NewTopic(t.name, t.partitions, t.replication_factor, config=dict(t.config))
              for t in topics if t.name not in existing]
    if not wanted:
        return []
    created = []
    already = code_of("TOPIC_ALREADY_EXISTS")
    for name, fut in admin.create_topics(wanted, request_timeout=timeout_s).items():
        try:
            fut.result()
            created.append(name)
        except KafkaException as exc:
            failure = translate(exc, f"creating topic {name}")
            if failure.code != already:
                raise TopicError(str(failure), code=failure.code, name=failure.name) from exc
    return created


def record_of(message: Any) -> Record:
    """A confluent-kafka message as the edge's record."""
    kind, ms = message.timestamp()
    return Record(message.topic(), message.partition(), message.offset(), message.key(), message.value(),
                  ms if kind else None)


def commit(consumer: Any, offsets: list[Any] | None = None) -> None:
    """Commit synchronously (``offsets``, or the consumer's positions); nothing to commit is fine."""
    from confluent_kafka import KafkaException

    try:
        if offsets is None:
            consumer.commit(asynchronous=False)
        elif offsets:
            consumer.commit(offsets=offsets, asynchronous=False)
    except KafkaException as exc:
        failure = translate(exc, "committing offsets")
        if failure.code != code_of("_NO_OFFSET"):
            raise failure from exc


class Publisher:
    """A confluent-kafka producer whose every write is acknowledged by :meth:`flush`.

    Delivery reports come back for failures only (a callback per acknowledged record costs more
    than producing it); a failure is kept and raised by the next flush."""

    def __init__(self, client_config: dict[str, Any]) -> None:
        from confluent_kafka import Producer

        self._errors: list[KafkaFailure] = []
        self.producer = Producer({**client_config, "delivery.report.only.error": True,
                                  "on_delivery": self._delivered})

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:
            self._errors.append(translate(err, f"writing to {msg.topic()}"))

    def send(self, topic: str, key: bytes | None, value: bytes | None, timestamp_ms: int = 0,
             partition: int | None = None) -> None:
        produce = self.producer.produce
        while True:
            try:
                if partition is None:
                    produce(topic, value, key, timestamp=timestamp_ms)
                else:
                    produce(topic, value, key, partition=partition, timestamp=timestamp_ms)
                return
            except BufferError:  # local queue full: let it drain
                self.producer.poll(0.05)
            except Exception as exc:  # KafkaException (e.g. message too large), by code
                raise translate(exc, f"writing to {topic}") from exc

    def poll(self) -> None:
        self.producer.poll(0)

    def raise_failure(self) -> None:
        """Serve delivery reports and raise the first failure reported so far, without waiting for
        acks: a long-lived producer (the simulator) stops at the first lost write, not at its end."""
        self.producer.poll(0)
        if self._errors:
            errors, self._errors = self._errors, []
            raise errors[0]

    def close(self) -> None:
        """Drop whatever is still unsent (flush first to keep it) and release the client, so that it
        does not outlive the broker it wrote to."""
        self.producer.purge()
        self.producer.close()

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait for the broker's acks of everything sent; raise the first failure."""
        remaining = self.producer.flush(timeout_s)
        if remaining or self._errors:
            errors, self._errors = self._errors, []
            first = errors[0] if errors else None
            raise KafkaFailure(f"{remaining} writes not acknowledged within {timeout_s:g} s; "
                               f"{len(errors)} failed" + (f", first: {first}" if first else ""),
                               code=first.code if first else None, name=first.name if first else "")


__all__ = ["Publisher", "TopicPlan", "code_of", "commit", "ensure_topics", "record_of", "translate"]
