"""The rider app's decisions, pure: which stops of a (re-)planned route to drive and which parcels
leave the hub with the rider (:func:`triage`), when a planned or an unplanned break is due
(:func:`due_break`), and when the shift is over (:func:`shift_over`, :func:`holding`). The runner feeds them the
order ledger as read so far and what the rider already did."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from schemas import events as ev

S = ev.OrderStatus
SETTLED = frozenset({S.DELIVERED, S.RETURNED_TO_HUB, S.CANCELLED})
ON_BOARD = frozenset({S.OUT_FOR_DELIVERY, S.ARRIVED})


class Triage(NamedTuple):
    """A route's stops as the rider app sees them."""

    visit: tuple[ev.PlannedStop, ...]  # to drive, in the route's order (pickups and drops)
    send_out: tuple[str, ...]  # drops loaded at the route's start: out for delivery ("left_hub") when it starts
    waiting: tuple[str, ...]  # this rider's assignment is not in the ledger yet
    skipped: tuple[str, ...]  # handed over or picked up already, settled, or in another rider's box


def triage(stops: Sequence[ev.PlannedStop], rider_id: str, status: Mapping[str, S], holder: Mapping[str, str],
           handed: Collection[str], out: Collection[str]) -> Triage:
    """Which stops of a route to drive. A re-plan is computed from what dispatch knew a moment ago:
    a stop this rider already served is not visited again (a delivered or failed drop, a parcel
    already picked up), nor one settled or out with another rider (the move to this rider lost the
    race). A drop whose order has a PICKUP stop in the route is collected there (``picked_up``);
    any other drop still only assigned leaves the hub with the rider at the start. ``status`` and
    ``holder`` (the rider of the last accepted assignment) are the ledger as read so far;
    ``handed`` (drops served) and ``out`` (parcels taken: sent out for delivery) are what this
    rider's app did in the order's current attempt."""
    picked_here = {s.order_id for s in stops if s.kind is ev.StopKind.PICKUP}
    visit: list[ev.PlannedStop] = []
    send_out: list[str] = []
    waiting: list[str] = []
    skipped: list[str] = []
    for stop in stops:
        order_id = stop.order_id
        now = status.get(order_id)
        mine = holder.get(order_id) == rider_id
        if order_id in handed or now in SETTLED:
            skipped.append(order_id)
        elif stop.kind is ev.StopKind.PICKUP:
            if mine and now is S.ASSIGNED and order_id not in out:
                visit.append(stop)
            elif now in ON_BOARD or (mine and (order_id in out or now is S.FAILED)):
                skipped.append(order_id)  # collected already (by us, or it is in another box)
            else:
                waiting.append(order_id)
        elif mine and (now is S.ASSIGNED or now in ON_BOARD):
            visit.append(stop)
            if now is S.ASSIGNED and order_id not in out and order_id not in picked_here:
                send_out.append(order_id)
        elif now in ON_BOARD or (mine and now is S.FAILED):
            skipped.append(order_id)
        else:  # new, unknown yet, or assigned to (or failed by) another rider: ours is on its way
            waiting.append(order_id)
    return Triage(visit=tuple(visit), send_out=tuple(send_out), waiting=tuple(waiting), skipped=tuple(skipped))


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenOrder:
    """An order not settled yet, as the ledger says."""

    status: S
    holder: str | None = None
    returning: bool = False  # failed for good: its rider brings it back to the hub


def takeable(order: OpenOrder, rider_id: str) -> bool:
    """Work this rider could still be given: an order nobody has, one waiting for a re-attempt, or
    one of its own. Parcels in another rider's hands (assigned, on board, on the way back) are not."""
    if order.status in SETTLED:
        return False
    if order.status is S.CREATED:
        return True
    if order.status is S.FAILED:
        return not order.returning or order.holder == rider_id
    return order.holder == rider_id


def shift_over(now: datetime, shift_end: datetime, *, idle: bool, all_created: bool,
               open_orders: Iterable[OpenOrder], rider_id: str) -> bool:
    """An idle rider (back at the hub, no route in hand) goes home at the end of its shift, or
    earlier once the day's work is over: every order created, and none left it could take. A
    rider with a route finishes it first."""
    if not idle:
        return False
    if now >= shift_end:
        return True
    return all_created and not any(takeable(o, rider_id) for o in open_orders)


WORD_WAIT = timedelta(minutes=30)  # how long a failed parcel is held for the ledger's word, at most


def holding(failed_on_board: Mapping[str, datetime], status: Mapping[str, S], now: datetime) -> bool:
    """Failed parcels still in the rider's box keep it at the hub: those the ledger has as failed
    and waiting for a decision, and those it has not heard of failing yet (under load the ledger
    lags the rider by minutes; a rider going home then takes the parcel with it). Not for ever: a
    failure the ledger never takes (the order moved on meanwhile) lets the rider go after a while."""
    for o, failed_at in failed_on_board.items():
        now_is = status.get(o)
        if now_is is S.FAILED or (now_is not in SETTLED and now - failed_at < WORD_WAIT):
            return True
    return False


class DueBreak(NamedTuple):
    break_id: str | None  # None: unplanned
    duration_s: float
    scheduled: bool  # the route planned it


def due_break(now: datetime, *, route_breaks: Sequence[ev.RouteBreak], owed: Sequence[ev.PlannedBreak],
              taken: Collection[str], unplanned_at: Sequence[tuple[datetime, float]],
              lead: timedelta = timedelta(minutes=5), next_stop_at: datetime | None = None) -> DueBreak | None:
    """The break to take now, between two stops or at the hub: one the route places at most
    ``lead`` from now, unless the route places it after the stop the rider rides to next
    (``next_stop_at``, that stop's planned arrival: the app shows the break in the route's order);
    else a planned one the plan never placed once its latest start has come (the rider takes it
    anyway); else an unplanned one (time, duration) whose time has come."""
    for b in sorted(route_breaks, key=lambda b: b.start):
        if (b.break_id not in taken and b.start <= now + lead
                and (next_stop_at is None or b.start < next_stop_at)):
            return DueBreak(b.break_id, (b.end - b.start).total_seconds(), True)
    placed = {b.break_id for b in route_breaks}
    for p in owed:
        if p.break_id not in taken and p.break_id not in placed and p.latest_start <= now:
            return DueBreak(p.break_id, float(p.duration_s), False)
    for at, duration in unplanned_at:
        if at <= now:
            return DueBreak(None, duration, False)
    return None


__all__ = ["ON_BOARD", "SETTLED", "WORD_WAIT", "DueBreak", "OpenOrder", "Triage", "due_break", "holding", "shift_over",
           "takeable", "triage"]
