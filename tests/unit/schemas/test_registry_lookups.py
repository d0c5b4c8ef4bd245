"""Schema-registry look-ups: cached hits and misses, a short timeout, no request on the decode path
once an id is known, credentials kept out of every text. Against a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from schemas import events as ev
from schemas.codec import Codec, RegistryError, SchemaRegistryClient, UnknownSchema

PING = ev.GpsPing(event_id="e-gps-1", occurred_at=datetime(2026, 11, 24, 9, tzinfo=UTC), rider_id="r1",
                  device_id="d1", device_time=datetime(2026, 11, 24, 9, tzinfo=UTC), lat=12.97, lon=77.59)
USER, PASSWORD = "reg-user", "reg-Pa55-word"
SLOW_ID = 7000  # the stand-in answers this id only after SLOW_S
SLOW_S = 1.5


class Registry:
    """A registry stand-in: basic auth required, every GET counted by path."""

    def __init__(self) -> None:
        registry = self
        self.schemas: dict[int, str] = {}
        self.gets: Counter[str] = Counter()
        self.auth_seen: list[str | None] = []
        self.lock = threading.Lock()
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def authorised(self) -> bool:
                with registry.lock:
                    registry.auth_seen.append(self.headers.get("Authorization"))
                if self.headers.get("Authorization") != expected:
                    self.reply(401, {"error_code": 401, "message": "Unauthorized"})
                    return False
                return True

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                if not self.authorised():
                    return
                schema = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["schema"]
                with registry.lock:
                    schema_id = next((i for i, s in registry.schemas.items() if s == schema), len(registry.schemas) + 1)
                    registry.schemas[schema_id] = schema
                self.reply(200, {"id": schema_id})

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                with registry.lock:
                    registry.gets[self.path] += 1
                if not self.authorised():
                    return
                schema_id = int(self.path.rsplit("/", 1)[-1])
                if schema_id == SLOW_ID:
                    time.sleep(SLOW_S)
                with registry.lock:
                    schema = registry.schemas.get(schema_id)
                if schema is None:
                    return self.reply(404, {"error_code": 40403, "message": f"Schema {schema_id} not found"})
                self.reply(200, {"schema": schema})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://{USER}:{PASSWORD}@127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def requests_for(self, schema_id: int) -> int:
        with self.lock:
            return self.gets[f"/schemas/ids/{schema_id}"]


@pytest.fixture
def registry() -> Iterator[Registry]:
    reg = Registry()
    reg.thread.start()
    try:
        yield reg
    finally:
        reg.server.shutdown()
        reg.server.server_close()


def framed(schema_id: int, body: bytes) -> bytes:
    return b"\x00" + struct.pack(">I", schema_id) + body


def produced(registry: Registry) -> tuple[bytes, int]:
    """A ping in the Confluent framing, registered by a producer of its own; and its schema id."""
    data = Codec(registry=SchemaRegistryClient(registry.url)).encode(PING, topic="t.gps")
    return data, struct.unpack(">I", data[1:5])[0]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_credentials_in_the_url_go_as_basic_auth_and_nowhere_else(registry: Registry) -> None:
    client = SchemaRegistryClient(registry.url)
    data, schema_id = produced(registry)
    assert Codec(registry=client).decode(data) == PING
    assert PASSWORD not in client.url and PASSWORD not in repr(client)
    assert client.url == f"http://127.0.0.1:{registry.port}"
    assert set(registry.auth_seen) == {"Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}


def test_a_found_schema_is_fetched_once_per_client(registry: Registry) -> None:
    data, schema_id = produced(registry)
    codec = Codec(registry=SchemaRegistryClient(registry.url))
    assert codec.missing_schema_id(data) == schema_id
    for _ in range(5):
        assert codec.decode(data) == PING
    assert registry.requests_for(schema_id) == 1
    assert codec.missing_schema_id(data) is None


def test_an_unknown_id_is_asked_once_then_refused_from_the_cache(registry: Registry) -> None:
    data, _ = produced(registry)
    hostile = framed(4242, data[5:])
    codec = Codec(registry=SchemaRegistryClient(registry.url, miss_ttl_s=60))
    assert codec.missing_schema_id(hostile) == 4242
    with pytest.raises(UnknownSchema, match="4242 not found"):
        codec.decode(hostile)
    assert codec.missing_schema_id(hostile) is None  # a remembered miss needs no request
    for _ in range(20):
        with pytest.raises(UnknownSchema):
            codec.decode(hostile)
    assert registry.requests_for(4242) == 1


def test_a_miss_is_asked_again_once_its_ttl_has_passed(registry: Registry) -> None:
    clock = Clock()
    codec = Codec(registry=SchemaRegistryClient(registry.url, miss_ttl_s=30, clock=clock))
    data, _ = produced(registry)
    late = framed(99, data[5:])
    with pytest.raises(UnknownSchema):
        codec.decode(late)
    clock.now += 29
    assert codec.missing_schema_id(late) is None
    clock.now += 2
    assert codec.missing_schema_id(late) == 99
    with registry.lock:  # the schema shows up in the meantime
        registry.schemas[99] = registry.schemas[struct.unpack(">I", data[1:5])[0]]
    assert codec.decode(late) == PING
    assert registry.requests_for(99) == 2


def test_a_slow_registry_costs_one_timeout_per_id_and_ttl(registry: Registry) -> None:
    data, _ = produced(registry)
    slow = framed(SLOW_ID, data[5:])
    codec = Codec(registry=SchemaRegistryClient(registry.url, timeout_s=0.3))
    started = time.monotonic()
    with pytest.raises(UnknownSchema, match="timed out"):
        codec.decode(slow)
    first = time.monotonic() - started
    assert first < SLOW_S - 0.5, f"the look-up waited {first:.2f}s, past its 0.3s timeout"
    started = time.monotonic()
    with pytest.raises(UnknownSchema):
        codec.decode(slow)
    assert time.monotonic() - started < 0.05
    assert registry.requests_for(SLOW_ID) == 1


def test_an_edge_that_fetches_first_never_has_decode_request(registry: Registry) -> None:
    data, schema_id = produced(registry)
    codec = Codec(registry=SchemaRegistryClient(registry.url), fetch_on_decode=False)
    with pytest.raises(UnknownSchema, match="not been looked up"):
        codec.decode(data)
    assert registry.requests_for(schema_id) == 0
    codec.fetch_schema(codec.missing_schema_id(data))  # type: ignore[arg-type]
    assert codec.decode(data) == PING
    assert registry.requests_for(schema_id) == 1


def test_the_event_loop_keeps_running_while_an_unknown_id_is_fetched_in_an_executor(registry: Registry) -> None:
    """The async edge's pattern: missing_schema_id on the loop, fetch in an executor, then decode."""
    data, _ = produced(registry)
    slow = framed(SLOW_ID, data[5:])
    codec = Codec(registry=SchemaRegistryClient(registry.url, timeout_s=1.0), fetch_on_decode=False)

    async def day() -> tuple[int, str]:
        ticks = 0

        async def heartbeat() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.05)
                ticks += 1

        beat = asyncio.get_running_loop().create_task(heartbeat())
        if (schema_id := codec.missing_schema_id(slow)) is not None:
            await asyncio.get_running_loop().run_in_executor(None, codec.fetch_schema, schema_id)
        try:
            codec.decode(slow)
            outcome = "decoded"
        except UnknownSchema as exc:
            outcome = str(exc)
        beat.cancel()
        return ticks, outcome

    ticks, outcome = asyncio.run(day())
    assert ticks >= 10  # ~1 s of 50 ms ticks while the registry sat on the request
    assert "timed out" in outcome


