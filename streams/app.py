"""The Faust side of the stream edge: one app per worker role, its topics and tables, built by
:func:`create_app` from settings handed in (importing this module does nothing).

Roles, each its own process and consumer group (``<app_id>-<role>``), any number of each:

- ``orders``: the order lifecycle (inbox -> ledger) and rider shifts (``streams.agents.orders``,
  ``streams.agents.riders``);
- ``dispatch``: plans and re-plans per hub (``streams.agents.dispatch``);
- ``notifications``: customer notices (``streams.agents.notifications``).

Tracking is not a Faust role: it is the batched worker of :mod:`streams.workers.tracking`.

Values are raw bytes on the wire, decoded by :class:`streams.edge.Edge`, so that invalid input is
dead-lettered with its original bytes instead of failing inside Faust. Table values are encoded
with the state schemas (:mod:`streams.state`), never pickled.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from schemas import Codec
from schemas import events as ev
from schemas import topics as tp
from streams.domain.hub_policy import HubPolicies
from streams.domain.orders import lifecycle, otp
from streams.edge import Edge, Limits, Record, Rejection

log = logging.getLogger(__name__)

ROLES: dict[str, tuple[str, ...]] = {
    "orders": ("streams.agents.orders", "streams.agents.riders"),
    "dispatch": ("streams.agents.dispatch",),
    "notifications": ("streams.agents.notifications",),
}


class StreamSettings(Protocol):
    """The settings a Faust worker reads (``infra.settings.Settings`` has them all)."""

    app_id: str
    kafka_bootstrap: str
    kafka_partitions: int
    kafka_replication_factor: int
    kafka_session_timeout_s: float
    kafka_heartbeat_s: float
    data_dir: str
    otp_key: str
    otp_max_attempts: int
    otp_ttl_s: int
    dispatch_batch_window_s: float
    dispatch_time_limit_s: float

    def topic(self, name: str) -> str: ...

    def parsed_hub_policies(self) -> HubPolicies: ...


Sender = Callable[[str, bytes, bytes, float | None], Awaitable[Any]]


@dataclass
class Streams:
    """What every agent of a role shares: settings, the edge, topics, tables, and the three I/O
    steps of a handler (accept, publish, dead-letter). Built on a Faust app by :func:`create_app`,
    or without a broker by :meth:`offline` for handler tests (tables are dicts, sends are kept)."""

    settings: StreamSettings
    codec: Codec
    edge: Edge
    policy: lifecycle.Policy | None  # the orders role's (it issues OTPs); None where no key is set
    app: Any = None
    hub_policies: HubPolicies = field(default_factory=HubPolicies)  # MILESTREAM_HUB_POLICIES (dispatch reads .of(hub))
    sent: list[tuple[str, bytes, ev.Event]] = field(default_factory=list)  # offline: what was published
    _topics: dict[str, Any] = field(default_factory=dict)
    _tables: dict[str, Any] = field(default_factory=dict)
    clock: Callable[[], float] = time.time

    @classmethod
    def offline(cls, settings: StreamSettings, *, codec: Codec | None = None, limits: Limits = Limits()) -> Streams:
        codec = codec or Codec()
        hubs = settings.parsed_hub_policies()
        return cls(settings=settings, codec=codec, edge=_edge(settings, codec, limits), policy=_policy(settings, hubs),
                   hub_policies=hubs)

    # -- declarations -------------------------------------------------------------------------

    def topic(self, spec: tp.TopicSpec) -> Any:
        return self._channel(self.settings.topic(spec.name))

    def _channel(self, name: str) -> Any:
        """The Faust topic of a full topic name."""
        if name not in self._topics:
            self._topics[name] = None if self.app is None else self.app.topic(
                name, key_type=bytes, value_type=bytes, partitions=self.settings.kafka_partitions,
                key_serializer="raw", value_serializer="raw")
        return self._topics[name]

    def table(self, name: str, *, use_partitioner: bool = False) -> MutableMapping[bytes, Any]:
        """A table keyed by raw stream keys; ``use_partitioner`` when a timer writes it too (its
        changelog partition then comes from the key)."""
        if name not in self._tables:
            if self.app is None:
                self._tables[name] = {}
            else:
                from streams.state import faust_value_type

                self._tables[name] = self.app.Table(
                    name, default=None, partitions=self.settings.kafka_partitions, use_partitioner=use_partitioner,
                    key_type=bytes, value_type=faust_value_type(name))
        return self._tables[name]  # type: ignore[no-any-return]

    def agent(self, topics: Iterable[tp.TopicSpec], name: str, handler: Callable[[Any], Awaitable[None]]) -> Any:
        """Run ``handler`` on every message of ``topics``; a failure dead-letters that message
        (processing_error, original bytes kept) and the stream goes on."""

        async def each(stream: Any) -> None:
            async for event in stream.events():
                try:
                    await handler(event.message)
                except Exception as exc:  # a bug or a poison message: never stop the stream
                    log.exception("handling %s/%s/%s failed", event.message.topic, event.message.partition,
                                  event.message.offset)
                    await self.dead_letter(event.message, Rejection(ev.DeadLetterKind.PROCESSING_ERROR,
                                                                    f"{type(exc).__name__}: {exc}"))

        each.__name__ = each.__qualname__ = name
        if self.app is None:
            return handler
        names = [self.settings.topic(s.name) for s in topics]
        channel = self._channel(names[0]) if len(names) == 1 else self.app.topic(
            *names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
        return self.app.agent(channel, name=name)(each)

    # -- the three steps of a handler -----------------------------------------------------------

    async def accept(self, message: Any, *, rekeyed: bool = False) -> ev.Event | None:
        """The message's event, or None after dead-lettering it with the reason."""
        record = _record(message)
        await self._fetch_schema(record.value)
        event = self.edge.accept(record, self.clock(), rekeyed=rekeyed)
        if type(event) is Rejection:
            await self.dead_letter(message, event)
            return None
        return event  # type: ignore[return-value]

    async def _fetch_schema(self, value: bytes | None) -> None:
        """A registry look-up the codec has not cached runs off the event loop, before decoding."""
        missing = getattr(self.codec, "missing_schema_id", None)
        schema_id = missing(value) if missing is not None and value else None
        if schema_id is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.codec.fetch_schema, schema_id)

    async def publish(self, spec: tp.TopicSpec, events: Iterable[ev.Event], key: str | None = None) -> None:
        """Encode (validating each event), send keyed by its stream key (or ``key`` to re-key),
        stamped with its event time, and wait for the broker's acks.

        Outputs are acknowledged before the caller writes its table, so a crash in between replays
        the input and re-derives the same events (same ids) rather than losing them."""
        name = self.settings.topic(spec.name)
        pending = []
        for e in events:
            value = self.codec.encode(e, name)
            k = (key or e.key).encode()
            if self.app is None:
                self.sent.append((spec.name, k, e))
                continue
            pending.append(await self._channel(name).send(key=k, value=value, timestamp=e.occurred_at.timestamp(),
                                                       force=True))
        for fut in pending:
            await fut

    async def dead_letter(self, message: Any, rejection: Rejection) -> None:
        record = _record(message)
        log.warning("dead letter %s/%s/%s: %s: %s", record.topic, record.partition, record.offset,
                    rejection.kind.value, rejection.reason)
        await self.publish(tp.DEAD_LETTER, [self.edge.dead_letter(record, rejection, self.clock())])


