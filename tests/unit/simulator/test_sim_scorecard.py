"""The day's figures from the ledger and routes read back and the simulator's truth."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from schemas import events as ev
from simulator.scorecard import Scorecard

S = ev.OrderStatus
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
LOC = ev.Location(lat=0.0, lon=0.0)


def order(i: int, *, created_min: float = 0, opens_min: float = 60, hyper: bool = False,
          hub: str = "hub-1") -> ev.OrderCreated:
    at = T0 + timedelta(minutes=created_min)
    return ev.OrderCreated(
        event_id=f"c{i}", occurred_at=at, order_id=f"o{i}", tracking_id="T", hub_id=hub,
        mode=ev.DeliveryMode.HYPERLOCAL if hyper else ev.DeliveryMode.LAST_MILE, drop=LOC,
        pickup=LOC if hyper else None, window_start=at if hyper else T0 + timedelta(minutes=opens_min),
        window_end=(at + timedelta(minutes=20)) if hyper else T0 + timedelta(minutes=opens_min + 120),
        service_time_s=60, weight_kg=1.0, volume_l=1.0, units=1, promise_min=20 if hyper else None)


def assigned(i: int, minute: float, rider: str = "r1", k: int = 0) -> ev.OrderAssigned:
    return ev.OrderAssigned(event_id=f"a{i}-{k}", occurred_at=T0 + timedelta(minutes=minute), order_id=f"o{i}",
                            rider_id=rider, route_id="x", sequence=1, planned_arrival=T0)


def status(i: int, to: S, minute: float, k: int = 0) -> ev.StatusChanged:
    return ev.StatusChanged(event_id=f"s{i}-{to}-{k}", occurred_at=T0 + timedelta(minutes=minute), order_id=f"o{i}",
                            to_status=to, reason="x")


def route(rid: str, stops: list[tuple[str, ev.StopKind, float]], breaks: tuple[str, ...] = ()) -> ev.RoutePlanned:
    return ev.RoutePlanned(
        event_id=rid, occurred_at=T0, rider_id="r1", route_id=rid, hub_id="hub-1",
        stops=tuple(ev.PlannedStop(order_id=o, kind=k, lat=0.0, lon=0.0, planned_arrival=T0 + timedelta(minutes=m),
                                   service_time_s=60) for o, k, m in stops),
        start=ev.GeoPoint(lat=0.0, lon=0.0), planned_start=T0, planned_end=T0, distance_m=0.0,
        breaks=tuple(ev.RouteBreak(break_id=b, start=T0, end=T0) for b in breaks))


def card(*orders: ev.OrderCreated, horizon: float = 120.0) -> Scorecard:
    c = Scorecard(orders, (), {"hub-1": horizon})
    for o in orders:
        c.ledger(o)
    return c


def test_assignment_wait_runs_from_creation_or_from_when_the_horizon_reaches_the_window() -> None:
    now = order(1, created_min=0, opens_min=30)  # within the horizon: owed at once
    held = order(2, created_min=0, opens_min=300)  # held back until 300 - 120 = minute 180
    c = card(now, held)
    c.ledger(assigned(1, 0.5))
    c.ledger(assigned(2, 181))
    c.ledger(assigned(1, 50, rider="r2", k=1))  # a re-plan moving it: not a wait
    s = c.summary()
    assert s["assignments_measured"] == 2
    assert s["assign_median_s"] == pytest.approx(45.0) and s["assign_max_s"] == pytest.approx(60.0)


def test_a_reattempt_is_owed_from_its_decision_and_a_customer_slot_from_the_customers_answer() -> None:
    c = card(order(1, opens_min=0), order(2, opens_min=0))
    for i in (1, 2):
        c.ledger(assigned(i, 0))
        c.ledger(status(i, S.OUT_FOR_DELIVERY, 1))
        c.ledger(status(i, S.FAILED, 20))
    c.ledger(ev.AttemptDecided(event_id="d1", occurred_at=T0 + timedelta(minutes=20), order_id="o1", attempt=1,
                               failure_reason=ev.FailureReason.NO_ACCESS, decision=ev.AttemptDecision.REATTEMPT,
                               window_start=T0 + timedelta(minutes=80), window_end=T0 + timedelta(hours=4), reason=""))
    c.ledger(ev.AttemptDecided(event_id="d2", occurred_at=T0 + timedelta(minutes=20), order_id="o2", attempt=1,
                               failure_reason=ev.FailureReason.NO_ACCESS,
                               decision=ev.AttemptDecision.AWAIT_CUSTOMER_SLOT, reason=""))
    c.ledger(assigned(2, 25, k=1))  # no slot yet: nothing owed, so no wait measured
    c.ledger(ev.OrderUpdated(event_id="u2", occurred_at=T0 + timedelta(minutes=30), order_id="o2",
                             window_start=T0 + timedelta(minutes=100), window_end=T0 + timedelta(minutes=190)))
    c.ledger(assigned(1, 21, k=2))
    c.ledger(assigned(2, 32, k=3))
    s = c.summary()
    assert s["reattempt_assign_median_s"] == pytest.approx(90.0)  # 60 s and 120 s


def test_settled_counts_delivered_returned_and_cancelled_but_not_failed() -> None:
    c = card(*(order(i) for i in range(4)))
    c.ledger(status(0, S.DELIVERED, 5))
    c.ledger(status(1, S.RETURNED_TO_HUB, 5))
    c.ledger(ev.OrderCancelled(event_id="x", occurred_at=T0, order_id="o2", reason="r"))
    c.ledger(status(3, S.FAILED, 5))
    s = c.summary()
    assert (s["settled"], s["delivered"], s["returned"], s["cancelled"], s["failed_unresolved"]) == (3, 1, 1, 1, 1)


def test_first_attempt_and_reattempt_success() -> None:
    c = card(*(order(i) for i in range(3)))
    for i in range(3):
        c.ledger(status(i, S.OUT_FOR_DELIVERY, 1))
    c.ledger(status(0, S.DELIVERED, 5))
    for i in (1, 2):
        c.ledger(status(i, S.FAILED, 5))
        c.ledger(status(i, S.OUT_FOR_DELIVERY, 90, k=1))
    c.ledger(status(1, S.DELIVERED, 95))
    s = c.summary()
    assert s["first_attempt_success"] == pytest.approx(1 / 3, abs=1e-4)
    assert s["reattempt_success"] == 0.5 and s["reattempted"] == 2


def test_pickups_must_come_before_their_drops_and_an_uncollected_hyperlocal_drop_needs_one() -> None:
    c = card(order(1, hyper=True), order(2, hyper=True), order(3, hyper=True))
    c.route(route("ok", [("o1", ev.StopKind.PICKUP, 5), ("o1", ev.StopKind.DROP, 10)]))
    c.route(route("late", [("o2", ev.StopKind.DROP, 5), ("o2", ev.StopKind.PICKUP, 10)]))
    c.route(route("none", [("o3", ev.StopKind.DROP, 5)]))
    c.route(route("none", [("o3", ev.StopKind.DROP, 5)]))  # read twice: counted once
    s = c.summary()
    assert s["pickup_before_drop_violations"] == 1 and s["hyperlocal_missing_pickup"] == 1
    assert s["routes_planned"] == 3


def test_a_drop_planned_just_after_its_pickup_is_not_a_missing_pickup_when_the_pickup_is_read_late() -> None:
    """Routes and the ledger are read from different topics: a re-plan made 0.1 s after the rider
    collected the parcel can be read before the pickup's status."""
    c = card(order(1, hyper=True), order(2, hyper=True))
    c.route(dataclasses.replace(route("after", [("o1", ev.StopKind.DROP, 5)]), occurred_at=T0 + timedelta(minutes=3)))
    c.route(dataclasses.replace(route("before", [("o2", ev.StopKind.DROP, 5)]), occurred_at=T0 + timedelta(minutes=1)))
    c.ledger(status(1, S.OUT_FOR_DELIVERY, 2.99))
    c.ledger(status(2, S.OUT_FOR_DELIVERY, 2))
    assert c.summary()["hyperlocal_missing_pickup"] == 1  # o2's route came before its pickup


