"""Customer notices: given an order's ledger events, ETAs and the clock, then these notices, each
once per attempt, in order, and nothing after the outcome."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from schemas import events as ev
from streams.domain.orders import notify as nt

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # on a 10-minute boundary
S0 = T0.timestamp()
ORDER = "ord-1"
N = nt.NoticeKind
S = ev.OrderStatus
_ids = iter(range(1_000_000))


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def created(window_end_min: float = 60) -> ev.OrderCreated:
    return ev.OrderCreated(event_id=f"e-{next(_ids)}", occurred_at=at(-60), order_id=ORDER, tracking_id="TRK-1",
                           hub_id="hub-1", mode=ev.DeliveryMode.LAST_MILE, drop=ev.Location(lat=12.97, lon=77.59),
                           window_start=at(0), window_end=at(window_end_min), service_time_s=120, weight_kg=1.0,
                           volume_l=2.0, units=1)


def assigned(route: str = "route-1", minute: float = -10) -> ev.OrderAssigned:
    return ev.OrderAssigned(event_id=f"e-{next(_ids)}", occurred_at=at(minute), order_id=ORDER, rider_id="rider-1",
                            route_id=route, sequence=3, planned_arrival=at(30))


def status(to: ev.OrderStatus, minute: float, reason: str = "") -> ev.StatusChanged:
    return ev.StatusChanged(event_id=f"e-{next(_ids)}", occurred_at=at(minute), order_id=ORDER, to_status=to,
                            reason=reason, rider_id="rider-1")


def eta(minute: float, p50_min: float, p90_min: float, route: str = "route-1") -> ev.EtaUpdated:
    return ev.EtaUpdated(event_id=f"e-{next(_ids)}", occurred_at=at(minute), order_id=ORDER, rider_id="rider-1",
                         route_id=route, eta_p50=at(p50_min), eta_p90=at(p90_min))


Input = ev.OrderEvent | float  # a float is a tick at that minute


def run(inputs: Iterable[Input], state: nt.NoticeState | None = None) -> tuple[nt.NoticeState, list[nt.Notice]]:
    out: list[nt.Notice] = []
    for item in inputs:
        if isinstance(item, float | int):
            assert state is not None
            state, notices = nt.on_tick(state, S0 + 60 * item)
        elif isinstance(item, ev.EtaUpdated):
            state, notices = nt.on_eta(state, item)
        else:
            state, notices = nt.on_order(state, item)
        out.extend(notices)
    assert state is not None
    return state, out


def minutes(s: float | None) -> float | None:
    return None if s is None else (s - S0) / 60


def test_a_typical_delivery_tells_out_for_delivery_arriving_soon_delivered_once_each() -> None:
    state, out = run([
        created(), assigned(), eta(-5, 31, 38),  # the ETA agent estimates from the route's start
        status(S.OUT_FOR_DELIVERY, 0),
        eta(5, 33, 41), status(S.OUT_FOR_DELIVERY, 0), 10.0, 20.0,  # a replay; still further than 10 minutes
        eta(21, 32, 37), 22.0, 23.0, 24.0,  # the p50 comes within 10 minutes with time
        status(S.ARRIVED, 32), 33.0,
        status(S.DELIVERED, 35),
        eta(36, 36, 37), 40.0, status(S.DELIVERED, 35),  # late estimates and a replay change nothing
    ])
    assert [n.kind for n in out] == [N.OUT_FOR_DELIVERY, N.ARRIVING_SOON, N.DELIVERED]
    ofd, soon, done = out
    assert (minutes(ofd.at_s), minutes(ofd.window_start_s), minutes(ofd.window_end_s)) == (0, 30, 40)
    assert minutes(soon.at_s) == 22 and (minutes(soon.window_start_s), minutes(soon.window_end_s)) == (30, 40)
    assert minutes(done.at_s) == 35 and done.window_start_s is None
    assert {n.order_id for n in out} == {ORDER} and {n.tracking_id for n in out} == {"TRK-1"}
    assert {n.attempt for n in out} == {1} and ofd.promised_end_s == S0 + 3600
    assert len({n.notice_id for n in out}) == 3
    assert state.phase is nt.Phase.CLOSED


def test_a_failed_attempt_tells_the_reason_and_nothing_more_until_a_new_attempt() -> None:
    state, out = run([
        created(), assigned(), status(S.OUT_FOR_DELIVERY, 0), eta(1, 25, 32),
        eta(10, 18, 24), status(S.ARRIVED, 18),
        status(S.FAILED, 21, reason="customer not at home"),
        eta(22, 23, 25), 30.0, status(S.FAILED, 21, reason="customer not at home"),
    ])
    assert [n.kind for n in out] == [N.OUT_FOR_DELIVERY, N.ARRIVING_SOON, N.FAILED]
    assert out[-1].reason == "customer not at home" and minutes(out[-1].at_s) == 21
    assert state.phase is nt.Phase.FAILED
    # the lifecycle sends it out again on a new route: a new attempt with its own notices, and
    # estimates of the old route no longer count
    state, again = run([assigned("route-2", 120), eta(121, 150, 160, route="route-1"),
                        status(S.OUT_FOR_DELIVERY, 125), eta(126, 170, 180, route="route-2")], state)
    assert [(n.kind, n.attempt) for n in again] == [(N.OUT_FOR_DELIVERY, 2)]
    assert (minutes(again[0].window_start_s), minutes(again[0].window_end_s)) == (170, 180)
    assert again[0].notice_id != out[0].notice_id


def test_out_for_delivery_waits_for_an_estimate() -> None:
    state, out = run([created(), assigned(), status(S.OUT_FOR_DELIVERY, 0), 1.0, 2.0])
    assert out == []
    _, out = run([eta(3, 40, 48)], state)
    assert [(n.kind, minutes(n.at_s)) for n in out] == [(N.OUT_FOR_DELIVERY, 3)]


def test_delayed_once_when_the_p90_passes_the_promise_with_the_new_window() -> None:
    state, out = run([
        created(window_end_min=60), assigned(), status(S.OUT_FOR_DELIVERY, 0), eta(1, 40, 55),
        eta(10, 52, 66), eta(15, 55, 70), eta(20, 50, 58), eta(25, 57, 67),  # past, further, back, past again
    ])
    assert [n.kind for n in out] == [N.OUT_FOR_DELIVERY, N.DELAYED]
    delayed = out[1]
    assert minutes(delayed.at_s) == 10 and (minutes(delayed.window_start_s), minutes(delayed.window_end_s)) == (50, 70)
    assert delayed.promised_end_s == S0 + 3600
    # a new promise can be missed again
    moved = ev.OrderUpdated(event_id="e-upd", occurred_at=at(26), order_id=ORDER, window_end=at(65))
    _, out = run([moved, eta(30, 60, 72)], state)
    assert [n.kind for n in out] == [N.DELAYED] and out[0].promised_end_s == S0 + 65 * 60


def test_an_out_for_delivery_window_already_past_the_promise_is_the_delay_notice() -> None:
    _, out = run([created(window_end_min=30), assigned(), eta(-1, 28, 41), status(S.OUT_FOR_DELIVERY, 0),
                  eta(5, 29, 43), 8.0])
    assert [n.kind for n in out] == [N.OUT_FOR_DELIVERY]
    assert out[0].window_end_s is not None and out[0].promised_end_s is not None
    assert out[0].window_end_s > out[0].promised_end_s


def test_a_first_stop_already_close_gets_one_notice_not_two() -> None:
    _, out = run([created(), assigned(), eta(-1, 6, 9), status(S.OUT_FOR_DELIVERY, 0), 1.0, 2.0])
    assert [(n.kind, minutes(n.window_start_s), minutes(n.window_end_s)) for n in out] == \
        [(N.OUT_FOR_DELIVERY, 5, 10)]


def test_heading_to_this_stop_next_is_arriving_soon_even_when_far() -> None:
    state, out = run([created(), assigned(), status(S.OUT_FOR_DELIVERY, 0), eta(1, 50, 62)])
    state, soon = nt.on_next_stop(state, S0 + 60 * 30)
    assert [n.kind for n in soon] == [N.ARRIVING_SOON]
    assert nt.on_next_stop(state, S0 + 60 * 31)[1] == ()


def test_stale_and_foreign_estimates_are_ignored() -> None:
    state, _ = run([created(), assigned(), status(S.OUT_FOR_DELIVERY, 0), eta(10, 40, 50)])
    assert nt.on_eta(state, eta(5, 20, 22))[0] is state  # older than the last one
    assert nt.on_eta(state, eta(11, 20, 22, route="route-9"))[0] is state  # another route's


def test_cancelled_or_delivered_orders_are_never_notified_again() -> None:
    cancel = ev.OrderCancelled(event_id="e-c", occurred_at=at(5), order_id=ORDER, reason="customer asked")
    state, out = run([created(), assigned(), eta(-1, 40, 50), status(S.OUT_FOR_DELIVERY, 0), cancel,
                      eta(10, 12, 14), 15.0, status(S.DELIVERED, 20)])
    assert [n.kind for n in out] == [N.OUT_FOR_DELIVERY]
    assert nt.on_next_stop(state, S0)[1] == ()
    state, out = run([created(), assigned(), status(S.OUT_FOR_DELIVERY, 0), status(S.DELIVERED, 3),
                      status(S.OUT_FOR_DELIVERY, 4), eta(5, 10, 12), status(S.FAILED, 6, reason="x")])
    assert [n.kind for n in out] == [N.DELIVERED]


def test_eta_windows_snap_outward_to_slots_and_never_start_in_the_past() -> None:
    assert nt.eta_window(S0 + 7 * 60, S0 + 13 * 60, S0) == (S0 + 5 * 60, S0 + 15 * 60)
    assert nt.eta_window(S0 + 95 * 60, S0 + 103 * 60, S0) == (S0 + 90 * 60, S0 + 110 * 60)  # far: 10-min slots
    assert nt.eta_window(S0 - 120, S0 + 60, S0) == (S0, S0 + 300)
    assert nt.eta_window(S0 + 600, S0 + 600, S0) == (S0 + 600, S0 + 900)  # at least one slot
    hourly_at_quarter_past = nt.NoticeParams(utc_offset_s=45 * 60.0, wide_slot_s=3600.0)  # local :00 is UTC :15
    assert nt.eta_window(S0 + 100 * 60, S0 + 110 * 60, S0, hourly_at_quarter_past) == (S0 + 75 * 60, S0 + 135 * 60)
