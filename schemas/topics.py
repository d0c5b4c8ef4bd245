"""The topics and what flows on each: part of the public contract.

Names are ``<prefix><name>``; the prefix is ``MILESTREAM_TOPIC_PREFIX`` (default ``milestream.``).
Keys are UTF-8 stream keys, partitioned with Kafka's default (murmur2) partitioner so that every
producer, in any language, puts one order's or one rider's events on the same partition.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas import events as ev

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicSpec:
    name: str
    key: str
    events: tuple[type[ev.Event], ...]
    doc: str
    retention_ms: int = 7 * DAY_MS
    compacted: bool = False  # the latest value per key is what counts (kept forever, older ones compacted away)

    def config(self) -> dict[str, str]:
        """Our topics are streams, time-retained, except a compacted one, which is a table of the
        latest value per key. (State lives in Faust's table changelogs, which Faust creates compacted.)"""
        if self.compacted:
            return {"cleanup.policy": "compact"}
        return {"cleanup.policy": "delete", "retention.ms": str(self.retention_ms)}


INBOX = TopicSpec(
    name="inbox", key="order_id",
    events=(ev.OrderCreated, ev.OrderUpdated, ev.OrderCancelled, ev.OrderAssigned, ev.StatusChanged, ev.PodSubmitted),
    doc="Submissions about orders from the order system, rider apps, geofences and dispatch. "
        "Untrusted: the lifecycle checks each one and appends accepted ones to `orders`.",
)
ORDERS = TopicSpec(
    name="orders", key="order_id",
    events=(ev.OrderCreated, ev.OrderUpdated, ev.OrderCancelled, ev.OrderAssigned, ev.StatusChanged,
            ev.PodSubmitted, ev.PodAccepted, ev.PodRejected, ev.AttemptDecided),
    doc="The order ledger: accepted order events in lifecycle order, and after each failed attempt the "
        "re-attempt decision. One writer (the lifecycle agent).",
    retention_ms=30 * DAY_MS,
)
RIDERS = TopicSpec(name="riders", key="rider_id",
                   events=(ev.RiderShiftStarted, ev.RiderShiftEnded, ev.BreakStarted, ev.BreakEnded),
                   doc="Rider shifts and breaks from rider apps.", retention_ms=30 * DAY_MS)
GPS = TopicSpec(name="gps", key="rider_id", events=(ev.GpsPing,), doc="Position fixes from rider devices.",
                retention_ms=3 * DAY_MS)
ROUTES = TopicSpec(name="routes", key="rider_id", events=(ev.RoutePlanned,), doc="Route plans from dispatch.",
                   retention_ms=30 * DAY_MS)
TRACKING = TopicSpec(name="tracking", key="rider_id", events=(ev.ArrivedAtStop, ev.DepartedStop, ev.ZoneEvent),
                      doc="Arrivals at and departures from stops and hubs, and custom-zone events, from the tracking "
                          "worker.",
                      retention_ms=7 * DAY_MS)
ETAS = TopicSpec(name="etas", key="order_id", events=(ev.EtaUpdated,), doc="ETA estimates per order.",
                 retention_ms=3 * DAY_MS)
ALERTS = TopicSpec(name="alerts", key="subject_id", events=(ev.AlertRaised,), doc="Alerts for dispatchers.")
NOTIFICATIONS = TopicSpec(name="notifications", key="order_id", events=(ev.OtpIssued, ev.CustomerNotified),
                          doc="For the customer-notification system: OTPs (sealed with MILESTREAM_OTP_KEY) and the "
                              "notices to send the customer (out for delivery, arriving soon, delayed, delivered, "
                              "failed).",
                          retention_ms=1 * DAY_MS)
DEAD_LETTER = TopicSpec(name="dead-letter", key="source_key", events=(ev.DeadLetter,),
                        doc="Messages we could not accept, with the original bytes and why.",
                        retention_ms=30 * DAY_MS)
TRAVEL_TIMES = TopicSpec(name="travel-times", key="vehicle_type", events=(ev.TravelTimesLearned,), compacted=True,
                         doc="What the tracker learned of each vehicle type's travel (hourly leg speeds, service "
                             "times), the latest per vehicle type, for planners.")
DISPATCH_QUEUE = TopicSpec(
    name="dispatch-queue", key="hub_id",
    events=(ev.OrderCreated, ev.OrderUpdated, ev.OrderCancelled, ev.OrderAssigned, ev.StatusChanged,
            ev.AttemptDecided, ev.RiderShiftStarted, ev.RiderShiftEnded, ev.BreakStarted, ev.BreakEnded,
            ev.EtaUpdated, ev.AlertRaised, ev.GpsPing, ev.TravelTimesLearned),
    doc="Internal: order events (new, changed, withdrawn, status changes, re-attempt decisions, manual "
        "assignments), shifts and breaks, ETAs past their window, riders gone offline and their first fix back, "
        "learned travel times, re-keyed by hub for the dispatcher (plans and re-plans).",
)

ALL: tuple[TopicSpec, ...] = (INBOX, ORDERS, RIDERS, GPS, ROUTES, TRACKING, ETAS, ALERTS, NOTIFICATIONS, DEAD_LETTER,
                              TRAVEL_TIMES, DISPATCH_QUEUE)
# What analysts get in ClickHouse: every accepted fact and every dead letter.
PROJECTED: tuple[TopicSpec, ...] = (ORDERS, RIDERS, GPS, ROUTES, TRACKING, ETAS, ALERTS, NOTIFICATIONS, DEAD_LETTER,
                                    TRAVEL_TIMES)
