"""When a rider leaves the hub, pure: a route of hub parcels that is neither full nor tight waits at
the hub a little for more parcels (a wave), instead of leaving with one parcel as soon as it is
planned and coming back for the next. The orders are assigned at once; only the departure waits,
and a re-plan can add parcels to the waiting route meanwhile.

A route with a pickup elsewhere (a store's order) leaves at once: its promise is short."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from schemas import events as ev
from streams.domain.hub_policy import HubPolicy


@dataclass(frozen=True, slots=True, kw_only=True)
class Hold:
    """A hub's departure rule (from :class:`streams.domain.hub_policy.HubPolicy`)."""

    max_wait_s: float = 0.0  # at most this long after the route was first planned (0: leave at once)
    full_drops: int = 8  # a route with this many drops leaves at once
    slack_s: float = 1800.0  # every drop keeps at least this much time before its window closes


NO_HOLD = Hold()


def of(policy: HubPolicy) -> Hold:
    return Hold(max_wait_s=policy.hold_min * 60.0, full_drops=policy.hold_full_drops,
                slack_s=policy.hold_slack_min * 60.0)


@dataclass(frozen=True, slots=True)
class StopTimes:
    kind: ev.StopKind
    arrival_s: float
    window_start_s: float | None = None
    window_end_s: float | None = None


def hold_s(now_s: float, stops: Sequence[StopTimes], held_since_s: float, hold: Hold) -> float:
    """How long after ``now_s`` a route that leaves the hub now should leave instead (0: now).

    At most ``hold.max_wait_s`` after ``held_since_s``, and never past the moment a drop would come
    closer than ``hold.slack_s`` to its window's end. (How early a rider commits to a window that
    opens later is the planning horizon's business, not the wave's.)"""
    drops = [s for s in stops if s.kind is ev.StopKind.DROP]
    if (hold.max_wait_s <= 0 or not drops or len(drops) >= hold.full_drops
            or any(s.kind is ev.StopKind.PICKUP for s in stops)):
        return 0.0
    wanted = held_since_s + hold.max_wait_s - now_s
    ends = [s.window_end_s - max(s.arrival_s, s.window_start_s or s.arrival_s) for s in drops
            if s.window_end_s is not None]
    room = min(ends, default=math.inf) - hold.slack_s
    return max(0.0, min(wanted, room))


def later(breaks: Sequence[ev.RouteBreak], seconds: float) -> tuple[ev.RouteBreak, ...]:
    """A held route's breaks, moved with the rest of it."""
    by = timedelta(seconds=seconds)
    return tuple(dataclasses.replace(b, start=b.start + by, end=b.end + by) for b in breaks)
