"""Starts and stops the pieces of a running system: embedded broker (unless an external one is
configured), topics, one process per worker role (``python -m streams ROLE``: orders, dispatch,
notifications, tracking), kept running by a supervisor that restarts one that exits, and the
projection writer, which owns ClickHouse (chdb allows one engine per process) and answers read
queries for ``milestream sql`` on a loopback endpoint while it runs."""

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
from infra.kafka import EmbeddedBroker, confluent_config, ensure_topics, limits, process_env
from infra.settings import Settings
from projections.writer import ProjectionWriter
from schemas import Codec, DecodeError, InvalidEvent
from schemas import topics as tp
from schemas.redact import mask_urls

log = logging.getLogger(__name__)
WORKER_ROLES = ("orders", "dispatch", "notifications", "tracking")
RESTART_BACKOFF_S = 2.0
ENDPOINT_FILE = "sql-endpoint.json"
READ_ONLY_PREFIXES = ("select", "with", "show", "describe", "desc", "explain", "exists")


class Stack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings.require_otp_key()  # every worker seals OTPs with the same key
        self.data_dir = Path(self.settings.data_dir)
        self.broker: EmbeddedBroker | None = None
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.exits: list[tuple[str, int]] = []  # (role, exit code) of every worker that exited while running
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

    def start_worker(self, role: str) -> subprocess.Popen[bytes]:
        log_file = open(self.data_dir / "logs" / f"{role}.log", "ab")  # noqa: SIM115 - lives as long as the worker
        args = [sys.executable, "-m", "streams", role] + ([] if role == "tracking" else ["-l", "info"])
        proc = subprocess.Popen(args, env=process_env(self.settings), stdout=log_file, stderr=subprocess.STDOUT,
                                cwd=self.data_dir, start_new_session=True)
        self.workers[role] = proc
        return proc

    def start_workers(self) -> None:
        for role in WORKER_ROLES:
            self.start_worker(role)
        self._spawn(self._supervise, "supervisor")

    def _supervise(self) -> None:
        """Restart a worker that exited (Kafka failed under it, or it was killed): it resumes from its
        checkpoint. Each exit is kept in ``exits``."""
        while not self._stop.wait(0.5):
            for role, proc in list(self.workers.items()):
                code = proc.poll()
                if code is None or self._stop.is_set():
                    continue
                self.exits.append((role, code))
                log.warning("worker %s exited with code %s; restarting it (see logs/%s.log)", role, code, role)
                if self._stop.wait(RESTART_BACKOFF_S):
                    return
                self.start_worker(role)

    @property
    def worker_pids(self) -> dict[str, int]:
        return {role: proc.pid for role, proc in self.workers.items()}

    def start_projection(self) -> None:
        self.client = connect(self.settings)
        self.writer = ProjectionWriter(
            client=self.client, database=self.settings.clickhouse_database,
            consumer_config=confluent_config(self.settings, **{"group.id": f"{self.settings.app_id}-projections"}),
            topics=[self.settings.topic(s.name) for s in tp.PROJECTED], batch_size=self.settings.projection_batch_size,
            flush_s=self.settings.projection_flush_s, lock=self.lock, accept=projection_accept(self.settings))
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
        self.start_workers()
        self.start_projection()
        if with_sql_endpoint:
            self.start_sql_endpoint()
        return self

    def worker_alive(self) -> bool:
        """Every worker role has a live process (the supervisor restarts one that exits)."""
        return bool(self.workers) and all(p.poll() is None for p in self.workers.values())

    def stop(self) -> None:
        self._stop.set()
        if self._http is not None:
            self._http.shutdown()
            (self.data_dir / ENDPOINT_FILE).unlink(missing_ok=True)
        for proc in self.workers.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.workers.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
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


def count_events(settings: Settings, topics: list[str], idle_s: float = 1.0, codec: Codec | None = None,
                 first_s: float = 30.0) -> int:
    """Distinct event ids on ``topics``, read from the start by a consumer of its own: an audit
    independent of the projection. It stops after ``idle_s`` with nothing new once records came
    (up to ``first_s`` for the first: a busy broker's first answer can take seconds), never on the
    broker's end offsets (the embedded broker reports them short)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    codec = codec or Codec(registry=settings.registry_client())  # reads the registry framing too
    consumer = Consumer(confluent_config(settings, **{"group.id": f"{settings.app_id}-audit-{time.time_ns()}",
                                                      "enable.auto.commit": False}))
    try:
        metadata = consumer.list_topics(timeout=10)
        consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t in topics for p in metadata.topics[t].partitions])
        ids: set[str] = set()
        quiet_since = time.monotonic()
        patience = first_s
        while time.monotonic() - quiet_since < patience:
            batch = consumer.consume(num_messages=10000, timeout=0.2)
            if batch:
                quiet_since = time.monotonic()
                patience = idle_s
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


def projection_accept(settings: Settings) -> Any:
    """The stream edge's check for the projection: what a worker refused (and its owner
    dead-lettered) is not a fact, so it is not projected either."""
    from streams.edge import Edge, Rejection
    from streams.kafka import record_of

    # The registry framing the workers write with a registry configured; a thread may wait on a look-up.
    edge = Edge(Codec(registry=settings.registry_client()), {settings.topic(s.name): s for s in tp.ALL},
                limits(settings))

    def accept(message: Any) -> Any:
        event = edge.accept(record_of(message), time.time())
        return None if type(event) is Rejection else event

    return accept
