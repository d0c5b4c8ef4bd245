"""A failed delivery re-plans its rider, on the real broker and worker: dispatch plans a hub with
two riders, the rider app reports the first stop failed, and a new route for that rider appears
on `routes` with the failure as its reason and without the failed stop."""

from __future__ import annotations

from harness import Kafka, new_id, order_created, shift_started

from infra.settings import Settings
from schemas import events as ev


def _planned_hub(kafka: Kafka) -> tuple[str, set[str], list[ev.OrderCreated], dict[str, ev.RoutePlanned]]:
    """A hub with two riders and four orders, planned by dispatch: (hub, riders, orders, rider -> route)."""
    hub = f"hub-{new_id()[:8]}"
    riders = [shift_started(hub), shift_started(hub)]
    orders = [order_created(hub_id=hub, drop=ev.Location(lat=12.975 + 0.004 * k, lon=77.60 + 0.002 * k,
                                                          address=f"{k} Test Road")) for k in range(4)]
    for order in orders:  # the orders first: the hub is planned once both riders are there
        kafka.produce("inbox", order)
    for rider in riders:
        kafka.produce("riders", rider)
    rider_ids = {r.rider_id for r in riders}
    order_ids = {o.order_id for o in orders}

    def planned(e: ev.RoutePlanned) -> bool:
        return e.rider_id in rider_ids and e.reason == "dispatch"

    routes: dict[str, ev.RoutePlanned] = {}
    while {s.order_id for r in routes.values() for s in r.stops} != order_ids:
        routes = {r.rider_id: r for r in kafka.wait_for("routes", planned, count=len(routes) + 1, timeout_s=60)}
    return hub, rider_ids, orders, routes


def test_a_failed_delivery_replans_its_rider_with_the_reason(settings: Settings, kafka: Kafka, worker: object) -> None:
    _, _, orders, routes = _planned_hub(kafka)
    route = max(routes.values(), key=lambda r: len(r.stops))  # four orders on at most two routes: two stops or more
    assert all(s.window_start == orders[0].window_start for s in route.stops)  # dispatch tells the promised windows
    first = route.stops[0].order_id
    kafka.wait_for("orders", lambda e: isinstance(e, ev.OrderAssigned) and e.order_id == first)

    t = route.planned_start
    kafka.produce("inbox", ev.StatusChanged(event_id=new_id(), occurred_at=t, order_id=first,
                                            to_status=ev.OrderStatus.OUT_FOR_DELIVERY, rider_id=route.rider_id))
    kafka.wait_for("orders", lambda e: isinstance(e, ev.StatusChanged) and e.order_id == first
                   and e.to_status is ev.OrderStatus.OUT_FOR_DELIVERY)
    kafka.produce("inbox", ev.StatusChanged(event_id=new_id(), occurred_at=t, order_id=first,
                                            to_status=ev.OrderStatus.FAILED, rider_id=route.rider_id,
                                            reason="customer not home",
                                            location=ev.GeoPoint(lat=route.stops[0].lat, lon=route.stops[0].lon)))

    (replanned,) = kafka.wait_for("routes", lambda e: e.rider_id == route.rider_id and e.reason != "dispatch")
    assert "failed" in replanned.reason and first in replanned.reason and "customer not home" in replanned.reason
    assert replanned.route_id != route.route_id
    assert [s.order_id for s in replanned.stops if s.order_id == first] == []
    assert {s.order_id for s in replanned.stops} == {s.order_id for s in route.stops} - {first}
    assert all(s.window_end is not None for s in replanned.stops)


def test_a_rider_the_tracker_reports_offline_loses_its_stops_not_started(settings: Settings, kafka: Kafka,
                                                                         worker: object) -> None:
    """The tracker hands the dispatcher a ``rider_offline`` alert keyed by hub (its unit tests show
    when); dispatch re-plans: the rider's stops not started leave its route, with the reason, and
    end up on the other rider's (by the re-plan if it is on a route, else by dispatch's next plan)."""
    hub, rider_ids, _, routes = _planned_hub(kafka)
    route = max(routes.values(), key=lambda r: len(r.stops))
    kafka.produce("dispatch-queue", ev.AlertRaised(
        event_id=new_id(), occurred_at=route.planned_start, subject_id=route.rider_id, kind="rider_offline",
        severity=ev.Severity.CRITICAL, rider_id=route.rider_id, message="no ping for 5 min out on the route"), key=hub)
    replans = kafka.wait_for("routes", lambda e: e.rider_id in routes and "rider_offline" in e.reason)
    assert route.rider_id in replans[0].reason and "no ping for 5 min" in replans[0].reason
    (latest,) = kafka.wait_for("routes", lambda e: e.rider_id == route.rider_id and "rider_offline" in e.reason)
    assert latest.stops == ()  # nothing was under way: every stop is released
    released = {s.order_id for s in route.stops}
    known = {r.route_id for r in routes.values()}
    kafka.wait_for("routes", lambda e: e.rider_id in rider_ids - {route.rider_id} and e.route_id not in known
                   and released <= {s.order_id for s in e.stops})
