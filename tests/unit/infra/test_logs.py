"""Log records are made safe at creation: credentials in URLs masked, control characters escaped
(a field cannot forge a line), tracebacks masked; the process writes private files."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from infra.logs import sanitize

ROOT = Path(__file__).resolve().parents[3]


def record(name: str, msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord(name, logging.WARNING, __file__, 1, msg, args or None, exc_info)


def formatted(rec: logging.LogRecord) -> str:
    return logging.Formatter("%(levelname)s %(name)s: %(message)s").format(sanitize(rec))


def test_a_url_password_in_the_message_or_an_argument_is_masked() -> None:
    out = formatted(record("infra.stack", "ClickHouse %s failed: %s", "http://u:ch-secret@ch:8123",
                           ValueError("connect to https://k:reg-secret@registry failed")))
    assert "ch-secret" not in out and "reg-secret" not in out
    assert "http://u:****@ch:8123" in out and "https://k:****@registry" in out


def test_an_id_with_control_characters_cannot_forge_a_line_or_drive_the_terminal() -> None:
    hostile = "ord-1\n2026-11-24 09:00:00 INFO streams: rider r9 delivered\x1b[2J"
    out = formatted(record("streams.app", "dead letter %s: %s", "orders/0/7", hostile))
    assert "\n" not in out and "\x1b" not in out
    assert "ord-1\\n2026-11-24" in out and "\\x1b[2J" in out


def test_a_librarys_own_multi_line_message_keeps_its_lines_but_loses_escapes() -> None:
    out = formatted(record("faust.transport.consumer", "Subscribed to topic(s): \n%s", "+---+\n| a |\x1b[0m"))
    assert out.count("\n") == 2 and "\x1b" not in out and "\\x1b[0m" in out


def test_numbers_keep_their_formats_and_odd_numbers_still_format() -> None:
    assert formatted(record("streams", "%d orders, %.1f km, %s", 3, 2.25, None)).endswith("3 orders, 2.2 km, None")
    assert formatted(record("streams", "%d cents", Decimal("12"))).endswith("12 cents")


def test_a_traceback_is_masked_and_escaped_but_keeps_its_lines() -> None:
    try:
        raise RuntimeError("POST https://u:tb-secret@registry failed for id \x1b[31mX")
    except RuntimeError as exc:
        out = formatted(record("projections.writer", "batch failed", exc=exc))
    assert "tb-secret" not in out and "\x1b" not in out
    assert "Traceback (most recent call last):\n" in out and "https://u:****@registry" in out


def test_faust_formatter_prints_a_sanitized_record_with_percent_signs_as_they_are() -> None:
    """Faust's (mode's) formatter re-applies the arguments; a sanitized record has none left."""
    from mode.utils.logging import ExtensionFormatter

    rec = sanitize(record("faust.worker", "%s done: msg %% self.args at 100%%", "http://u:fmt-secret@h"))
    out = ExtensionFormatter(fmt="%(message)s").format(rec)
    assert out == "http://u:****@h done: msg % self.args at 100%"


def test_a_bad_format_string_is_left_for_logging_to_report() -> None:
    rec = sanitize(record("streams", "%d and %d", 1))
    assert rec.msg == "%d and %d" and rec.args == (1,)


INSTALLED = r"""
import logging, os, sys, threading
from infra.logs import install
install("INFO")
data = sys.argv[1]
os.makedirs(data + "/logs")
logging.getLogger().addHandler(logging.FileHandler(data + "/logs/worker.log"))
logging.getLogger("faust.worker").info("broker %s", "kafka://u:log-secret@b:9092")
logging.getLogger("streams.agents").warning("order %s", "o\x1b]0;pwned\x07\nFAKE")
t = threading.Thread(target=lambda: (_ for _ in ()).throw(RuntimeError("thread https://a:thread-secret@h")))
t.start(); t.join()
raise RuntimeError("main https://a:main-secret@h")
"""


def test_install_makes_files_private_and_masks_logs_and_uncaught_tracebacks(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = subprocess.run([sys.executable, "-c", INSTALLED, str(data)], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 1
    log = (data / "logs" / "worker.log").read_text()
    everything = log + proc.stderr
    for secret in ("log-secret", "thread-secret", "main-secret", "\x1b", "\x07"):
        assert secret not in everything
    assert "kafka://u:****@b:9092" in log and "o\\x1b]0;pwned\\x07\\nFAKE" in log
    assert "https://a:****@h" in proc.stderr and "Exception in thread" in proc.stderr
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "logs" / "worker.log").stat().st_mode) == 0o600
