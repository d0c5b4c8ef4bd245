"""The day's scorecard, pure: folds what the runner reads back (the order ledger, the routes) and
the simulator's ground truth (when riders really reached a door, how long they drove, the breaks
they took) into the figures the issue's targets name.

Assignment wait: in event time, from the moment dispatch owes an order a rider to its next
``OrderAssigned``. That moment is ``OrderCreated`` (or, for an order the rolling horizon holds
back, its window's start minus the hub's horizon), a re-attempt's ``AttemptDecided`` (or its
window's start minus the horizon) and, for a customer's slot, the ``OrderUpdated`` carrying it.
Planned-arrival error: for each delivered order, the ``planned_arrival`` of its drop in the last
route read before the rider reached the door, against the true arrival."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from schemas import events as ev

S = ev.OrderStatus


@dataclass(slots=True)
class _Order:
    created: ev.OrderCreated
    status: S = S.CREATED
    owed_since: datetime | None = None  # dispatch owes it a rider since
    attempts: int = 0  # out for delivery, accepted
    delivered_at: datetime | None = None
    awaiting_slot: bool = False
    plan: datetime | None = None  # planned arrival at its drop, last route read
    taken: list[datetime] = field(default_factory=list)  # when it went out for delivery (collected)
    reached: list[tuple[datetime, datetime | None]] = field(default_factory=list)  # (true arrival, plan then)


def _quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


class Scorecard:
    """Feed it every ledger event and route read back (:meth:`ledger`, :meth:`route`) and the
    truth (:meth:`reached`, :meth:`on_shift`, :meth:`on_route`, :meth:`took_break`);
    :meth:`summary` gives the figures. ``horizon_min`` maps a hub to its planning horizon."""

    def __init__(self, orders: Sequence[ev.OrderCreated], shifts: Sequence[ev.RiderShiftStarted],
                 horizon_min: Mapping[str, float] | float = 120.0) -> None:
        self._orders = {o.order_id: _Order(created=o) for o in orders}
        self._horizon = horizon_min
        self._shifts = list(shifts)
        self._waits: list[float] = []
        self._reattempt_waits: list[float] = []
        self._seen: set[str] = set()
        self.routes = 0
        self.pickup_before_drop_violations = 0
        self._uncollected_drops: dict[tuple[str, str], datetime] = {}  # (route event id, order) -> planned at
        self._breaks_in_routes: set[str] = set()
        self._breaks_taken: list[tuple[str | None, bool]] = []
        self._shift_s = 0.0
        self._route_s = 0.0

    def _horizon_of(self, hub_id: str) -> timedelta:
        h = self._horizon if isinstance(self._horizon, int | float) else self._horizon.get(hub_id, 120.0)
        return timedelta(minutes=float(h))

    def _owe(self, o: _Order, since: datetime, window_start: datetime | None) -> None:
        if window_start is not None:
            since = max(since, window_start - self._horizon_of(o.created.hub_id))
        o.owed_since = since

    # ---- what the runner reads back ----------------------------------------------------------

    def ledger(self, event: ev.Event) -> None:
        """One order-ledger event (a redelivered one is ignored)."""
        if event.event_id in self._seen:
            return
        self._seen.add(event.event_id)
        o = self._orders.get(getattr(event, "order_id", ""))
        if o is None:
            return
        match event:
            case ev.OrderCreated():
                self._owe(o, event.occurred_at, event.window_start)
            case ev.OrderAssigned():
                if o.owed_since is not None:
                    wait = max(0.0, (event.occurred_at - o.owed_since).total_seconds())
                    (self._reattempt_waits if o.attempts else self._waits).append(wait)
                    o.owed_since = None
                o.status = S.ASSIGNED
            case ev.StatusChanged():
                o.status = event.to_status
                if event.to_status is S.OUT_FOR_DELIVERY:
                    o.attempts += 1
                    o.taken.append(event.occurred_at)
                elif event.to_status is S.DELIVERED:
                    o.delivered_at = event.occurred_at
            case ev.AttemptDecided():
                if event.decision is ev.AttemptDecision.REATTEMPT:
                    self._owe(o, event.occurred_at, event.window_start)
                elif event.decision is ev.AttemptDecision.AWAIT_CUSTOMER_SLOT:
                    o.awaiting_slot = True
            case ev.OrderUpdated():
                if o.awaiting_slot and event.window_start is not None:
                    o.awaiting_slot = False
                    self._owe(o, event.occurred_at, event.window_start)
            case ev.OrderCancelled():
                o.status = S.CANCELLED
                o.owed_since = None
            case _:
                pass

    def hyperlocal_missing_pickup(self) -> int:
        """Routes with a hyperlocal drop but not its pickup, planned before the parcel was collected."""
        return sum(1 for (_, order_id), planned in self._uncollected_drops.items()
                   if not any(t <= planned for t in self._orders[order_id].taken))

    def route(self, route: ev.RoutePlanned) -> None:
        """A route read back: each PICKUP before its DROP; a hyperlocal order not collected yet
        needs its PICKUP; remember each drop's planned arrival."""
        if route.event_id in self._seen:
            return
        self._seen.add(route.event_id)
        self.routes += 1
        drops = {s.order_id: i for i, s in enumerate(route.stops) if s.kind is ev.StopKind.DROP}
        pickups = {s.order_id: i for i, s in enumerate(route.stops) if s.kind is ev.StopKind.PICKUP}
        for order_id, i in pickups.items():
            if drops.get(order_id, -1) < i:
                self.pickup_before_drop_violations += 1
        for stop in route.stops:
            o = self._orders.get(stop.order_id)
            if stop.kind is not ev.StopKind.DROP or o is None:
                continue
            o.plan = stop.planned_arrival
            if (o.created.mode is ev.DeliveryMode.HYPERLOCAL and o.status in (S.CREATED, S.ASSIGNED)
                    and stop.order_id not in pickups):  # judged at the end: the pickup may be read after the route
                self._uncollected_drops[route.event_id, stop.order_id] = route.occurred_at
        self._breaks_in_routes.update(b.break_id for b in route.breaks)

    # ---- the truth ----------------------------------------------------------------------------

    def reached(self, order_id: str, at: datetime) -> None:
        """A rider really reached the order's door at ``at``."""
        o = self._orders.get(order_id)
        if o is not None:
            o.reached.append((at, o.plan))

    def on_shift(self, seconds: float) -> None:
        self._shift_s += seconds

    def on_route(self, seconds: float) -> None:
        """Time a rider spent away from the hub on routes (driving, serving, breaks out there)."""
        self._route_s += seconds

    def took_break(self, break_id: str | None, scheduled: bool) -> None:
        self._breaks_taken.append((break_id, scheduled))

    # ---- the figures --------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        orders = list(self._orders.values())
        count = {s: sum(1 for o in orders if o.status is s) for s in S}
        delivered = [o for o in orders if o.status is S.DELIVERED]
        tried = [o for o in orders if o.attempts >= 1]
        retried = [o for o in orders if o.attempts >= 2]
        hyper = [o for o in delivered if o.created.mode is ev.DeliveryMode.HYPERLOCAL]
        on_promise = [o for o in hyper if o.delivered_at is not None and o.created.promise_min is not None
                      and o.delivered_at <= o.created.occurred_at + timedelta(minutes=o.created.promise_min)]
        errors = [(at - plan).total_seconds() for o in delivered if o.reached
                  for at, plan in o.reached[-1:] if plan is not None]
        waits = self._waits + self._reattempt_waits
        # last-mile parcels delivered at the first attempt, against the window the customer chose
        first = [o for o in delivered if o.created.mode is ev.DeliveryMode.LAST_MILE and o.attempts == 1
                 and o.delivered_at is not None]

        def share(part: int, whole: int) -> float | None:
            return round(part / whole, 4) if whole else None

        def rounded(x: float | None, nd: int = 1) -> float | None:
            return None if x is None else round(x, nd)

        return {
            "orders_created": len(orders),
            "settled": count[S.DELIVERED] + count[S.RETURNED_TO_HUB] + count[S.CANCELLED],
            "delivered": count[S.DELIVERED], "returned": count[S.RETURNED_TO_HUB], "cancelled": count[S.CANCELLED],
            "failed_unresolved": count[S.FAILED],
            "never_assigned": sum(1 for o in orders if o.owed_since is not None and o.status is not S.CANCELLED),
            "assign_median_s": rounded(_quantile(waits, 0.5)), "assign_p95_s": rounded(_quantile(waits, 0.95)),
            "assign_max_s": rounded(max(waits) if waits else None),
            "reattempt_assign_median_s": rounded(_quantile(self._reattempt_waits, 0.5)),
            "assignments_measured": len(waits),
            "hyperlocal_delivered": len(hyper), "hyperlocal_on_promise": share(len(on_promise), len(hyper)),
            "fleet_utilisation": share(round(self._route_s), round(self._shift_s)),
            "deliveries_per_rider_hour": rounded(len(delivered) / (self._shift_s / 3600), 2) if self._shift_s else None,
            "last_mile_before_window": share(sum(1 for o in first if o.delivered_at < o.created.window_start), len(first)),
            "last_mile_after_window": share(sum(1 for o in first if o.delivered_at > o.created.window_end), len(first)),
            "first_attempt_success": share(sum(1 for o in delivered if o.attempts == 1), len(tried)),
            "reattempt_success": share(sum(1 for o in retried if o.status is S.DELIVERED), len(retried)),
            "reattempted": len(retried),
            "routes_planned": self.routes,
            "pickup_before_drop_violations": self.pickup_before_drop_violations,
            "hyperlocal_missing_pickup": self.hyperlocal_missing_pickup(),
            "breaks_planned": sum(len(s.breaks) for s in self._shifts),
            "breaks_in_routes": len(self._breaks_in_routes),
            "breaks_taken": sum(1 for b, _ in self._breaks_taken if b is not None),
            "breaks_taken_as_planned": sum(1 for b, sched in self._breaks_taken if b is not None and sched),
            "unplanned_breaks": sum(1 for b, _ in self._breaks_taken if b is None),
            "planned_arrival_mae_s": rounded(statistics.fmean(abs(e) for e in errors) if errors else None),
            "planned_arrival_bias_s": rounded(statistics.fmean(errors) if errors else None),
            "planned_arrivals_scored": len(errors),
        }


__all__ = ["Scorecard"]
