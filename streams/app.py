"""The Faust application: the app singleton, its topics and tables, declared in one place.

Agents live in ``streams.agents`` (one module per input stream), discovered explicitly.
Values are raw bytes on the wire and decoded with our Avro codec, so that invalid input can be
dead-lettered with its original bytes instead of failing inside Faust.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import faust

from infra.kafka import ssl_context
from infra.settings import Settings
from schemas import Codec, DecodeError, InvalidEvent, UnknownSchema
from schemas import events as ev
from schemas import topics as tp
from schemas.codec import SchemaRegistryClient
from streams.domain.ids import derived_id
from streams.domain.orders import lifecycle, otp

log = logging.getLogger(__name__)


def _patch_faust_recovery() -> None:
    """Stop the consumer's flow while recovery seeks the stream partitions (faust-streaming 0.15.3).

    ``Recovery.on_recovery_completed`` (and ``_resume_streams``) resume the stream partitions,
    await ``perform_seek`` and then ``flow_control.resume()``, which clears every agent queue. The
    fetcher keeps running meanwhile: a batch drained during the seek is still being fed to the
    agents' queues when the seek resets ``_read_offset`` to the committed offsets, its records
    that reached a queue are dropped by the clear, and the rest of the batch, delivered after the
    clear, moves ``_read_offset`` past them again, so the records re-fetched from the committed
    offset are discarded as already read (``offset < read_offset`` in ``_drain_messages``): the
    cleared records are never processed. Stopping the flow first ends that batch (``getmany``
    checks ``flow_active`` per record and seeks back when it is off), so the seek, the clear and
    ``resume_flow`` happen with nothing in flight and delivery restarts at the committed offsets."""
    from faust.tables import recovery as _recovery

    if getattr(_recovery.Recovery, "_milestream_patched", False):
        return

    def stopping_flow_first(method: Any) -> Any:
        async def wrapper(self: Any, generation_id: int = 0) -> None:
            self.app.consumer.stop_flow()  # resumed by `method` (or by the next rebalance if it returns early)
            await method(self, generation_id)

        return wrapper

    _recovery.Recovery.on_recovery_completed = stopping_flow_first(_recovery.Recovery.on_recovery_completed)
    _recovery.Recovery._resume_streams = stopping_flow_first(_recovery.Recovery._resume_streams)
    _recovery.Recovery._milestream_patched = True


_patch_faust_recovery()

AGENT_MODULES = ["streams.agents.orders", "streams.agents.riders", "streams.agents.tracking", "streams.agents.dispatch",
                 "streams.agents.notifications"]


def create_app(settings: Settings) -> faust.App:
    if not settings.kafka_bootstrap:
        raise ValueError("MILESTREAM_KAFKA_BOOTSTRAP is empty: the worker needs a broker "
                         "(`milestream up` starts the embedded one and sets it)")
    credentials: Any = None
    if settings.kafka_security_protocol.startswith("SASL"):
        credentials = faust.SASLCredentials(username=settings.kafka_sasl_username, password=settings.kafka_sasl_password,
                                            mechanism=settings.kafka_sasl_mechanism, ssl_context=ssl_context(settings))
    elif settings.kafka_security_protocol == "SSL":
        credentials = faust.SSLCredentials(ssl_context(settings))
    datadir = Path(settings.data_dir) / "faust"
    return faust.App(
        settings.app_id,
        broker=[f"kafka://{h.strip()}" for h in settings.kafka_bootstrap.split(",") if h.strip()],
        broker_credentials=credentials,
        store="memory://",
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=settings.kafka_partitions,
        topic_replication_factor=settings.kafka_replication_factor,
        topic_allow_declare=True,
        broker_session_timeout=settings.kafka_session_timeout_s,
        broker_rebalance_timeout=settings.kafka_session_timeout_s,
        broker_heartbeat_interval=settings.kafka_heartbeat_s,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        web_enabled=False,
        datadir=str(datadir),
        autodiscover=AGENT_MODULES,
        origin="streams",
    )


settings = Settings.from_env().with_otp_key()
app = create_app(settings)
codec = Codec(registry=SchemaRegistryClient(settings.schema_registry_url) if settings.schema_registry_url else None)
policy = lifecycle.Policy(otp_key=otp.key_bytes(settings.otp_key), otp_max_attempts=settings.otp_max_attempts,
                          otp_ttl=timedelta(seconds=settings.otp_ttl_s))


def _topic(spec: tp.TopicSpec) -> faust.TopicT:
    return app.topic(settings.topic(spec.name), key_type=bytes, value_type=bytes, partitions=settings.kafka_partitions,
                     key_serializer="raw", value_serializer="raw")


inbox_topic = _topic(tp.INBOX)
orders_topic = _topic(tp.ORDERS)
riders_topic = _topic(tp.RIDERS)
gps_topic = _topic(tp.GPS)
routes_topic = _topic(tp.ROUTES)
alerts_topic = _topic(tp.ALERTS)
notifications_topic = _topic(tp.NOTIFICATIONS)
dead_letter_topic = _topic(tp.DEAD_LETTER)
dispatch_topic = _topic(tp.DISPATCH_QUEUE)

def handles_each(handler: Any) -> Any:
    """Wrap a per-message handler so that an unexpected failure dead-letters that message
    (kind processing_error, original bytes kept for replay) and the stream goes on."""

    async def agent(stream: Any) -> None:
        async for event in stream.events():
            try:
                await handler(event.message)
            except Exception as exc:  # a bug or a poison message: never stop the stream
                log.exception("handling %s/%s/%s failed", event.message.topic, event.message.partition,
                              event.message.offset)
                await dead_letter(event.message, ev.DeadLetterKind.PROCESSING_ERROR, f"{type(exc).__name__}: {exc}")

    agent.__name__ = handler.__name__
    agent.__qualname__ = handler.__qualname__
    agent.__module__ = handler.__module__
    return agent


class PickledState:
    """Value type of our tables: frozen state dataclasses, pickled.

    Faust takes a table's value serializer from ``value_type._options.serializer`` when it
    registers the table, changelog and recovery included (JSON otherwise). Only this worker
    writes its changelog topics; keep them closed to other producers."""

    class _options:  # noqa: N801 - the attribute Faust reads
        serializer = "pickle"

    @classmethod
    def from_data(cls, data: Any, *, preferred_type: Any = None) -> Any:
        """Faust hands decoded values to the value type; ours are complete already."""
        return data


def _table(name: str, use_partitioner: bool = False) -> Any:
    """Keys are stream keys (raw bytes)."""
    return app.Table(name, default=None, partitions=settings.kafka_partitions, use_partitioner=use_partitioner,
                     key_type=bytes, value_type=PickledState)


order_states = _table("order-state")
rider_hubs = _table("rider-hub")
# Written from the dispatch timer as well as the agent, so its changelog partition comes from the key.
hub_pools = _table("hub-pool", use_partitioner=True)


async def publish(topic: faust.TopicT, events: list[ev.Event] | tuple[ev.Event, ...], key: str | None = None) -> None:
    """Encode (validating each event), send keyed by its stream key (or ``key`` to re-key), and
    wait for the broker's acks.

    Outputs are acknowledged before the caller writes its table, so a crash in between replays
    the input and re-derives the same events (same ids) rather than losing them."""
    futures = [await topic.send(key=(key or e.key).encode(), value=codec.encode(e, topic.get_topic_name()), force=True)
               for e in events]
    for fut in futures:
        await fut


async def dead_letter(message: Any, kind: ev.DeadLetterKind, reason: str) -> None:
    key = message.key.decode("utf-8", "replace") if message.key else ""
    where = f"{message.topic}/{message.partition}/{message.offset}"
    log.warning("dead letter %s: %s: %s", where, kind.value, reason)
    letter = ev.DeadLetter(
        event_id=derived_id(where, "dead-letter"), occurred_at=datetime.now(UTC),
        source_key=key or where, source_topic=message.topic, source_partition=message.partition,
        source_offset=message.offset, original=bytes(message.value or b""), error_kind=kind, reason=reason[:2000],
    )
    await publish(dead_letter_topic, [letter])


async def decode(message: Any, allowed: tuple[type[ev.Event], ...], check_key: bool = True) -> ev.Event | None:
    """The first step of every handler: decode and check the message, or dead-letter it with
    the reason and return None so the stream goes on."""
    try:
        event = codec.decode(message.value)
    except UnknownSchema as exc:
        await dead_letter(message, ev.DeadLetterKind.UNKNOWN_SCHEMA, str(exc))
        return None
    except DecodeError as exc:
        await dead_letter(message, ev.DeadLetterKind.MALFORMED, str(exc))
        return None
    except InvalidEvent as exc:
        await dead_letter(message, ev.DeadLetterKind.INVALID, str(exc))
        return None
    if not isinstance(event, allowed):
        await dead_letter(message, ev.DeadLetterKind.INVALID,
                          f"{type(event).__name__} does not belong on {message.topic}")
        return None
    if check_key and message.key is not None and message.key != event.key.encode():
        await dead_letter(message, ev.DeadLetterKind.INVALID,
                          f"message key {message.key!r} differs from the event's stream key {event.key!r}")
        return None
    return event