def test_hyperlocal_on_promise_is_the_share_delivered_by_creation_plus_promise() -> None:
    c = card(order(1, hyper=True), order(2, hyper=True, created_min=10))
    c.ledger(status(1, S.DELIVERED, 19))
    c.ledger(status(2, S.DELIVERED, 31))  # promised by minute 30
    assert c.summary()["hyperlocal_on_promise"] == 0.5


def test_planned_arrival_error_uses_the_last_plan_read_before_the_rider_reached_the_door() -> None:
    c = card(order(1), order(2))
    c.route(route("r1", [("o1", ev.StopKind.DROP, 30), ("o2", ev.StopKind.DROP, 50)]))
    c.route(route("r2", [("o1", ev.StopKind.DROP, 40), ("o2", ev.StopKind.DROP, 60)]))
    c.reached("o1", T0 + timedelta(minutes=41))
    c.route(route("r3", [("o2", ev.StopKind.DROP, 70)]))
    c.reached("o2", T0 + timedelta(minutes=67))
    c.route(route("r4", [("o2", ev.StopKind.DROP, 99)]))  # after the arrival: ignored
    for i in (1, 2):
        c.ledger(status(i, S.DELIVERED, 70))
    s = c.summary()
    assert s["planned_arrival_mae_s"] == pytest.approx(120.0) and s["planned_arrival_bias_s"] == pytest.approx(-60.0)
    assert s["planned_arrivals_scored"] == 2


