"""What ``milestream`` prints is safe for a terminal: control characters from event fields are
shown escaped in tables; ``milestream config`` shows no credential of any URL setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from infra.cli import _table

ROOT = Path(__file__).resolve().parents[3]


def test_table_cells_and_headers_show_control_characters_as_text() -> None:
    out = _table([["ord-\x1b[2J\x1b]0;owned\x07", "wrong\naddress", None]], ["order_id", "reason\x1b", "x"])
    assert "\x1b" not in out and "\x07" not in out
    assert "ord-\\x1b[2J\\x1b]0;owned\\x07" in out and "wrong\\naddress" in out and "reason\\x1b" in out
    assert len(out.splitlines()) == 3  # header, rule, one row: a newline in a cell adds no line


def test_table_columns_line_up_on_the_escaped_text() -> None:
    lines = _table([{"id": "a\tb", "n": 1}, {"id": "c", "n": 22}]).splitlines()
    assert len({len(line) for line in lines}) == 1


def test_config_masks_every_url_password_and_every_secret(tmp_path: Path) -> None:
    env = {**os.environ, "MILESTREAM_DATA_DIR": str(tmp_path),
           "MILESTREAM_CLICKHOUSE_DSN": "https://reporter:ch-Secret-1@ch.example:8443/milestream",
           "MILESTREAM_SCHEMA_REGISTRY_URL": "https://regkey:reg-Secret-2@registry.example",
           "MILESTREAM_KAFKA_SASL_PASSWORD": "sasl-Secret-3", "MILESTREAM_OTP_KEY": "7f" * 32}
    proc = subprocess.run([sys.executable, "-m", "infra.cli", "config"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for secret in ("ch-Secret-1", "reg-Secret-2", "sasl-Secret-3", "7f" * 32):
        assert secret not in proc.stdout + proc.stderr
    assert "https://reporter:****@ch.example:8443/milestream" in proc.stdout
    assert "https://regkey:****@registry.example" in proc.stdout
