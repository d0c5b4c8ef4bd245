"""What the notifications agent relies on in ``streams.domain.orders.notify``: the rider on each notice, when a
timer tick can matter for an order, and notice kinds that map one to one onto the wire enum."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas import events as ev
from streams.domain.orders import notify as nt

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
S0 = T0.timestamp()
ORDER = "ord-7"
S = ev.OrderStatus


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def assigned(route: str, rider: str, minute: float) -> ev.OrderAssigned:
    return ev.OrderAssigned(event_id=f"a-{route}", occurred_at=at(minute), order_id=ORDER, rider_id=rider,
                            route_id=route, sequence=1, planned_arrival=at(minute + 30))


def status(to: ev.OrderStatus, minute: float, reason: str = "") -> ev.StatusChanged:
    return ev.StatusChanged(event_id=f"s-{to}-{minute}", occurred_at=at(minute), order_id=ORDER, to_status=to,
                            reason=reason)


def eta(minute: float, p50_min: float, p90_min: float, route: str, rider: str) -> ev.EtaUpdated:
    return ev.EtaUpdated(event_id=f"eta-{minute}", occurred_at=at(minute), order_id=ORDER, rider_id=rider,
                         route_id=route, eta_p50=at(p50_min), eta_p90=at(p90_min))


def out_with_eta(p50_min: float) -> nt.NoticeState:
    state, _ = nt.on_order(None, assigned("route-1", "rider-a", -10))
    state, _ = nt.on_order(state, status(S.OUT_FOR_DELIVERY, 0))
    state, sent = nt.on_eta(state, eta(1, p50_min, p50_min + 8, "route-1", "rider-a"))
    assert [n.kind for n in sent] == [nt.NoticeKind.OUT_FOR_DELIVERY]
    return state


def test_notices_name_the_rider_of_the_current_route() -> None:
    state = out_with_eta(40)
    state, failed = nt.on_order(state, status(S.FAILED, 20, reason="address not found"))
    assert [(n.kind, n.rider_id) for n in failed] == [(nt.NoticeKind.FAILED, "rider-a")]
    # the order goes out again with another rider
    state, _ = nt.on_order(state, assigned("route-2", "rider-b", 60))
    state, _ = nt.on_order(state, status(S.OUT_FOR_DELIVERY, 65))
    _, again = nt.on_eta(state, eta(66, 100, 110, "route-2", "rider-b"))
    assert [(n.kind, n.attempt, n.rider_id) for n in again] == [(nt.NoticeKind.OUT_FOR_DELIVERY, 2, "rider-b")]


def test_a_tick_is_due_when_the_p50_enters_the_arriving_soon_horizon_and_ticks_then_tell_it() -> None:
    state = out_with_eta(40)
    due = nt.tick_due_at(state)
    assert due == S0 + 30 * 60  # 10 minutes before the p50
    assert nt.on_tick(state, due - 1) == (state, ())  # a tick before that changes nothing
    state, soon = nt.on_tick(state, due)
    assert [n.kind for n in soon] == [nt.NoticeKind.ARRIVING_SOON]
    assert nt.tick_due_at(state) is None  # told: no tick can add anything


def test_no_tick_is_due_without_an_estimate_or_once_the_attempt_is_over() -> None:
    state, _ = nt.on_order(None, assigned("route-1", "rider-a", -10))
    state, _ = nt.on_order(state, status(S.OUT_FOR_DELIVERY, 0))
    assert nt.tick_due_at(state) is None  # out, but no estimate yet
    state = out_with_eta(40)
    arrived, _ = nt.on_order(state, status(S.ARRIVED, 38))
    delivered, _ = nt.on_order(arrived, status(S.DELIVERED, 39))
    assert nt.tick_due_at(arrived) is None and nt.tick_due_at(delivered) is None


def test_an_estimate_read_before_its_assignment_still_names_the_rider() -> None:
    # orders and etas are two topics: the worker may read the ETA first
    state, _ = nt.on_eta(None, eta(-5, 40, 48, "route-1", "rider-a"))
    state, _ = nt.on_order(state, assigned("route-1", "rider-a", -10))
    _, sent = nt.on_order(state, status(S.OUT_FOR_DELIVERY, 0))
    assert [(n.kind, n.rider_id) for n in sent] == [(nt.NoticeKind.OUT_FOR_DELIVERY, "rider-a")]


def test_the_event_clock_runs_on_from_the_latest_event_and_never_goes_back() -> None:
    clock = nt.EventClock()
    wall = 1_800_000_000.0
    assert clock.now(wall) is None  # no event yet: no time to judge by
    day = wall - 14 * 86_400  # a past day replayed: its events are far behind the wall clock
    clock.saw(day, wall_s=wall)
    assert clock.now(wall) == day
    assert clock.now(wall + 60) == day + 60  # a minute of wall time later, a minute later on the day
    clock.saw(day + 900, wall_s=wall + 90)  # a simulated day runs faster than the wall: events lead
    assert clock.now(wall + 90) == day + 900
    clock.saw(day + 10, wall_s=wall + 100)  # a late event does not turn the clock back
    assert clock.now(wall + 100) == day + 910


def test_one_event_stamped_in_the_future_does_not_move_the_clock_past_the_wall() -> None:
    clock = nt.EventClock()
    wall = 1_800_000_000.0
    clock.saw(wall - 2.0, wall_s=wall)  # live: events a moment behind the wall
    clock.saw(wall + 1_800.0, wall_s=wall + 1)  # a skewed device, half an hour ahead
    assert clock.now(wall + 1) == wall + 1
    assert clock.now(wall + 61) == wall + 61
