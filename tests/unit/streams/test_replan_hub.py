"""The hub as the dispatch agent keeps it: dispatch's pool and the routes being driven, fed the
dispatch-queue events and dispatch's own plans; a failed delivery re-plans its rider with the
reason, an urgent order placed by a re-plan leaves dispatch's pool, and a solve cut short by a
crash or an error gives its triggers back."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta

from schemas import events as ev
from solver import model as sm
from streams.domain.dispatch import hub as hb
from streams.domain.dispatch import pool as dispatch
from streams.domain.dispatch import replan as rp

S = ev.OrderStatus
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
HUB = "h1"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ts(seconds: float) -> float:
    return at(seconds).timestamp()


def order(oid: str, lat: float, *, created_s: float = 0.0, priority: int = 0) -> ev.OrderCreated:
    return ev.OrderCreated(
        event_id=f"created-{oid}", occurred_at=at(created_s), order_id=oid, tracking_id=f"t-{oid}", hub_id=HUB,
        mode=ev.DeliveryMode.LAST_MILE, drop=ev.Location(lat=lat, lon=77.59), window_start=T0,
        window_end=at(8 * 3600), service_time_s=120, weight_kg=2.0, volume_l=5.0, units=1, priority=priority)


def shift(rider: str) -> ev.RiderShiftStarted:
    return ev.RiderShiftStarted(
        event_id=f"shift-{rider}", occurred_at=T0, rider_id=rider, hub_id=HUB, vehicle_type=ev.VehicleType.SCOOTER,
        capacity_weight_kg=100.0, capacity_volume_l=500.0, capacity_units=20, shift_start=T0,
        shift_end=at(10 * 3600), start=ev.GeoPoint(lat=12.97, lon=77.59))


def status(oid: str, to: S, rider: str, at_s: float, reason: str = "",
           where: tuple[float, float] | None = None) -> ev.StatusChanged:
    return ev.StatusChanged(event_id=f"{oid}-{to}-{at_s}", occurred_at=at(at_s), order_id=oid, to_status=to,
                            rider_id=rider, reason=reason,
                            location=ev.GeoPoint(lat=where[0], lon=where[1]) if where else None)


def visits(*order_ids: str, first_s: int = 600) -> tuple[sm.Visit, ...]:
    return tuple(sm.Visit(job_id=o, arrival_s=first_s * (k + 1), start_s=first_s * (k + 1),
                          departure_s=first_s * (k + 1) + 120) for k, o in enumerate(order_ids))


def solution(**routes: tuple[str, ...]) -> sm.Solution:
    return sm.Solution(routes=tuple(sm.Route(vehicle_id=r, visits=visits(*stops), start_s=0, end_s=3600,
                                             distance_m=4000.0) for r, stops in routes.items()), unassigned=())


def fold(hub: hb.Hub, *events: ev.Event) -> hb.Hub:
    for e in events:
        hub = hb.on_hub_event(hub, e)
    return hub


def dispatched(out: bool = True) -> hb.Hub:
    """Riders a (o1, o2, o3) and b (o4), planned by dispatch; ``out``: all out for delivery."""
    hub = fold(hb.hub_state(None, HUB), shift("a"), shift("b"),
               *(order(f"o{k}", 12.97 + 0.01 * k) for k in range(1, 5)))
    routes = {"a": ("o1", "o2", "o3"), "b": ("o4",)}
    hub = hb.on_dispatched(hub, dispatch.apply_plan(hub.pool, dispatch.build_problem(hub.pool), solution(**routes)))
    return fold(hub, *(status(o, S.OUT_FOR_DELIVERY, r, 60) for r, stops in routes.items() for o in stops if out))


def test_dispatchs_routes_are_the_routes_replanned() -> None:
    hub = dispatched()
    assert {r: p.stops for r, p in hub.routes.plans.items()} == {"a": ("o1", "o2", "o3"), "b": ("o4",)}
    assert hub.pool.pending == {} and hub.pool.free == {}
    assert hub.routes.plans["a"].on_board == {"o1", "o2", "o3"}


def test_a_failed_delivery_replans_its_rider_with_the_reason_and_without_the_stop() -> None:
    door = (12.98, 77.591)
    hub = fold(dispatched(), status("o1", S.ARRIVED, "a", 600, where=door),
               status("o1", S.FAILED, "a", 700, reason="customer not home", where=door))
    hub, (request,) = hb.start_replans(hub, ts(701))
    assert request.riders == ("a",) and hub.solving == (request,)
    assert request.situation.riders[0].position == door  # the status change's location is the rider's fix

    # The solver keeps the order of the stops left: the rider still gets a new route (the old one lists o1).
    hub, outcome, out = hb.finish_replan(hub, request, solution(a=("o2", "o3")), ts(702))
    (route,) = out.routes
    assert route.rider_id == "a" and route.reason == "failed_delivery o1 (customer not home)"
    assert [s.order_id for s in route.stops] == ["o2", "o3"]
    assert all(s.window_end == at(8 * 3600) for s in route.stops)
    assert route.stops[0].planned_arrival == datetime.fromtimestamp(request.epoch_s + 600, UTC)
    assert out.assignments == () and out.alerts == ()  # nothing new to a rider
    assert hub.solving == () and hub.routes.plans["a"].route_id == route.route_id
    assert outcome.record is not None and hub.routes.history[-1] == outcome.record


def test_an_urgent_order_placed_by_a_replan_is_assigned_and_leaves_dispatchs_pool() -> None:
    hub = fold(dispatched(), order("vip", 12.985, created_s=300, priority=9))
    assert "vip" in hub.pool.pending and not hub.pool.ready(math.inf)  # no free rider: dispatch cannot plan it
    hub, (request,) = hb.start_replans(hub, ts(310))
    jobs = {j.id: j for j in request.situation.problem.jobs}
    assert jobs["vip"].pickup_id == "vip/pickup"  # not on board: a rider on the road collects it at the hub
    assert request.situation.problem.locations[jobs["vip/pickup"].location] == (12.97, 77.59)
    hub, _, out = hb.finish_replan(hub, request, solution(a=("o1", "vip/pickup", "vip", "o2", "o3"), b=("o4",)),
                                   ts(311))
    (route,) = [r for r in out.routes if r.rider_id == "a"]
    assert [(s.order_id, s.kind) for s in route.stops][:3] == [("o1", ev.StopKind.DROP), ("vip", ev.StopKind.PICKUP),
                                                               ("vip", ev.StopKind.DROP)]
    (assigned,) = out.assignments
    assert (assigned.order_id, assigned.rider_id, assigned.sequence) == ("vip", "a", 2)
    assert assigned.route_id == next(r.route_id for r in out.routes if r.rider_id == "a")
    assert "vip" not in hub.pool.pending
    again = hb.on_hub_event(hub, shift("c"))  # a free rider now: dispatch still must not plan vip
    assert again.pool.pending == {}


def test_an_offline_riders_stops_no_rider_on_a_route_takes_go_back_to_dispatch_for_a_free_rider() -> None:
    hub = fold(dispatched(out=False), ev.AlertRaised(
        event_id="off-a", occurred_at=at(400), subject_id="a", kind="rider_offline", severity=ev.Severity.CRITICAL,
        rider_id="a", message="no ping for 5 min out on the route"))
    hub, (request,) = hb.start_replans(hub, ts(401))
    assert request.offline == ("a",) and request.riders == ("b",)
    # b's route has no room for them (the solver leaves them out): a's stops are dropped...
    unplaced = sm.Solution(routes=solution(b=("o4",)).routes,
                           unassigned=tuple(sm.Unassigned(job_id=o, reason="no capacity") for o in ("o1", "o2", "o3")))
    hub, outcome, out = hb.finish_replan(hub, request, unplaced, ts(402))
    assert {u.order_id for u in outcome.unassignable} == {"o1", "o2", "o3"}
    assert all("back with dispatch" in a.message for a in out.alerts) and len(out.alerts) == 3
    assert [r.stops for r in out.routes if r.rider_id == "a"] == [()]
    # ...back in dispatch's pool: a rider starting a shift now gets them planned
    assert set(hub.pool.pending) == {"o1", "o2", "o3"} and not hub.pool.taken & {"o1", "o2", "o3"}
    assert hb.on_hub_event(hub, shift("c")).pool.ready(math.inf)


def test_a_solve_cut_short_gives_its_triggers_back() -> None:
    hub = fold(dispatched(), status("o2", S.FAILED, "a", 700, reason="address not found"))
    started, (request,) = hb.start_replans(hub, ts(701))
    assert started.routes.pending == () and started.routes.in_flight == {"a"}

    # The worker died mid-solve: the stored hub still lists the request; the next round retries it
    # once the rate limit allows.
    held, requests = hb.start_replans(started, ts(720))
    assert requests == [] and held.solving == () and held.routes.in_flight == frozenset()
    assert [t.subject_id for t in held.routes.pending] == ["o2"]
    _, (retry,) = hb.start_replans(held, ts(701 + rp.DISPATCH_PARAMS.min_interval_s + 1))
    assert retry.reason == request.reason

    failed = hb.fail_replan(started, request)  # the solver raised
    assert failed.solving == () and [t.subject_id for t in failed.routes.pending] == ["o2"]


def test_a_bare_pool_stored_before_replanning_keeps_its_orders() -> None:
    pool = dispatch.on_event(dispatch.HubPool(hub_id=HUB), order("o1", 12.98))
    object.__delattr__(pool, "taken")  # as unpickled from a changelog written before the field existed
    hub = hb.hub_state(pool, HUB)
    assert set(hub.pool.pending) == {"o1"} and hub.pool.version == 1 and hub.pool.taken == frozenset()
    assert hub.routes == rp.ReplanState(hub_id=HUB)
    assert hb.hub_state(hub, HUB) is hub


def test_no_rider_is_judged_offline_for_silence_without_gps() -> None:
    hub = dispatched(out=False)
    later = dataclasses.replace(hub.pool, clock=at(3 * 3600))
    _, requests = hb.start_replans(dataclasses.replace(hub, pool=later), ts(3 * 3600))
    assert requests == []
    _, requests = rp.due(hub.routes, ts(3 * 3600))  # with GPS-fed defaults, a rider silent this long is offline
    assert requests and requests[0].triggers[0].kind is rp.TriggerKind.RIDER_OFFLINE
