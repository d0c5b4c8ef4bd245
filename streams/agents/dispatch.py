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
from collections.abc import Callable, MutableMapping
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

from schemas import events as ev
from schemas import topics as tp
from solver import SolveParams, solve
from solver.model import Problem
from solver.reoptimise import reoptimise
from streams.app import Streams
from streams.domain.dispatch import departure
from streams.domain.dispatch import hub as hubs
from streams.domain.dispatch import pool as dispatch
from streams.domain.dispatch.replan import Fix
from streams.domain.hub_policy import HubPolicy

log = logging.getLogger(__name__)


class HubDispatcher:
    """One worker's dispatch: the hub states (a table), when each last changed, and the solver pool."""

    def __init__(self, streams: Streams, hub_states: MutableMapping[bytes, Any],
                 executor: Callable[[], Executor] | None = None) -> None:
        self.streams = streams
        self.hub_states = hub_states
        self.last_change: dict[bytes, float] = {}
        self.first_change: dict[bytes, float] = {}  # first change since the hub's last plan
        # A plan's outcome is published, then folded into the hub's state; events handled in between
        # would be overwritten (lost), and a rider's "out for delivery" read before its route is
        # known would be ignored (its parcels then looked movable). So the agent and the timer take
        # turns: nothing is folded while an outcome is between its publish and its write.
        self.lock = asyncio.Lock()
        # The riders' latest fixes the tracker sends (a moving rider's first of each minute): soft
        # state (a restart waits for the next), read by the plans (:meth:`hub`); not a table write
        # per fix or per tick: the state that holds them is written when a plan changes it anyway.
        self.positions: dict[bytes, dict[str, Fix]] = {}
        self._executor: Executor | None = None
        self._make_executor = executor or (lambda: ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn")))

    def executor(self) -> Executor:
        if self._executor is None:
            self._executor = self._make_executor()
        return self._executor

    def hub(self, key: bytes) -> hubs.Hub:
        """The hub's state with the riders' latest fixes in it."""
        return hubs.with_positions(hubs.hub_state(self.hub_states.get(key), key.decode()), self.positions.get(key, {}))

    async def handle_hub_input(self, message: Any) -> None:
        item = await self.streams.accept(message, rekeyed=True)  # re-keyed by hub on purpose
        if item is None:
            return
        hub = message.key  # raw bytes: the table key
        if isinstance(item, ev.GpsPing) and item.rider_id not in hubs.hub_state(self.hub_states.get(hub), hub.decode()).routes.offline:
            self.positions.setdefault(hub, {})[item.rider_id] = Fix(item.lat, item.lon, item.device_time.timestamp())
            return  # not a change to plan for: the hub stays quiet
        async with self.lock:
            self.hub_states[hub] = hubs.on_hub_event(self.hub(hub), item)
        self.last_change[hub] = time.monotonic()
        self.first_change.setdefault(hub, self.last_change[hub])

    def policy(self, hub: bytes) -> HubPolicy:
        return self.streams.hub_policies.of(hub.decode())

    def stream_now(self, hub: bytes, pool: dispatch.HubPool) -> float | None:
        """The hub's stream time (its latest event), moved on by the wall time it has been quiet, so
        that a held re-plan comes due without waiting for the next event."""
        if pool.clock is None:
            return None
        return pool.clock.timestamp() + max(0.0, time.monotonic() - self.last_change.get(hub, time.monotonic()))

    async def plan_quiet_hubs(self) -> None:
        for hub in list(self.hub_states.keys()):
            if self.hub_states.get(hub) is None:
                continue
            await self.dispatch(hub)
            await self.replan(hub)

    async def dispatch(self, hub: bytes) -> None:
        """Plan the free riders once the hub's new work has waited the batch window: quiet that long,
        or busy for twice that (a hub taking orders all day is never quiet)."""
        settings = self.streams.settings
        policy = self.policy(hub)
        pool = self.hub(hub).pool
        now = time.monotonic()
        window = settings.dispatch_batch_window_s
        if not pool.ready(policy.horizon_min * 60.0) or (
                now - self.last_change.get(hub, 0.0) < window and now - self.first_change.get(hub, now) < 2 * window):
            return
        self.first_change.pop(hub, None)
        now_s = self.stream_now(hub, pool)
        if now_s is not None:  # hub parcels go first to riders waiting at the hub to leave (a wave)
            async with self.lock:
                self.hub_states[hub] = hubs.offer_to_waiting(self.hub(hub), now_s, policy)
        state = self.hub(hub)
        pool = state.pool
        plan = dispatch.build_problem(pool, policy.horizon_min * 60.0,
                                      dispatch.travel_times(pool, policy.learned_speeds), policy.even_workload,
                                      exclude=state.to_waiting.keys())
        if not plan.orders:  # all of it offered to waiting riders: nothing for the free ones
            async with self.lock:
                current = self.hub(hub)
                if current.pool.version == pool.version:
                    self.hub_states[hub] = hubs.planned(current)
            return
        started = time.monotonic()
        solution = await asyncio.get_running_loop().run_in_executor(
            self.executor(), solve, plan.problem, SolveParams(time_limit_s=time_limit(plan.problem, settings)))
        async with self.lock:
            current = self.hub(hub)  # events went on arriving while the solver ran
            outcome = dispatch.apply_plan(current.pool, plan, solution, departure.of(policy))
            log.info("hub %s: planned %d orders on %d routes in %.1fs, %d unassigned", hub, len(outcome.assignments),
                     len(outcome.routes), time.monotonic() - started, len(solution.unassigned))
            await self._publish(outcome)
            self.hub_states[hub] = hubs.on_dispatched(current, outcome)

    async def replan(self, hub: bytes) -> None:
        settings = self.streams.settings
        policy = self.policy(hub)
        state = self.hub(hub)
        now = self.stream_now(hub, state.pool)
        if now is None:
            return
        if state.pool.pending:  # work no free rider can take: offer it to riders on routes
            async with self.lock:
                offered = hubs.offer_waiting(self.hub(hub), now, policy)
                if offered.routes.pending != self.hub(hub).routes.pending:
                    self.hub_states[hub] = offered
            state = self.hub(hub)
        if not (state.routes.pending or state.solving):
            return
        async with self.lock:
            state = self.hub(hub)
            left_over = state.solving
            state, requests = hubs.start_replans(state, now, policy)
            if not requests and not left_over:  # all held by the rate limit: nothing new to keep
                return
            self.hub_states[hub] = state
        for request in requests:
            started = time.monotonic()
            try:
                solution = await asyncio.get_running_loop().run_in_executor(
                    self.executor(), reoptimise, request.situation, request.changes, request.policy,
                    SolveParams(time_limit_s=time_limit(request.situation.problem, settings)))
            except Exception:
                log.exception("hub %s: re-plan %s failed; its triggers wait for the next round", hub,
                              request.request_id)
                async with self.lock:
                    self.hub_states[hub] = hubs.fail_replan(self.hub(hub), request)
                continue
            async with self.lock:
                current = self.hub(hub)
                now = self.stream_now(hub, current.pool) or now
                current, outcome, out = hubs.finish_replan(current, request, solution, now)
                log.info("hub %s: re-plan (%s) for %s in %.1fs: %d routes, %d dropped%s", hub, request.reason,
                         ", ".join(request.riders + request.offline), time.monotonic() - started, len(out.routes),
                         len(out.alerts), " (stale: again next round)" if outcome.stale else "")
                await self._publish(out)
                self.hub_states[hub] = current

    async def _publish(self, out: Any) -> None:
        await self.streams.publish(tp.INBOX, out.assignments)
        await self.streams.publish(tp.ROUTES, out.routes)
        await self.streams.publish(tp.ALERTS, out.alerts)


def time_limit(problem: Problem, settings: Any) -> float:
    """Search time for a plan: short for the few stops of a new order or a re-plan (a rider waits
    for it), up to the setting for a large batch."""
    return min(settings.dispatch_time_limit_s, 0.2 + 0.01 * len(problem.jobs))


def install(streams: Streams) -> HubDispatcher:
    # Written from the timer as well as the agent, so its changelog partition comes from the key.
    dispatcher = HubDispatcher(streams, streams.table("hub-pool", use_partitioner=True))
    streams.agent([tp.DISPATCH_QUEUE], "hub_dispatch", dispatcher.handle_hub_input)
    if streams.app is not None:
        streams.app.timer(interval=0.2)(dispatcher.plan_quiet_hubs)
    return dispatcher
