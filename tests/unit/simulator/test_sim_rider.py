"""The rider app's pure decisions: which stops of a route to drive (pickups before their drops,
parcels loaded at the hub sent out when the route starts), when a break is due, and when the
shift is over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas import events as ev
from simulator import rider as ra

S = ev.OrderStatus
ME, OTHER = "rider-1", "rider-2"
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def stop(order_id: str, kind: ev.StopKind = ev.StopKind.DROP) -> ev.PlannedStop:
    return ev.PlannedStop(order_id=order_id, kind=kind, lat=0.0, lon=0.0, planned_arrival=T0, service_time_s=60)


PICK = ev.StopKind.PICKUP


@pytest.mark.parametrize(("status", "holder", "handed", "out", "expected"), [
    (S.ASSIGNED, ME, (), (), ("visit", True)),
    (S.ASSIGNED, ME, (), ("o",), ("visit", False)),  # our own out_for_delivery not read back yet
    (S.OUT_FOR_DELIVERY, ME, (), ("o",), ("visit", False)),
    (S.ARRIVED, ME, (), ("o",), ("visit", False)),
    (S.OUT_FOR_DELIVERY, ME, ("o",), ("o",), ("skip", False)),  # delivered, the ledger lags
    (S.FAILED, ME, ("o",), ("o",), ("skip", False)),
    (S.DELIVERED, OTHER, (), (), ("skip", False)),  # the re-plan lost the race to a delivery
    (S.OUT_FOR_DELIVERY, OTHER, (), (), ("skip", False)),  # in another box: the move is rejected
    (S.ASSIGNED, OTHER, (), (), ("wait", False)),  # our assignment (the move) is on its way
    (S.CREATED, None, (), (), ("wait", False)),
    (None, None, (), (), ("wait", False)),
])
def test_triage_of_a_drop(status: S | None, holder: str | None, handed: tuple[str, ...], out: tuple[str, ...],
                          expected: tuple[str, bool]) -> None:
    t = ra.triage((stop("o"),), ME, {"o": status} if status else {}, {"o": holder} if holder else {},
                  set(handed), set(out))
    where = "visit" if t.visit else "skip" if t.skipped else "wait"
    assert (where, bool(t.send_out)) == expected
    assert len(t.visit) + len(t.skipped) + len(t.waiting) == 1


def test_a_drop_with_its_pickup_in_the_route_is_collected_there_not_loaded_at_the_hub() -> None:
    stops = (stop("h", PICK), stop("a"), stop("h"), stop("b"))
    t = ra.triage(stops, ME, dict.fromkeys("abh", S.ASSIGNED), dict.fromkeys("abh", ME), set(), set())
    assert [(s.order_id, s.kind) for s in t.visit] == [("h", PICK), ("a", ev.StopKind.DROP), ("h", ev.StopKind.DROP),
                                                        ("b", ev.StopKind.DROP)]
    assert t.send_out == ("a", "b")


@pytest.mark.parametrize(("status", "holder", "out", "expected"), [
    (S.ASSIGNED, ME, (), "visit"),
    (S.ASSIGNED, ME, ("h",), "skip"),  # picked up already; the ledger has not caught up
    (S.OUT_FOR_DELIVERY, ME, ("h",), "skip"),
    (S.OUT_FOR_DELIVERY, OTHER, (), "skip"),
    (S.ASSIGNED, OTHER, (), "wait"),
    (S.CREATED, None, (), "wait"),
])
def test_triage_of_a_pickup(status: S, holder: str | None, out: tuple[str, ...], expected: str) -> None:
    t = ra.triage((stop("h", PICK),), ME, {"h": status}, {"h": holder} if holder else {}, set(), set(out))
    assert ("visit" if t.visit else "skip" if t.skipped else "wait") == expected
    assert t.send_out == ()


def test_a_picked_up_order_keeps_its_drop_in_a_replan_without_the_pickup() -> None:
    t = ra.triage((stop("h"),), ME, {"h": S.OUT_FOR_DELIVERY}, {"h": ME}, set(), {"h"})
    assert [s.order_id for s in t.visit] == ["h"] and t.send_out == ()


def test_triage_keeps_the_route_order() -> None:
    stops = tuple(stop(o) for o in "abcd")
    status = dict.fromkeys("abcd", S.ASSIGNED) | {"c": S.DELIVERED}
    t = ra.triage(stops, ME, status, dict.fromkeys("abcd", ME), set(), set())
    assert [s.order_id for s in t.visit] == ["a", "b", "d"] and t.send_out == ("a", "b", "d")


# ---- shift end --------------------------------------------------------------------------------

END = T0 + timedelta(hours=4)


def over(*orders: ra.OpenOrder, idle: bool = True, all_created: bool = True, now: datetime = T0) -> bool:
    return ra.shift_over(now, END, idle=idle, all_created=all_created, open_orders=orders, rider_id=ME)


def test_a_rider_with_a_route_never_goes_home_even_after_its_shift() -> None:
    assert not over(idle=False, now=END + timedelta(hours=1))


def test_an_idle_rider_goes_home_at_the_end_of_its_shift_whatever_is_left() -> None:
    assert over(ra.OpenOrder(status=S.CREATED), now=END)


def test_an_idle_rider_stays_while_orders_are_still_to_come() -> None:
    assert not over(all_created=False)


@pytest.mark.parametrize(("order", "stays"), [
    (ra.OpenOrder(status=S.CREATED), True),  # nobody has it yet
    (ra.OpenOrder(status=S.FAILED, holder=OTHER), True),  # waiting for a re-attempt or the customer's slot
    (ra.OpenOrder(status=S.ASSIGNED, holder=ME), True),
    (ra.OpenOrder(status=S.FAILED, holder=ME, returning=True), True),  # ours to bring back
    (ra.OpenOrder(status=S.ASSIGNED, holder=OTHER), False),
    (ra.OpenOrder(status=S.OUT_FOR_DELIVERY, holder=OTHER), False),
    (ra.OpenOrder(status=S.FAILED, holder=OTHER, returning=True), False),
    (ra.OpenOrder(status=S.DELIVERED, holder=ME), False),
])
def test_the_day_is_over_for_a_rider_once_nothing_is_left_it_could_take(order: ra.OpenOrder, stays: bool) -> None:
    assert over(order) is not stays
    assert over() is True  # nothing open at all


# ---- breaks -------------------------------------------------------------------------------------

OWED = (ev.PlannedBreak(break_id="b1", earliest_start=T0, latest_start=T0 + timedelta(hours=2), duration_s=1800),)


def route_break(start: datetime) -> ev.RouteBreak:
    return ev.RouteBreak(break_id="b1", start=start, end=start + timedelta(minutes=30))


def test_a_break_the_route_places_is_taken_when_its_start_comes() -> None:
    placed = (route_break(T0 + timedelta(minutes=40)),)
    assert ra.due_break(T0, route_breaks=placed, owed=OWED, taken=(), unplanned_at=()) is None
    due = ra.due_break(T0 + timedelta(minutes=37), route_breaks=placed, owed=OWED, taken=(), unplanned_at=())
    assert due == ra.DueBreak("b1", 1800.0, True)
    assert ra.due_break(T0 + timedelta(hours=3), route_breaks=placed, owed=OWED, taken={"b1"}, unplanned_at=()) is None


def test_a_break_the_route_places_after_the_next_stop_waits_for_that_stop() -> None:
    """A hyperlocal parcel just picked up, its drop planned 3 minutes on, the break 5 minutes on:
    the drop first, as the route says, even though the break's start is near."""
    placed = (route_break(T0 + timedelta(minutes=5)),)
    now = T0 + timedelta(minutes=1)
    assert ra.due_break(now, route_breaks=placed, owed=OWED, taken=(), unplanned_at=(),
                        next_stop_at=T0 + timedelta(minutes=4)) is None
    assert ra.due_break(now, route_breaks=placed, owed=OWED, taken=(), unplanned_at=(),
                        next_stop_at=T0 + timedelta(minutes=9)) == ra.DueBreak("b1", 1800.0, True)
    assert ra.due_break(now, route_breaks=placed, owed=OWED, taken=(), unplanned_at=()) == ra.DueBreak("b1", 1800.0, True)