def _record(message: Any) -> Record:
    if isinstance(message, Record):
        return message
    ts = getattr(message, "timestamp", None)
    return Record(message.topic, message.partition, message.offset, message.key, message.value,
                  int(ts * 1000) if ts else None)


def _edge(settings: StreamSettings, codec: Codec, limits: Limits) -> Edge:
    return Edge(codec, {settings.topic(s.name): s for s in tp.ALL}, limits)


def _policy(settings: StreamSettings, hubs: HubPolicies) -> lifecycle.Policy | None:
    if not settings.otp_key:
        return None
    return lifecycle.Policy(otp_key=otp.key_bytes(settings.otp_key), otp_max_attempts=settings.otp_max_attempts,
                            otp_ttl=timedelta(seconds=settings.otp_ttl_s), hubs=hubs)


def create_app(settings: StreamSettings, role: str, *, codec: Codec | None = None, limits: Limits = Limits(),
               credentials: Any = None) -> Streams:
    """The Faust app of one worker role, with its agents installed. ``credentials``: Faust's
    SASL/SSL credentials, built by the entry point."""
    import faust

    from streams import faust_recovery

    if role not in ROLES:
        raise ValueError(f"unknown worker role {role!r}; roles: {', '.join(ROLES)} (tracking runs on its own)")
    if role == "orders" and not settings.otp_key:
        raise ValueError("MILESTREAM_OTP_KEY is not set: the orders worker issues delivery OTPs with it")
    if not settings.kafka_bootstrap:
        raise ValueError("MILESTREAM_KAFKA_BOOTSTRAP is empty: the worker needs a broker "
                         "(`milestream up` starts the embedded one and sets it)")
    faust_recovery.apply()
    app = faust.App(
        f"{settings.app_id}-{role}",
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
        datadir=str(Path(settings.data_dir) / f"faust-{role}"),
        autodiscover=False,
        origin="streams",
    )
    codec = codec or Codec()
    hubs = settings.parsed_hub_policies()
    streams = Streams(settings=settings, codec=codec, edge=_edge(settings, codec, limits), policy=_policy(settings, hubs),
                      app=app, hub_policies=hubs)
    for module in ROLES[role]:
        importlib.import_module(module).install(streams)
    return streams


__all__ = ["ROLES", "StreamSettings", "Streams", "create_app"]
