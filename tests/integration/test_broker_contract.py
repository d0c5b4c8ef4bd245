"""What we rely on from the broker (embedded Tansu here; any Kafka in production)."""

from __future__ import annotations

import asyncio
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource
from harness import isolated_settings, new_id, order_created

from infra.kafka import aiokafka_config, confluent_config, ensure_topics, producer_config
from infra.settings import Settings
from infra.stack import count_events
from schemas import topics as tp
from streams.kafka import FETCH_WAIT_MS


def test_topics_are_created_with_partitions_and_retention(settings: Settings) -> None:
    own = isolated_settings(settings, "topics")
    created = ensure_topics(own)
    assert sorted(created) == sorted(own.topic(s.name) for s in tp.ALL)
    assert ensure_topics(own) == []  # idempotent
    admin = AdminClient(confluent_config(own))
    meta = admin.list_topics(timeout=10)
    assert {len(meta.topics[own.topic(s.name)].partitions) for s in tp.ALL} == {own.kafka_partitions}
    res = ConfigResource(ConfigResource.Type.TOPIC, own.topic("gps"))
    config = admin.describe_configs([res])[res].result()
    assert config["retention.ms"].value == str(tp.GPS.retention_ms)
    learned = ConfigResource(ConfigResource.Type.TOPIC, own.topic(tp.TRAVEL_TIMES.name))
    assert admin.describe_configs([learned])[learned].result()["cleanup.policy"].value == "compact"


def test_confluent_and_aiokafka_put_a_key_on_the_same_partition(settings: Settings) -> None:
    """Faust produces with aiokafka, our tools with librdkafka: keys must agree (murmur2)."""
    own = isolated_settings(settings, "part")
    ensure_topics(own, (tp.GPS,))
    topic = own.topic("gps")
    keys = [f"rider-{i}" for i in range(40)]
    producer = Producer(producer_config(own))
    seen: dict[str, int] = {}
    for k in keys:
        producer.produce(topic, key=k.encode(), value=b"x", on_delivery=lambda err, m: seen.__setitem__(m.key().decode(), m.partition()))
    producer.flush(10)

    async def aiokafka_partitions() -> dict[str, int]:
        from aiokafka import AIOKafkaProducer

        p = AIOKafkaProducer(**aiokafka_config(own))
        await p.start()
        try:
            return {k: (await (await p.send(topic, key=k.encode(), value=b"y"))).partition for k in keys}
        finally:
            await p.stop()

    assert asyncio.run(aiokafka_partitions()) == seen
    assert len(set(seen.values())) == own.kafka_partitions


def test_assign_and_commit_without_group_join(settings: Settings) -> None:
    own = isolated_settings(settings, "commit")
    ensure_topics(own, (tp.ORDERS,))
    topic = own.topic("orders")
    producer = Producer(producer_config(own))
    for i in range(10):
        producer.produce(topic, key=b"k", value=str(i).encode(), partition=0)
    producer.flush(10)
    group = f"g-{uuid.uuid4().hex}"
    c = Consumer(confluent_config(own, **{"group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest"}))
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    while len(got) < 10:
        got += [m for m in c.consume(10, timeout=2) if not m.error()]
    c.commit(offsets=[TopicPartition(topic, 0, got[6].offset() + 1)], asynchronous=False)
    c.close()
    c2 = Consumer(confluent_config(own, **{"group.id": group}))
    assert c2.committed([TopicPartition(topic, 0)], timeout=10)[0].offset == 7
    c2.close()


def test_counting_does_not_trust_end_offsets(settings: Settings) -> None:
    """Tansu reports the high watermark short after multi-record batches (base offset of the
    last batch + 1). Our audit counts by reading, so it is exact anyway."""
    from harness import CODEC

    own = isolated_settings(settings, "hw")
    ensure_topics(own, (tp.INBOX,))
    topic = own.topic("inbox")
    producer = Producer(producer_config(own, **{"linger.ms": 50}))
    for _ in range(500):
        o = order_created(order_id="one-key")
        producer.produce(topic, key=o.key.encode(), value=CODEC.encode(o))
    producer.flush(10)
    c = Consumer(confluent_config(own, **{"group.id": new_id()}))
    partition = c.list_topics(topic, timeout=10).topics[topic].partitions
    high = sum(c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partition)
    c.close()
    assert count_events(own, [topic]) == 500
    assert high <= 500  # reported short here; never more than what was written


def test_a_short_fetch_wait_reads_nothing_from_a_long_partition_ours_reads_it_all(settings: Settings) -> None:
    """Tansu's time to answer a fetch grows with the partition's length in batches (whatever offset
    is asked for), and it answers empty when the fetch's wait runs out first. A GPS partition is a long run of small batches by noon
    of a continuous day: the tracker, then fetching with a 5 ms wait, stopped reading pings for
    good. Every consumer of ours waits FETCH_WAIT_MS and still gets its data at once."""
    own = isolated_settings(settings, "fetchwait")
    ensure_topics(own, (tp.GPS,))
    topic = own.topic("gps")
    n = 20_000
    producer = Producer(producer_config(own, **{"linger.ms": 0, "batch.num.messages": 1}))  # one batch each
    for i in range(n):
        producer.produce(topic, key=b"rider-1", value=b"x" * 120, partition=0)
        if i % 100 == 0:
            producer.poll(0)
    producer.flush(60)

    def read(wait_ms: int, within_s: float) -> tuple[int, float]:
        c = Consumer(confluent_config(own, **{"group.id": new_id(), "fetch.wait.max.ms": wait_ms}))
        c.assign([TopicPartition(topic, 0, 0)])
        got, started = 0, time.monotonic()
        while got < n and time.monotonic() - started < within_s:
            got += sum(1 for m in c.consume(10_000, 0.2) if not m.error())
        c.close()
        return got, time.monotonic() - started

    short, _ = read(5, 5.0)
    ours, took = read(FETCH_WAIT_MS, 30.0)
    assert short < n // 2  # the quirk: if this fails, Tansu fixed it
    assert ours == n and took < 10.0
