"""Fixtures for the schema tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from schemas.codec import SCHEMA_DIR


@pytest.fixture
def schema_dir(tmp_path: Path) -> Path:
    """A copy of the real schema folder (current + released) to change on purpose."""
    target = tmp_path / "schemas"
    target.mkdir()
    for path in SCHEMA_DIR.glob("*.avsc"):
        shutil.copy(path, target / path.name)
    shutil.copytree(SCHEMA_DIR / "released", target / "released")
    return target
