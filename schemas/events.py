"""Python mirrors of the ``.avsc`` files in this folder.

The ``.avsc`` files are the contract; these frozen dataclasses mirror them field for field
(``tests/unit/schemas/test_schema_parity.py`` checks both directions). Timestamps are tz-aware UTC
``datetime``; Avro arrays are tuples so events stay immutable.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

_EVENT = dict(frozen=True, slots=True, kw_only=True)


class OrderStatus(enum.StrEnum):
    CREATED = "created"
    ASSIGNED = "assigned"
    OUT_FOR_DELIVERY = "out_for_delivery"
    ARRIVED = "arrived"
    DELIVERED = "delivered"
    FAILED = "failed"
    RETURNED_TO_HUB = "returned_to_hub"
    CANCELLED = "cancelled"


class DeliveryMode(enum.StrEnum):
    LAST_MILE = "last_mile"
    HYPERLOCAL = "hyperlocal"


class VehicleType(enum.StrEnum):
    BIKE = "bike"
    SCOOTER = "scooter"
    CAR = "car"
    VAN = "van"


class StopKind(enum.StrEnum):
    DROP = "drop"
    PICKUP = "pickup"


class FailureReason(enum.StrEnum):
    """Why a delivery attempt failed (``other`` needs the rider's words in ``StatusChanged.reason``)."""

    CUSTOMER_NOT_AVAILABLE = "customer_not_available"
    ADDRESS_NOT_FOUND = "address_not_found"
    REFUSED = "refused"
    DAMAGED = "damaged"
    NO_ACCESS = "no_access"
    COD_NOT_READY = "cod_not_ready"
    OTHER = "other"


class ReattemptMode(enum.StrEnum):
    """When a failed order is tried again: later the same day, the next day, or in the slot the customer picks."""

    SAME_DAY = "same_day"
    NEXT_DAY = "next_day"
    CUSTOMER_SLOT = "customer_slot"


class AttemptDecision(enum.StrEnum):
    REATTEMPT = "reattempt"  # back to dispatch with a new window
    AWAIT_CUSTOMER_SLOT = "await_customer_slot"  # back to dispatch once the customer picks a window (OrderUpdated)
    RETURN_TO_HUB = "return_to_hub"  # no attempts left: the rider brings the parcel back


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class FenceKind(enum.StrEnum):
    STOP = "stop"
    HUB = "hub"


class ZoneEventKind(enum.StrEnum):
    ENTERED = "entered"
    EXITED = "exited"
    DWELLED = "dwelled"  # still inside a set time after entering


class NoticeKind(enum.StrEnum):
    """The wire mirror of ``streams.domain.orders.notify.NoticeKind`` (same values; the contract imports nothing of ours)."""

    OUT_FOR_DELIVERY = "out_for_delivery"
    ARRIVING_SOON = "arriving_soon"
    DELAYED = "delayed"
    DELIVERED = "delivered"
    FAILED = "failed"


class DeadLetterKind(enum.StrEnum):
    MALFORMED = "malformed"
    UNKNOWN_SCHEMA = "unknown_schema"
    INVALID = "invalid"
    ILLEGAL_TRANSITION = "illegal_transition"
    PROCESSING_ERROR = "processing_error"


@dataclass(**_EVENT)
class Location:
    lat: float
    lon: float
    address: str = ""


@dataclass(**_EVENT)
class GeoPoint:
    lat: float
    lon: float


@dataclass(**_EVENT)
class PlannedBreak:
    """A break the shift owes the rider: ``duration_s`` long, starting between the two times."""

    break_id: str
    earliest_start: datetime
    latest_start: datetime
    duration_s: int


@dataclass(**_EVENT)
class RiderFactor:
    """A rider's own pace: its leg time / the vehicle type's typical leg time (shrunk toward 1)."""

    rider_id: str
    travel_factor: float


@dataclass(**_EVENT)
class RouteBreak:
    """When the plan has the rider take a planned break."""

    break_id: str
    start: datetime
    end: datetime


@dataclass(**_EVENT)
class PlannedStop:
    order_id: str
    kind: StopKind
    lat: float
    lon: float
    planned_arrival: datetime
    service_time_s: int
    window_start: datetime | None = None  # the order's promised window
    window_end: datetime | None = None


@dataclass(**_EVENT)
class Event:
    """Fields every event carries. ``key`` is the stream (and Kafka message) key."""

    event_id: str
    occurred_at: datetime
    schema_version: int = 1

    @property
    def key(self) -> str:
        raise NotImplementedError


@dataclass(**_EVENT)
class OrderEvent(Event):
    order_id: str

    @property
    def key(self) -> str:
        return self.order_id


@dataclass(**_EVENT)
class RiderEvent(Event):
    rider_id: str

    @property
    def key(self) -> str:
        return self.rider_id


@dataclass(**_EVENT)
class OrderCreated(OrderEvent):
    tracking_id: str
    hub_id: str
    mode: DeliveryMode
    drop: Location
    pickup: Location | None = None
    window_start: datetime
    window_end: datetime
    service_time_s: int
    weight_kg: float
    volume_l: float
    units: int
    required_skills: tuple[str, ...] = ()
    cod_amount: float = 0.0
    currency: str = ""
    priority: int = 0
    instructions: str = ""
    promise_min: int | None = None  # hyperlocal: minutes from creation to the door (the drop's deadline)
    max_attempts: int | None = None  # overrides the hub's re-attempt policy
    reattempt: ReattemptMode | None = None  # overrides the hub's re-attempt policy


@dataclass(**_EVENT)
class OrderUpdated(OrderEvent):
    drop: Location | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    service_time_s: int | None = None
    priority: int | None = None
    instructions: str | None = None
    pickup: Location | None = None
    weight_kg: float | None = None
    volume_l: float | None = None
    units: int | None = None


@dataclass(**_EVENT)
class OrderCancelled(OrderEvent):
    reason: str
    cancelled_by: str = "shipper"


@dataclass(**_EVENT)
class RiderShiftStarted(RiderEvent):
    hub_id: str
    vehicle_type: VehicleType
    capacity_weight_kg: float
    capacity_volume_l: float
    capacity_units: int
    skills: tuple[str, ...] = ()
    shift_start: datetime
    shift_end: datetime
    start: GeoPoint
    breaks: tuple[PlannedBreak, ...] = ()
    station_id: str | None = None  # stationed at a store: waits there (``start``) between routes


@dataclass(**_EVENT)
class BreakStarted(RiderEvent):
    """The rider app reports a break begun (a planned one, by id, or an unplanned one)."""

    break_id: str | None = None
    expected_end: datetime | None = None
    position: GeoPoint | None = None


@dataclass(**_EVENT)
class BreakEnded(RiderEvent):
    break_id: str | None = None
    position: GeoPoint | None = None


@dataclass(**_EVENT)
class RiderShiftEnded(RiderEvent):
    reason: str = "end_of_shift"
    position: GeoPoint | None = None


@dataclass(**_EVENT)
class GpsPing(RiderEvent):
    device_id: str
    device_time: datetime
    lat: float
    lon: float
    speed_mps: float | None = None
    heading_deg: float | None = None
    accuracy_m: float | None = None
    battery_pct: float | None = None


@dataclass(**_EVENT)
class OrderAssigned(OrderEvent):
    rider_id: str
    route_id: str
    sequence: int
    planned_arrival: datetime
    assigned_by: str = "dispatch"  # "dispatch" for a plan; anything else (e.g. "dispatcher:ana") is a manual assignment

    @property
    def manual(self) -> bool:
        """A dispatcher's assignment, not one of dispatch's plans."""
        return self.assigned_by != "dispatch"


@dataclass(**_EVENT)
class RoutePlanned(RiderEvent):
    route_id: str
    hub_id: str
    stops: tuple[PlannedStop, ...]
    start: GeoPoint
    planned_start: datetime
    planned_end: datetime
    distance_m: float
    reason: str = "dispatch"  # "dispatch" for a new plan, else the re-plan triggers ("failed_delivery: ord-1; ...")
    breaks: tuple[RouteBreak, ...] = ()


@dataclass(**_EVENT)
class StatusChanged(OrderEvent):
    from_status: OrderStatus | None = None
    to_status: OrderStatus
    reason: str = ""
    rider_id: str | None = None
    location: GeoPoint | None = None
    failure_reason: FailureReason | None = None  # required with to_status failed


@dataclass(**_EVENT)
class AttemptDecided(OrderEvent):
    """What happens after a failed attempt, and why (the re-attempt policy's decision)."""

    attempt: int  # the attempt that failed (1 = first)
    failure_reason: FailureReason
    decision: AttemptDecision
    rider_id: str | None = None  # who holds the parcel
    window_start: datetime | None = None  # the re-attempt's window (decision reattempt)
    window_end: datetime | None = None
    reason: str


@dataclass(**_EVENT)
class PodSubmitted(OrderEvent):
    rider_id: str
    otp_hash: bytes | None = None
    photo_ref: str | None = None
    recipient_name: str | None = None
    location: GeoPoint | None = None


@dataclass(**_EVENT)
class PodAccepted(OrderEvent):
    rider_id: str
    pod_event_id: str
    method: str = "otp"


@dataclass(**_EVENT)
class PodRejected(OrderEvent):
    rider_id: str
    pod_event_id: str
    reason: str
    attempts_left: int


@dataclass(**_EVENT)
class OtpIssued(OrderEvent):
    tracking_id: str
    otp_salt: bytes = field(repr=False)
    otp_sealed: bytes = field(repr=False)
    expires_at: datetime
    max_attempts: int


@dataclass(**_EVENT)
class EtaUpdated(OrderEvent):
    rider_id: str
    route_id: str
    eta_p50: datetime
    eta_p90: datetime


@dataclass(**_EVENT)
class ArrivedAtStop(RiderEvent):
    route_id: str
    fence_id: str  # order id for a stop, hub id for a hub
    kind: FenceKind
    order_id: str | None = None  # set for stops
    arrived_at: datetime  # first fix of the entry that led to the arrival (backdated)
    location: GeoPoint
    confidence: float  # 0..1 score, not a calibrated probability
    source_ping_id: str  # the ping that confirmed it
    stop_kind: StopKind | None = None  # pickup or drop, for stops


@dataclass(**_EVENT)
class DepartedStop(RiderEvent):
    route_id: str
    fence_id: str
    kind: FenceKind
    order_id: str | None = None
    departed_at: datetime  # last fix inside the enter radius
    confidence: float
    source_ping_id: str
    stop_kind: StopKind | None = None


@dataclass(**_EVENT)
class ZoneEvent(RiderEvent):
    zone_id: str
    kind: ZoneEventKind
    at: datetime
    source_ping_id: str


@dataclass(**_EVENT)
class CustomerNotified(OrderEvent):
    tracking_id: str
    kind: NoticeKind
    attempt: int
    window_start: datetime | None = None  # the ETA window told to the customer
    window_end: datetime | None = None
    promised_end: datetime | None = None
    reason: str = ""  # why a delivery failed
    rider_id: str | None = None


@dataclass(**_EVENT)
class AlertRaised(Event):
    subject_id: str
    kind: str
    severity: Severity
    rider_id: str | None = None
    order_id: str | None = None
    message: str

    @property
    def key(self) -> str:
        return self.subject_id


@dataclass(**_EVENT)
class DeadLetter(Event):
    source_key: str
    source_topic: str
    source_partition: int
    source_offset: int
    original: bytes = field(repr=False)
    error_kind: DeadLetterKind
    reason: str
    original_size: int | None = None  # set when ``original`` holds only the first bytes
    original_sha256: str | None = None

    @property
    def key(self) -> str:
        return self.source_key


@dataclass(**_EVENT)
class TravelTimesLearned(Event):
    """What the tracker learned of a vehicle type's travel, for planners: hourly straight-line
    speeds of whole legs (detours, lights and parking included) and how service times compare
    with what orders say."""

    vehicle_type: VehicleType
    leg_speed_mps: tuple[float, ...]  # 24 values: great-circle metres per second of a leg starting in hour h (UTC)
    service_factor: float  # actual service time / the order's service_time_s
    legs: int  # legs observed so far (0: the values are priors)
    rider_factors: tuple[RiderFactor, ...] = ()  # riders of this type whose own pace is learned

    @property
    def key(self) -> str:
        return str(self.vehicle_type)


EVENT_TYPES: tuple[type[Event], ...] = (
    OrderCreated, OrderUpdated, OrderCancelled, RiderShiftStarted, RiderShiftEnded, GpsPing,
    OrderAssigned, RoutePlanned, StatusChanged, PodSubmitted, PodAccepted, PodRejected,
    OtpIssued, EtaUpdated, AlertRaised, DeadLetter, ArrivedAtStop, DepartedStop, ZoneEvent, CustomerNotified,
    AttemptDecided, BreakStarted, BreakEnded, TravelTimesLearned,
)
