"""Credentials in URL settings never leave the settings: ``milestream config``, ``sql``, ``up`` and
``demo`` run with a password in every URL setting (the ClickHouse DSN and the schema registry,
whose stand-in on loopback requires the credentials, so they are really used) and a SASL password,
and none of it is in their output, their logs, any record of any topic they wrote, or any
ClickHouse table. The data dir they write is private (0700, files 0600)."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import stat
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from harness import Kafka, every_record, new_id, now, order_created

from infra.kafka import EmbeddedBroker, free_port
from infra.settings import Settings
from infra.stack import ENDPOINT_FILE, query_running
from schemas import events as ev

ROOT = Path(__file__).resolve().parents[2]
RUN = uuid.uuid4().hex[:8]
CH_PASS = f"chPass{RUN}"
REG_USER, REG_PASS = "registry-key", f"regPass{RUN}"
SASL_PASS = f"saslPass{RUN}"
OTP_KEY = os.urandom(32).hex()
SECRETS = [CH_PASS, REG_PASS, SASL_PASS, OTP_KEY]
MARKERS = [s.encode() for s in SECRETS] + [
    base64.b64encode(f"{REG_USER}:{REG_PASS}".encode()),  # the basic-auth header the registry gets
]
UNKNOWN_SCHEMA_ID = 987_654


class RegistryStandIn:
    """A schema registry on loopback that answers only with the right basic auth."""

    def __init__(self) -> None:
        stand_in = self
        self.schemas: dict[int, str] = {}
        self.authorised = 0
        self.refused = 0
        self.lock = threading.Lock()
        expected = "Basic " + base64.b64encode(f"{REG_USER}:{REG_PASS}".encode()).decode()

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

            def allowed(self) -> bool:
                with stand_in.lock:
                    ok = self.headers.get("Authorization") == expected
                    stand_in.authorised += ok
                    stand_in.refused += not ok
                if not ok:
                    self.reply(401, {"error_code": 401, "message": "Unauthorized"})
                return ok

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if not self.allowed():
                    return
                with stand_in.lock:
                    schema = body["schema"]
                    schema_id = next((i for i, s in stand_in.schemas.items() if s == schema), len(stand_in.schemas) + 1)
                    stand_in.schemas[schema_id] = schema
                self.reply(200, {"id": schema_id})

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                if not self.allowed():
                    return
                tail = self.path.rsplit("/", 1)[-1]
                with stand_in.lock:
                    schema = stand_in.schemas.get(int(tail)) if tail.isdigit() else None
                if schema is None:
                    return self.reply(404, {"error_code": 40403, "message": "Schema not found"})
                self.reply(200, {"schema": schema})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{REG_USER}:{REG_PASS}@127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture(scope="module")
def registry() -> Iterator[RegistryStandIn]:
    stand_in = RegistryStandIn()
    thread = threading.Thread(target=stand_in.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield stand_in
    finally:
        stand_in.server.shutdown()
        stand_in.server.server_close()


def environment(registry: RegistryStandIn, broker: EmbeddedBroker, tag: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILESTREAM_")}
    env.update({"MILESTREAM_KAFKA_BOOTSTRAP": broker.bootstrap, "MILESTREAM_TOPIC_PREFIX": f"{tag}{RUN}.",
                "MILESTREAM_APP_ID": f"{tag}{RUN}", "MILESTREAM_SCHEMA_REGISTRY_URL": registry.url,
                "MILESTREAM_KAFKA_SASL_USERNAME": "svc-milestream", "MILESTREAM_KAFKA_SASL_PASSWORD": SASL_PASS,
                "MILESTREAM_DISPATCH_BATCH_WINDOW_S": "0.5", "MILESTREAM_DISPATCH_TIME_LIMIT_S": "1", **extra})
    return env


def milestream(*args: str, env: dict[str, str], timeout_s: float = 120) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "infra.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          timeout=timeout_s)


def leaks(data: bytes) -> list[str]:
    return [m.decode() for m in MARKERS if m in data]


def files_leaking(data_dir: Path) -> dict[str, list[str]]:
    return {str(p.relative_to(data_dir)): found for p in sorted(data_dir.rglob("*"))
            if p.is_file() and (found := leaks(p.read_bytes()))}


def open_modes(data_dir: Path) -> dict[str, str]:
    """Paths under ``data_dir`` (itself included) that others could read: not 0700 / 0600."""
    wrong = {}
    for p in [data_dir, *data_dir.rglob("*")]:
        if p.is_symlink() or not p.exists():
            continue
        mode = stat.S_IMODE(p.stat().st_mode)
        if mode & 0o077:
            wrong[str(p.relative_to(data_dir)) or "."] = oct(mode)
    return wrong


def topic_records(bootstrap: str, prefixes: tuple[str, ...], idle_s: float = 2.0) -> tuple[int, list[str]]:
    """(records read, leaks found) over every record (key, value, headers) of every topic whose
    name starts with one of ``prefixes`` (our topics, Faust's changelogs, the tracker's state)."""
    count, found = 0, []
    for m in every_record(bootstrap, prefixes, idle_s):
        count += 1
        raw = (m.key() or b"") + (m.value() or b"") + b"".join(v or b"" for _, v in (m.headers() or []))
        found += [f"{m.topic()}/{m.partition()}/{m.offset()}: {leak}" for leak in leaks(raw)]
    return count, found


def table_dump(run_query: Any, database: str) -> tuple[int, list[str]]:
    """(rows read, leaks found) over every row of every table of ``database``."""
    tables = [r[0] for r in run_query(f"SELECT name FROM system.tables WHERE database = '{database}'")["rows"]]
    assert {"events", "gps_pings", "order_state", "dead_letters"} <= set(tables), tables
    count, found = 0, []
    for table in tables:
        rows = run_query(f"SELECT * FROM {database}.{table}")["rows"]
        count += len(rows)
        found += [f"{table}: {leak}" for leak in leaks(json.dumps(rows, default=str).encode())]
    return count, found


def test_config_and_sql_show_no_credential_of_any_url_setting(registry: RegistryStandIn, broker: EmbeddedBroker,
                                                              tmp_path: Path) -> None:
    dsn = f"http://reporter:{CH_PASS}@127.0.0.1:{free_port()}/milestream"  # nothing listens there
    env = environment(registry, broker, "cfg", MILESTREAM_CLICKHOUSE_DSN=dsn, MILESTREAM_OTP_KEY=OTP_KEY,
                      MILESTREAM_DATA_DIR=str(tmp_path))
    config = milestream("config", env=env)
    assert config.returncode == 0, config.stderr.decode()
    assert b"http://reporter:****@127.0.0.1" in config.stdout and b"registry-key:****@127.0.0.1" in config.stdout
    assert leaks(config.stdout + config.stderr) == []
    sql = milestream("sql", "SELECT 1", env=env)  # the error text of an unreachable server
    assert sql.returncode == 2 and b"error" in sql.stderr
    assert leaks(sql.stdout + sql.stderr) == []


def test_up_needs_an_otp_key_and_says_how_to_make_one(registry: RegistryStandIn, broker: EmbeddedBroker,
                                                      tmp_path: Path) -> None:
    proc = milestream("up", "--data-dir", str(tmp_path / "data"), env=environment(registry, broker, "nokey"))
    assert proc.returncode == 2
    assert b"MILESTREAM_OTP_KEY is not set" in proc.stderr and b"secrets.token_hex(32)" in proc.stderr
    assert not (tmp_path / "data" / ENDPOINT_FILE).exists()


def test_up_keeps_every_credential_out_of_output_logs_topics_and_clickhouse(
        registry: RegistryStandIn, broker: EmbeddedBroker, tmp_path: Path) -> None:
    data = tmp_path / "up"
    env = environment(registry, broker, "upcred", MILESTREAM_OTP_KEY=OTP_KEY)
    settings = Settings.from_env({}, kafka_bootstrap=broker.bootstrap, topic_prefix=f"upcred{RUN}.")
    kafka = Kafka(settings)
    with open(tmp_path / "up.out", "wb") as out, open(tmp_path / "up.err", "wb") as err:
        up = subprocess.Popen([sys.executable, "-m", "infra.cli", "up", "--data-dir", str(data)], cwd=ROOT, env=env,
                              stdout=out, stderr=err)
    try:
        deadline = time.monotonic() + 120
        while not (data / ENDPOINT_FILE).exists():
            assert up.poll() is None and time.monotonic() < deadline, (tmp_path / "up.err").read_text()[-3000:]
            time.sleep(0.2)
        order = order_created(hub_id=f"cred-{new_id()[:8]}")
        kafka.produce("inbox", order)
        hostile = b"\x00" + struct.pack(">I", UNKNOWN_SCHEMA_ID) + b"\x02x"
        kafka.produce("inbox", raw=hostile, key=f"ord-{new_id()}")
        ping = ev.GpsPing(event_id=new_id(), occurred_at=now(), rider_id=f"rider-{new_id()[:8]}", device_id="dev-1",
                          device_time=now(), lat=12.97, lon=77.59)
        kafka.produce("gps", ping)

        def query(sql: str) -> dict[str, Any]:
            result = query_running(data, sql)
            assert result is not None and "error" not in result, result
            return result

        # The orders worker has written the order (registry framing: it registered with the credentials)
        # and dead-lettered the unknown schema id (it asked the registry); the projection is writing.
        while True:
            assert up.poll() is None and time.monotonic() < deadline, (tmp_path / "up.err").read_text()[-3000:]
            pings = query(f"SELECT count() FROM milestream.gps_pings WHERE event_id = '{ping.event_id}'")["rows"][0][0]
            with registry.lock:
                asked = registry.authorised
            if pings and asked >= 2 and _dead_lettered(broker.bootstrap, f"upcred{RUN}.dead-letter"):
                break
            time.sleep(1.0)

        records, in_topics = topic_records(broker.bootstrap, (f"upcred{RUN}", f"upcred{RUN}."))
        rows, in_tables = table_dump(query, "milestream")
        wrong_modes = open_modes(data)
        # The registry's address did reach a stored reason: without its credentials.
        reasons = [r[0] for r in query("SELECT reason FROM milestream.dead_letters")["rows"]]
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()
    output = (tmp_path / "up.out").read_bytes() + (tmp_path / "up.err").read_bytes()
    assert b"milestream up:" in output
    assert records > 0 and rows > 0
    assert registry.refused == 0 and registry.authorised >= 2
    assert any(str(UNKNOWN_SCHEMA_ID) in r and "http://127.0.0.1:" in r for r in reasons), reasons
    assert leaks(output) == []
    assert files_leaking(data) == {}
    assert in_topics == []
    assert in_tables == []
    assert wrong_modes == {}


def _dead_lettered(bootstrap: str, topic: str) -> bool:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"probe-{new_id()}", "enable.auto.commit": False})
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        return any(not m.error() for m in consumer.consume(num_messages=100, timeout=1.0))
    finally:
        consumer.close()


def test_demo_keeps_every_credential_out_of_output_logs_topics_and_clickhouse(
        registry: RegistryStandIn, broker: EmbeddedBroker, tmp_path: Path) -> None:
    data = tmp_path / "demo"
    env = environment(registry, broker, "democred")
    demo = milestream("demo", "--orders", "12", "--riders", "2", "--speedup", "1200", "--timeout", "150",
                      "--data-dir", str(data), env=env, timeout_s=420)
    output = demo.stdout + demo.stderr
    # Whether the day settled every order is the demo's own test; here it has to have run the day
    # (its start-up lines, routes planned, riders driving) with the registry in use.
    assert b"milestream demo (default):" in output and b"ClickHouse chdb://" in output, output.decode()[-3000:]
    assert re.search(rb"routes [1-9]", demo.stderr) and re.search(rb"delivered [1-9]", demo.stderr), \
        output.decode()[-3000:]

    def query(sql: str) -> dict[str, Any]:
        proc = milestream("sql", "--data-dir", str(data), "--format", "json", sql, env=env)
        assert proc.returncode == 0, proc.stderr.decode()
        rows = json.loads(proc.stdout)
        return {"rows": [list(r.values()) for r in rows]}

    records, in_topics = topic_records(broker.bootstrap, (f"democred{RUN}", f"democred{RUN}."))
    rows, in_tables = table_dump(query, "milestream")
    assert records > 0 and rows > 0
    assert registry.refused == 0 and registry.authorised > 0
    assert leaks(output) == []
    assert files_leaking(data) == {}
    assert in_topics == []
    assert in_tables == []
    assert open_modes(data) == {}
