"""The projection writer: its own consumer group, batch -> insert -> commit.

Offsets are committed only after ClickHouse accepted the batch, so a crash replays rather than
loses; replays collapse in the ReplacingMergeTree tables and the order-state fold skips events
at or below a row's version, so nothing is counted twice.

Partitions are assigned explicitly (no group join): there is one writer per ClickHouse, and
the embedded broker holds a group join for the whole rebalance timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from projections import rows
from projections.ddl import create_statements
from schemas import Codec, DecodeError, InvalidEvent
from schemas import events as ev

log = logging.getLogger(__name__)


class ProjectionError(RuntimeError):
    """ClickHouse or Kafka failed under the projection writer."""


@dataclass
class WriterStats:
    batches: int = 0
    events: int = 0
    skipped: int = 0  # undecodable messages on device topics (the worker dead-letters them)
    last_batch_s: float = 0.0
    per_table: dict[str, int] = field(default_factory=dict)


class ProjectionWriter:
    def __init__(self, *, client: Any, database: str, consumer_config: dict[str, Any], topics: list[str],
                 codec: Codec | None = None, batch_size: int = 20000, flush_s: float = 0.5,
                 after_insert: Callable[[int], None] | None = None, lock: threading.Lock | None = None,
                 order_cache_size: int = 200_000, accept: Callable[[Any], ev.Event | None] | None = None) -> None:
        """``accept``: the stream edge's check of a consumed message (its event, or None when the
        edge refuses it, which the edge's owner has dead-lettered); by default the codec alone."""
        from confluent_kafka import Consumer

        self.client = client
        self.db = database
        self.topics = topics
        self.codec = codec or Codec()
        self.accept = accept or self._decode
        self.batch_size = batch_size
        self.flush_s = flush_s
        self.after_insert = after_insert  # hook between insert and commit (tests kill here)
        self.lock = lock or threading.Lock()
        self.stats = WriterStats()
        self._orders: OrderedDict[str, rows.OrderRow] = OrderedDict()
        self._order_cache_size = order_cache_size
        self._consumer = Consumer({**consumer_config, "enable.auto.commit": False, "auto.offset.reset": "earliest",
                                   "enable.partition.eof": False})

    def create_tables(self) -> None:
        with self.lock:
            for sql in create_statements(self.db):
                self.client.command(sql)

    def assign(self, timeout_s: float = 15.0) -> None:
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        metadata = self._consumer.list_topics(timeout=timeout_s)
        parts = []
        for topic in self.topics:
            if topic not in metadata.topics:
                raise ProjectionError(f"topic {topic} does not exist")
            parts += [TopicPartition(topic, p) for p in metadata.topics[topic].partitions]
        committed = self._consumer.committed(parts, timeout=timeout_s)
        self._consumer.assign([TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
                               for tp in committed])
        log.info("projection assigned %d partitions of %d topics", len(parts), len(self.topics))

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.step()

    def step(self) -> int:
        """Consume one batch, write it, commit. Returns the number of messages handled."""
        messages = self._consumer.consume(num_messages=self.batch_size, timeout=self.flush_s)
        messages = [m for m in messages if not m.error()]
        if not messages:
            return 0
        started = time.monotonic()
        tables = self._rows(messages)
        with self.lock:
            for table, (columns, data) in tables.items():
                if data:
                    self.client.insert(f"{self.db}.{table}", data, column_names=list(columns))
                    self.stats.per_table[table] = self.stats.per_table.get(table, 0) + len(data)
        if self.after_insert is not None:
            self.after_insert(len(messages))
        self._commit(messages)
        self.stats.batches += 1
        self.stats.events += len(messages)
        self.stats.last_batch_s = time.monotonic() - started
        return len(messages)

    def _commit(self, messages: list[Any]) -> None:
        from confluent_kafka import TopicPartition

        last: dict[tuple[str, int], int] = {}
        for m in messages:
            last[(m.topic(), m.partition())] = max(last.get((m.topic(), m.partition()), -1), m.offset())
        self._consumer.commit(offsets=[TopicPartition(t, p, o + 1) for (t, p), o in last.items()], asynchronous=False)

    def _decode(self, m: Any) -> ev.Event | None:
        try:
            return self.codec.decode(m.value())
        except (DecodeError, InvalidEvent) as exc:
            log.debug("projection skips %s/%s/%s: %s", m.topic(), m.partition(), m.offset(), exc)
            return None

    def _rows(self, messages: list[Any]) -> dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]]:
        out: dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]] = {
            "events": (rows.EVENT_COLUMNS, []), "gps_pings": (rows.GPS_COLUMNS, []),
            "dead_letters": (rows.DEAD_LETTER_COLUMNS, []), "order_state": (rows.ORDER_COLUMNS, [])}
        decoded: list[tuple[ev.Event, Any]] = []
        accept = self.accept
        for m in messages:
            event = accept(m)
            if event is None:
                self.stats.skipped += 1
                continue
            decoded.append((event, m))
        self._load_orders({e.order_id for e, _ in decoded if isinstance(e, ev.OrderEvent) and e.order_id not in self._orders})
        touched: dict[str, rows.OrderRow] = {}
        for event, m in decoded:
            out["events"][1].append(rows.event_row(event, m.topic(), m.partition(), m.offset()))
            if isinstance(event, ev.GpsPing):
                out["gps_pings"][1].append(rows.gps_row(event))
            elif isinstance(event, ev.DeadLetter):
                out["dead_letters"][1].append(rows.dead_letter_row(event))
            elif isinstance(event, ev.OrderEvent) and m.topic().endswith("orders"):
                before = self._orders.get(event.order_id)
                after = rows.fold_order(before, event, m.offset())
                if after is not None and after is not before:
                    self._remember(after)
                    touched[after.order_id] = after
        out["order_state"][1].extend(rows.order_row_values(r) for r in touched.values())
        return out

    def _remember(self, row: rows.OrderRow) -> None:
        self._orders[row.order_id] = row
        self._orders.move_to_end(row.order_id)
        while len(self._orders) > self._order_cache_size:
            self._orders.popitem(last=False)

    def _load_orders(self, order_ids: set[str]) -> None:
        """Rows of orders not in the cache, from ClickHouse (after a restart or eviction)."""
        if not order_ids:
            return
        with self.lock:
            result = self.client.query(
                f"SELECT {', '.join(rows.ORDER_COLUMNS)} FROM {self.db}.order_state FINAL WHERE order_id IN %(ids)s",
                parameters={"ids": list(order_ids)})
        for values in result.result_rows:
            # DateTime64 columns come back naive; the fold compares them with events' aware UTC times.
            values = [v.replace(tzinfo=UTC) if isinstance(v, datetime) and v.tzinfo is None else v for v in values]
            self._remember(rows.OrderRow(**dict(zip(rows.ORDER_COLUMNS, values, strict=True))))

    def close(self) -> None:
        self._consumer.close()