def test_breaks_and_utilisation() -> None:
    shift = ev.RiderShiftStarted(
        event_id="sh", occurred_at=T0, rider_id="r1", hub_id="hub-1", vehicle_type=ev.VehicleType.BIKE,
        capacity_weight_kg=1, capacity_volume_l=1, capacity_units=1, shift_start=T0, shift_end=T0,
        start=ev.GeoPoint(lat=0, lon=0),
        breaks=(ev.PlannedBreak(break_id="b1", earliest_start=T0, latest_start=T0, duration_s=1800),))
    c = Scorecard((), (shift,))
    c.route(route("r", [], breaks=("b1",)))
    c.took_break("b1", True)
    c.took_break(None, False)
    c.on_shift(1000)
    c.on_route(600)
    s = c.summary()
    assert (s["breaks_planned"], s["breaks_in_routes"], s["breaks_taken"], s["breaks_taken_as_planned"],
            s["unplanned_breaks"]) == (1, 1, 1, 1, 1)
    assert s["fleet_utilisation"] == 0.6


def test_rider_hours_and_first_deliveries_against_the_customers_window() -> None:
    c = card(order(1, opens_min=60), order(2, opens_min=60), order(3, opens_min=60), order(4, opens_min=60))
    for i, minute in ((1, 30), (2, 90), (3, 200)):  # before, inside, after the 60-180 window
        c.ledger(status(i, S.OUT_FOR_DELIVERY, minute - 10))
        c.ledger(status(i, S.DELIVERED, minute))
    for k, to in enumerate((S.OUT_FOR_DELIVERY, S.FAILED, S.OUT_FOR_DELIVERY, S.DELIVERED)):  # a second attempt
        c.ledger(status(4, to, 20 + k, k=k))
    c.on_shift(2 * 3600)
    s = c.summary()
    assert s["deliveries_per_rider_hour"] == 2.0
    assert (s["last_mile_before_window"], s["last_mile_after_window"]) == (round(1 / 3, 4), round(1 / 3, 4))
