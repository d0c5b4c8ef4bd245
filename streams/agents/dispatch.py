"""Dispatch, keyed by hub: pools unassigned orders and free riders; a timer plans a hub once its
pool has been quiet for the batch window, then re-plans the routes being driven that a failed
delivery, a cancellation, an urgent order or a shift ended with stops left calls for
(:mod:`streams.domain.dispatch.replan`, :mod:`streams.domain.dispatch.hub`). Every solve runs in
one worker process, off the loop."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from schemas import topics as tp
from solver import SolveParams, solve
from solver.reoptimise import reoptimise
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
from streams.domain.dispatch import hub as hubs
from streams.domain.dispatch import pool as dispatch

log = logging.getLogger(__name__)
_last_change: dict[bytes, float] = {}
_executor: ProcessPoolExecutor | None = None


def _solver_pool() -> ProcessPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    return _executor


def _hub(key: bytes) -> hubs.Hub:
    return hubs.hub_state(hub_pools.get(key), key.decode())


async def handle_hub_input(message: Any) -> None:
    item = await decode(message, tp.DISPATCH_QUEUE.events, check_key=False)  # re-keyed by hub on purpose
    if item is None:
        return
    hub = message.key  # raw bytes: the table key
    hub_pools[hub] = hubs.on_hub_event(_hub(hub), item)
    _last_change[hub] = time.monotonic()


hub_dispatch = app.agent(dispatch_topic, name="hub_dispatch")(handles_each(handle_hub_input))


def _stream_now(hub: bytes, pool: dispatch.HubPool) -> float | None:
    """The hub's stream time (its latest event), moved on by the wall time it has been quiet, so
    that a held re-plan comes due without waiting for the next event."""
    if pool.clock is None:
        return None
    return pool.clock.timestamp() + max(0.0, time.monotonic() - _last_change.get(hub, time.monotonic()))


@app.timer(interval=0.5)
async def plan_quiet_hubs() -> None:
    for hub in list(hub_pools.keys()):
        if hub_pools.get(hub) is None:
            continue
        await _dispatch(hub)
        await _replan(hub)


async def _dispatch(hub: bytes) -> None:
    pool = _hub(hub).pool
    if not pool.ready or time.monotonic() - _last_change.get(hub, 0.0) < settings.dispatch_batch_window_s:
        return
    plan = dispatch.build_problem(pool)
    started = time.monotonic()
    solution = await asyncio.get_running_loop().run_in_executor(
        _solver_pool(), solve, plan.problem, SolveParams(time_limit_s=settings.dispatch_time_limit_s))
    current = _hub(hub)  # events went on arriving while the solver ran
    outcome = dispatch.apply_plan(current.pool, plan, solution)
    log.info("hub %s: planned %d orders on %d routes in %.1fs, %d unassigned", hub, len(outcome.assignments),
             len(outcome.routes), time.monotonic() - started, len(solution.unassigned))
    await publish(inbox_topic, outcome.assignments)
    await publish(routes_topic, outcome.routes)
    await publish(alerts_topic, outcome.alerts)
    hub_pools[hub] = hubs.on_dispatched(current, outcome)


async def _replan(hub: bytes) -> None:
    state = _hub(hub)
    now = _stream_now(hub, state.pool)
    if now is None or not (state.routes.pending or state.solving):
        return
    left_over = state.solving
    state, requests = hubs.start_replans(state, now)
    if not requests and not left_over:  # all held by the rate limit: nothing new to keep
        return
    hub_pools[hub] = state
    for request in requests:
        started = time.monotonic()
        try:
            solution = await asyncio.get_running_loop().run_in_executor(
                _solver_pool(), reoptimise, request.situation, request.changes, request.policy,
                SolveParams(time_limit_s=settings.dispatch_time_limit_s))
        except Exception:
            log.exception("hub %s: re-plan %s failed; its triggers wait for the next round", hub, request.request_id)
            hub_pools[hub] = hubs.fail_replan(_hub(hub), request)
            continue
        current = _hub(hub)
        now = _stream_now(hub, current.pool) or now
        current, outcome, out = hubs.finish_replan(current, request, solution, now)
        log.info("hub %s: re-plan (%s) for %s in %.1fs: %d routes, %d dropped%s", hub, request.reason,
                 ", ".join(request.riders + request.offline), time.monotonic() - started, len(out.routes),
                 len(out.alerts), " (stale: again next round)" if outcome.stale else "")
        await publish(inbox_topic, out.assignments)
        await publish(routes_topic, out.routes)
        await publish(alerts_topic, out.alerts)
        hub_pools[hub] = current
