"""ClickHouse through clickhouse-connect, always: chdb:///path (embedded) or http(s):// (server).

chdb allows one engine per process: the process that runs the projection writer owns it, and
``milestream sql`` asks that process (over a loopback endpoint) while it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infra.settings import Settings


def connect(settings: Settings) -> Any:
    import clickhouse_connect

    dsn = settings.resolved_clickhouse_dsn
    if dsn.startswith("chdb://"):
        Path(dsn.removeprefix("chdb://")).mkdir(mode=0o700, parents=True, exist_ok=True)
    return clickhouse_connect.get_client(dsn=dsn)
