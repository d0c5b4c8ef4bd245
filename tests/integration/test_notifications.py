"""Customer notices through the real worker: an order out for delivery with an ETA tells the
customer its window; a failed delivery tells them why, once, and nothing else is sent; time
passing, not a new estimate, brings "arriving soon". (That time is the events' clock running on:
this session's worker sees today's events from every test, so a past day is judged in the unit
tests of ``notify.EventClock`` and the handler, and in the demo's notices.)"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from harness import Kafka, new_id, now, order_created, shift_started

from infra.settings import Settings
from schemas import events as ev

K = ev.NoticeKind


def out_for_delivery(kafka: Kafka) -> tuple[ev.OrderCreated, ev.RiderShiftStarted, ev.RoutePlanned, datetime]:
    """An order planned by dispatch onto a new rider's route and sent out now."""
    hub = f"hub-{new_id()[:8]}"
    order = order_created(hub_id=hub, tracking_id=f"TRK-{new_id()[:6]}")
    rider = shift_started(hub)
    kafka.produce("riders", rider)
    kafka.produce("inbox", order)
    route = kafka.wait_for("routes", lambda e: e.rider_id == rider.rider_id)[0]
    kafka.wait_for("orders", lambda e: isinstance(e, ev.OrderAssigned) and e.order_id == order.order_id)
    t = now()
    kafka.produce("inbox", ev.StatusChanged(event_id=new_id(), occurred_at=t, order_id=order.order_id,
                                            to_status=ev.OrderStatus.OUT_FOR_DELIVERY, rider_id=rider.rider_id))
    return order, rider, route, t


def notices(kafka: Kafka, order_id: str, count: int) -> list[ev.CustomerNotified]:
    return kafka.wait_for("notifications", lambda e: isinstance(e, ev.CustomerNotified) and e.order_id == order_id,
                          count=count)


def test_out_for_delivery_with_a_window_then_failed_with_the_reason(settings: Settings, kafka: Kafka,
                                                                    worker: object) -> None:
    order, rider, route, t = out_for_delivery(kafka)
    p50, p90 = t + timedelta(minutes=31), t + timedelta(minutes=44)
    kafka.produce("etas", ev.EtaUpdated(event_id=new_id(), occurred_at=t + timedelta(seconds=5),
                                        order_id=order.order_id, rider_id=rider.rider_id, route_id=route.route_id,
                                        eta_p50=p50, eta_p90=p90))

    out = notices(kafka, order.order_id, 1)[0]
    assert (out.kind, out.attempt, out.tracking_id, out.rider_id) == (K.OUT_FOR_DELIVERY, 1, order.tracking_id,
                                                                      rider.rider_id)
    assert out.promised_end == order.window_end
    assert out.window_start is not None and out.window_end is not None
    # p50..p90 snapped outward to the 5-minute slots that hold them (p90 is under an hour away)
    slot = 300
    assert out.window_start.timestamp() == math.floor(p50.timestamp() / slot) * slot
    assert out.window_end.timestamp() == math.ceil(p90.timestamp() / slot) * slot

    kafka.produce("inbox", ev.StatusChanged(event_id=new_id(), occurred_at=t + timedelta(minutes=35),
                                            order_id=order.order_id, to_status=ev.OrderStatus.FAILED,
                                            reason="customer_unavailable", rider_id=rider.rider_id))
    sent = notices(kafka, order.order_id, 2)
    assert [n.kind for n in sent] == [K.OUT_FOR_DELIVERY, K.FAILED]
    failed = sent[1]
    assert (failed.reason, failed.attempt, failed.rider_id) == ("customer_unavailable", 1, rider.rider_id)
    assert failed.window_start is None and failed.event_id != out.event_id


def test_the_clock_alone_brings_arriving_soon_when_the_estimate_does_not_move(settings: Settings, kafka: Kafka,
                                                                              worker: object) -> None:
    order, rider, route, t = out_for_delivery(kafka)
    made = t + timedelta(seconds=1)
    p50 = made + timedelta(minutes=10, seconds=8)  # just outside the 10-minute horizon when estimated
    kafka.produce("etas", ev.EtaUpdated(event_id=new_id(), occurred_at=made, order_id=order.order_id,
                                        rider_id=rider.rider_id, route_id=route.route_id, eta_p50=p50,
                                        eta_p90=p50 + timedelta(minutes=6)))
    # no further estimate: the worker's timer (every 5 s, wall clock) tells it once the horizon is reached
    out, soon = notices(kafka, order.order_id, 2)[:2]
    assert (out.kind, soon.kind) == (K.OUT_FOR_DELIVERY, K.ARRIVING_SOON)
    assert soon.occurred_at >= p50 - timedelta(minutes=10)
    assert (soon.window_start, soon.window_end) == (out.window_start, out.window_end)