def test_a_break_no_plan_placed_is_taken_anyway_at_its_latest_start() -> None:
    assert ra.due_break(T0 + timedelta(minutes=119), route_breaks=(), owed=OWED, taken=(), unplanned_at=()) is None
    due = ra.due_break(T0 + timedelta(hours=2), route_breaks=(), owed=OWED, taken=(), unplanned_at=())
    assert due == ra.DueBreak("b1", 1800.0, False)


def test_an_unplanned_break_comes_when_its_time_has_come() -> None:
    unplanned = [(T0 + timedelta(minutes=10), 600.0)]
    assert ra.due_break(T0, route_breaks=(), owed=(), taken=(), unplanned_at=unplanned) is None
    assert ra.due_break(T0 + timedelta(minutes=11), route_breaks=(), owed=(), taken=(),
                        unplanned_at=unplanned) == ra.DueBreak(None, 600.0, False)


# ---- failed parcels held at the hub ------------------------------------------------------------


def test_a_failure_the_ledger_has_not_echoed_yet_keeps_the_rider_at_the_hub() -> None:
    """Seed 8: two riders in overtime failed a parcel, rode back and went home before the loaded
    ledger's word came; the parcels were never returned and the orders never settled."""
    box = {"ord-1": T0}
    for lagging in (S.OUT_FOR_DELIVERY, S.ARRIVED, None):
        assert ra.holding(box, {"ord-1": lagging} if lagging else {}, T0 + timedelta(minutes=7))
    assert ra.holding(box, {"ord-1": S.FAILED}, T0 + timedelta(hours=3))  # failed, no decision yet: held


def test_a_parcel_settled_or_never_failed_in_the_ledger_lets_the_rider_go() -> None:
    box = {"ord-1": T0}
    for settled in (S.RETURNED_TO_HUB, S.DELIVERED, S.CANCELLED):
        assert not ra.holding(box, {"ord-1": settled}, T0 + timedelta(minutes=1))
    later = T0 + ra.WORD_WAIT
    assert not ra.holding(box, {"ord-1": S.OUT_FOR_DELIVERY}, later)  # the ledger never took the failure
    assert not ra.holding({}, {"ord-1": S.FAILED}, T0)  # failed by another rider: not in this box
