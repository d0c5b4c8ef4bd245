"""Starts and stops the pieces of a running system: embedded broker (unless an external one is
configured), topics, the Faust worker process, and the projection writer, which owns ClickHouse
(chdb allows one engine per process) and answers read queries for ``milestream sql`` on a
loopback endpoint while it runs."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from infra.clickhouse import connect
from infra.kafka import EmbeddedBroker, confluent_config, ensure_topics, process_env
from infra.settings import Settings
from projections.writer import ProjectionWriter
from schemas import Codec, DecodeError, InvalidEvent
from schemas import topics as tp
from schemas.redact import mask_urls

log = logging.getLogger(__name__)
ENDPOINT_FILE = "sql-endpoint.json"
READ_ONLY_PREFIXES = ("select", "with", "show", "describe", "desc", "explain", "exists")


class Stack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings.require_otp_key()  # every worker seals OTPs with the same key
        self.data_dir = Path(self.settings.data_dir)
        self.broker: EmbeddedBroker | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.writer: ProjectionWriter | None = None
        self.client: Any = None
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._http: ThreadingHTTPServer | None = None

    # -- pieces ---------------------------------------------------------------------------

    def start_kafka(self) -> None:
        self.settings.make_data_dir()  # 0700: addresses, GPS traces and dead-lettered originals live here
        if not self.settings.kafka_bootstrap:
            self.broker = EmbeddedBroker(log_path=self.data_dir / "logs" / "broker.log").start()
            self.settings = dataclasses.replace(self.settings, kafka_bootstrap=self.broker.bootstrap)
        ensure_topics(self.settings)

    def start_worker(self) -> None:
        log_file = open(self.data_dir / "logs" / "worker.log", "ab")  # noqa: SIM115 - lives as long as the worker
        self.worker = subprocess.Popen([sys.executable, "-m", "streams", "worker", "-l", "info"],
                                       env=process_env(self.settings), stdout=log_file, stderr=subprocess.STDOUT,
                                       cwd=self.data_dir, start_new_session=True)

    def start_projection(self) -> None:
        self.client = connect(self.settings)
        self.writer = ProjectionWriter(
            client=self.client, database=self.settings.clickhouse_database,
            consumer_config=confluent_config(self.settings, **{"group.id": f"{self.settings.app_id}-projections"}),
            topics=[self.settings.topic(s.name) for s in tp.PROJECTED], batch_size=self.settings.projection_batch_size,
            flush_s=self.settings.projection_flush_s, lock=self.lock)
        self.writer.create_tables()
        self.writer.assign()
        self._spawn(self.writer.run, "projection", self._stop)

    def start_sql_endpoint(self) -> int:
        stack = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                sql = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                status, body = stack.read_query(sql)
                data = json.dumps(body, default=str).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        port = self._http.server_address[1]
        (self.data_dir / ENDPOINT_FILE).write_text(json.dumps({"port": port, "pid": os.getpid()}))
        self._spawn(self._http.serve_forever, "sql-endpoint")
        return int(port)

    def read_query(self, sql: str) -> tuple[int, dict[str, Any]]:
        if not sql.strip().lower().startswith(READ_ONLY_PREFIXES):
            return 400, {"error": "only read queries (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN) while the system runs"}
        try:
            with self.lock:
                result = self.client.query(sql)
            return 200, {"columns": list(result.column_names), "rows": [list(r) for r in result.result_rows]}
        except Exception as exc:  # ClickHouse errors go back to the caller as text
            return 400, {"error": mask_urls(str(exc))}

    def _spawn(self, target: Any, name: str, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # -- whole stack -----------------------------------------------------------------------

    def start(self, with_sql_endpoint: bool = True) -> Stack:
        self.start_kafka()
        self.start_worker()
        self.start_projection()
        if with_sql_endpoint:
            self.start_sql_endpoint()
        return self

    def worker_alive(self) -> bool:
        return self.worker is not None and self.worker.poll() is None

    def stop(self) -> None:
        self._stop.set()
        if self._http is not None:
            self._http.shutdown()
            (self.data_dir / ENDPOINT_FILE).unlink(missing_ok=True)
        if self.worker is not None and self.worker.poll() is None:
            self.worker.terminate()
            try:
                self.worker.wait(15)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait()
        for thread in self._threads:
            if thread.name == "projection":
                thread.join(timeout=10)
        if self.writer is not None:
            self.writer.close()
        if self.broker is not None:
            self.broker.stop()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def count_events(settings: Settings, topics: list[str], idle_s: float = 1.0, codec: Codec | None = None) -> int:
    """Distinct event ids on ``topics``, read from the start by a consumer of its own: an audit
    independent of the projection. It stops after ``idle_s`` with nothing new, never on the
    broker's end offsets (the embedded broker reports them short)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    codec = codec or Codec()
    consumer = Consumer(confluent_config(settings, **{"group.id": f"{settings.app_id}-audit-{time.time_ns()}",
                                                      "enable.auto.commit": False}))
    try:
        metadata = consumer.list_topics(timeout=10)
        consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t in topics for p in metadata.topics[t].partitions])
        ids: set[str] = set()
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < idle_s:
            batch = consumer.consume(num_messages=10000, timeout=0.2)
            if batch:
                quiet_since = time.monotonic()
            for m in batch:
                if m.error():
                    continue
                try:
                    ids.add(codec.decode(m.value()).event_id)
                except (DecodeError, InvalidEvent):
                    pass
        return len(ids)
    finally:
        consumer.close()


def query_running(data_dir: Path, sql: str, timeout_s: float = 60.0) -> dict[str, Any] | None:
    """Ask a running ``milestream up`` for a query's result; None if none is running."""
    import urllib.error
    import urllib.request

    path = data_dir / ENDPOINT_FILE
    if not path.exists():
        return None
    info = json.loads(path.read_text())
    try:
        os.kill(int(info["pid"]), 0)
    except OSError:
        path.unlink(missing_ok=True)
        return None
    req = urllib.request.Request(f"http://127.0.0.1:{info['port']}/", data=sql.encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return dict(json.loads(resp.read()))
    except urllib.error.HTTPError as exc:
        return dict(json.loads(exc.read()))