def test_an_unreachable_registry_is_a_remembered_miss_without_the_password(registry: Registry) -> None:
    registry.server.shutdown()
    registry.server.server_close()
    client = SchemaRegistryClient(registry.url, timeout_s=0.5)
    found = client.fetch(5)
    assert found.schema is None and found.reason
    assert client.cached(5) == found
    with pytest.raises(RegistryError) as info:
        client.register("t.gps-x", "{}")
    for text in (found.reason, str(info.value)):
        assert PASSWORD not in text and "127.0.0.1" in text


def test_error_texts_and_reasons_never_carry_the_password(registry: Registry) -> None:
    wrong = SchemaRegistryClient(f"http://{USER}:not-{PASSWORD}@127.0.0.1:{registry.port}")
    with pytest.raises(RegistryError, match="401") as info:
        wrong.register("t.gps-x", json.dumps({"type": "string"}))
    assert PASSWORD not in str(info.value)
    codec = Codec(registry=wrong)
    with pytest.raises(UnknownSchema) as refused:
        codec.decode(framed(1, b"\x00"))
    assert "401" in str(refused.value) and PASSWORD not in str(refused.value)


def test_a_flood_of_distinct_unknown_ids_keeps_the_miss_cache_bounded(registry: Registry) -> None:
    client = SchemaRegistryClient(registry.url)
    client.MAX_MISSES = 50
    for schema_id in range(10_000, 10_120):
        client.fetch(schema_id)
    assert len(client._missed) <= 50  # noqa: SLF001
    assert client.cached(10_119) is not None  # the newest misses are the ones kept


def test_a_registry_schema_that_is_not_ours_is_refused_from_then_on_without_requests(registry: Registry) -> None:
    foreign = json.dumps({"type": "record", "name": "Invoice", "namespace": "acme", "fields": [
        {"name": "id", "type": "string"}]})
    schema_id = SchemaRegistryClient(registry.url).register("acme-invoices-value", foreign)
    codec = Codec(registry=SchemaRegistryClient(registry.url))
    for _ in range(3):
        with pytest.raises(UnknownSchema, match="not a milestream event"):
            codec.decode(framed(schema_id, b"\x04ab"))
    assert codec.missing_schema_id(framed(schema_id, b"\x04ab")) is None
    assert registry.requests_for(schema_id) == 1
