"""Dispatch, keyed by hub: pools unassigned orders and free riders; a timer plans a hub once its
pool has been quiet for the batch window. The solve runs in a worker process, off the loop."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from schemas import topics as tp
from solver import SolveParams, solve
from streams import dispatch
from streams.app import (
    alerts_topic,
    app,
    decode,
    dispatch_topic,
    handles_each,
    hub_pools,
    inbox_topic,
    publish,
    routes_topic,
    settings,
)

log = logging.getLogger(__name__)
_last_change: dict[bytes, float] = {}
_executor: ProcessPoolExecutor | None = None


def _solver_pool() -> ProcessPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    return _executor


async def handle_hub_input(message: Any) -> None:
    item = await decode(message, tp.DISPATCH_QUEUE.events, check_key=False)  # re-keyed by hub on purpose
    if item is None:
        return
    hub = message.key  # raw bytes: the table key
    hub_pools[hub] = dispatch.on_event(hub_pools.get(hub) or dispatch.HubPool(hub_id=hub.decode()), item)
    _last_change[hub] = time.monotonic()


hub_dispatch = app.agent(dispatch_topic, name="hub_dispatch")(handles_each(handle_hub_input))


@app.timer(interval=0.5)
async def plan_quiet_hubs() -> None:
    for hub, pool in list(hub_pools.items()):
        if pool is None or not pool.ready:
            continue
        if time.monotonic() - _last_change.get(hub, 0.0) < settings.dispatch_batch_window_s:
            continue
        plan = dispatch.build_problem(pool)
        started = time.monotonic()
        solution = await asyncio.get_running_loop().run_in_executor(
            _solver_pool(), solve, plan.problem, SolveParams(time_limit_s=settings.dispatch_time_limit_s))
        outcome = dispatch.apply_plan(hub_pools[hub], plan, solution)
        log.info("hub %s: planned %d orders on %d routes in %.1fs, %d unassigned", hub, len(outcome.assignments),
                 len(outcome.routes), time.monotonic() - started, len(solution.unassigned))
        await publish(inbox_topic, outcome.assignments)
        await publish(routes_topic, outcome.routes)
        await publish(alerts_topic, outcome.alerts)
        hub_pools[hub] = outcome.pool
