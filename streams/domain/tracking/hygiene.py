"""Ping hygiene, pure: which GPS pings of a rider's device may move the rider, and how far the
rider has really travelled.

Phones resend fixes, deliver them late and out of order, report wild positions in street canyons,
run clocks ahead, and go silent in basements and lifts. Everything downstream (ETA, geofences,
alerts, the odometer) reads only the pings this module accepts, so the rules live in one place:

- **invalid**: unreadable time, coordinates off the globe or exactly (0, 0) (a fix-less default),
  negative or NaN accuracy. Dropped, never raised: one bad ping must not stop a partition.
- **duplicate**: the same event id, or the same device time and position, as one of the last
  ``dedupe_window`` pings screened (a resend carries its original device time, so only pings no
  newer than the newest one seen are compared). Leaves the state untouched.
- **clock_skew**: device time more than ``max_clock_ahead_s`` after the time it was received.
  Such a ping never becomes "the latest", else every honest ping after it would look late.
- **out_of_order** / **too_late**: device time not after the last accepted fix, by at most /
  more than ``late_window_s``. Both dropped: a fix older than the rider's known position neither
  moves the rider nor adds distance, so no segment is ever counted twice.
- **poor_accuracy**: ``accuracy_m`` above ``max_accuracy_m``. Proves the device is alive (it
  counts as heard) but is not used for position, distance or arrival.
- **impossible_jump**: the move from the last accepted fix needs a speed above the vehicle's
  plausible maximum, after forgiving both fixes' accuracy. A lone spike is dropped and the track
  goes on. If the jump was real (the rider really is there), the device confirms it: after
  ``confirm_pings`` consecutive pings consistent with each other at the new place, or when the
  last accepted fix is ``silent_after_s`` old, the new place is accepted as a *re-anchor*: the
  rider moves there and the jump adds no distance.

Distance is an odometer over accepted fixes with a jitter floor. It counts the straight line from
the *anchor* (the last fix where distance was counted) to the current fix once that line is longer
than ``jitter_k`` times the two fixes' combined accuracy *and* the fix before was beyond the floor
too: one fix outside the noise circle is noise (a parked rider's fixes wander), two in a row are
movement. Shorter moves leave the anchor where it is, so slow real movement is still counted once
it clears the floor. Straight lines between points the rider passed through never exceed the path
driven, so the odometer under-counts rather than over-counts. Across a silence the first fix back
counts nothing by itself; once the next fix confirms the rider is moving there, the straight line
from the last fix before the silence is counted (at most the road driven). An undrivable return is
a re-anchor and counts nothing.

Silence: ``DeviceState.heard_s`` is when the device was last heard (any readable, non-duplicate
ping, even an inaccurate one); :func:`is_silent` tells the alert module the device has gone quiet,
and the verdict of the first ping after a silence carries ``back_after_s``.

Times are epoch seconds (floats): one conversion per ping instead of datetime arithmetic.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from math import cos, hypot, sqrt
from types import MappingProxyType
from typing import NamedTuple, Protocol

from schemas.events import VehicleType
from solver.geo import M_PER_DEG

__all__ = [
    "DEFAULT_PARAMS", "DeviceState", "Drop", "HygieneParams", "PingLike", "Verdict", "is_silent", "screen",
    "screen_batch",
]


class Drop(enum.StrEnum):
    """Why a ping was not accepted."""

    INVALID = "invalid"
    DUPLICATE = "duplicate"
    CLOCK_SKEW = "clock_skew"
    OUT_OF_ORDER = "out_of_order"
    TOO_LATE = "too_late"
    POOR_ACCURACY = "poor_accuracy"
    IMPOSSIBLE_JUMP = "impossible_jump"


class PingLike(Protocol):
    """What hygiene reads from a ping: :class:`schemas.events.GpsPing` fits."""

    @property
    def event_id(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def rider_id(self) -> str: ...
    @property
    def device_time(self) -> datetime: ...
    @property
    def lat(self) -> float: ...
    @property
    def lon(self) -> float: ...
    @property
    def accuracy_m(self) -> float | None: ...


# Plausible top speeds, not speed limits (overspeed is an alert, not hygiene): an e-cargo bike
# sprinting downhill, a scooter or a car on an urban motorway, plus GPS slop. A faster implied
# speed is a GPS jump, not a ride.
MAX_SPEED_MPS: Mapping[str, float] = MappingProxyType({
    VehicleType.BIKE: 15.0,  # 54 km/h
    VehicleType.SCOOTER: 35.0,  # 126 km/h
    VehicleType.CAR: 50.0,  # 180 km/h
    VehicleType.VAN: 45.0,  # 162 km/h
})


@dataclass(frozen=True, slots=True, kw_only=True)
class HygieneParams:
    max_speed_mps: Mapping[str, float] = field(default_factory=lambda: MAX_SPEED_MPS)  # per VehicleType
    unknown_vehicle_max_speed_mps: float = 50.0  # riders whose shift (vehicle) is not known yet
    max_accuracy_m: float = 100.0  # worse fixes prove the device alive, nothing more
    assumed_accuracy_m: float = 20.0  # for pings that report no accuracy
    late_window_s: float = 30.0  # older than the last fix by up to this: out_of_order; beyond: too_late
    max_clock_ahead_s: float = 60.0  # device time this far past the receive time: clock_skew
    dedupe_window: int = 16  # recent pings remembered to recognise resends
    confirm_pings: int = 3  # consistent pings at a new place that prove a jump real
    silent_after_s: float = 120.0  # no ping heard for this long: silent; a fix this old re-anchors
    jitter_k: float = 2.5  # moves under jitter_k x combined accuracy are noise (tuned on noisy tracks)
    min_step_m: float = 3.0  # jitter floor when fixes claim (near) perfect accuracy


DEFAULT_PARAMS = HygieneParams()
_M_PER_DEG = M_PER_DEG
_RAD_PER_2DEG = math.pi / 360.0  # cos of the mean latitude: cos((lat_a + lat_b) * _RAD_PER_2DEG)


def _metres(lat_a: float, lon_a: float, lat_b: float, lon_b: float) -> float:
    """Local equirectangular distance: fixes compared here are seconds apart, metres to a few km,
    where it is within 0.1% of the great circle and about 3x cheaper (it runs twice per ping)."""
    dy = lat_b - lat_a
    dx = (lon_b - lon_a) * cos((lat_a + lat_b) * _RAD_PER_2DEG)
    return sqrt(dx * dx + dy * dy) * _M_PER_DEG


# The resend memory, one cell per screened ping: (event_id, device time, lat, lon, n, older), newest first,
# ``n`` cells long up to this one. Remembering a ping adds one cell instead of rebuilding a window of pings:
# cells are chained in generations of ``dedupe_window``; a full generation becomes ``earlier`` and the one
# before it is forgotten whole, so no cell is ever copied.
Seen = tuple[str, float, float, float, int, "Seen | None"]
# An accepted fix: (device time, lat, lon, accuracy_m, out), ``out`` when it lay beyond the jitter
# floor around the anchor (or was counted).
Fix = tuple[float, float, float, float, bool]


class DeviceState(NamedTuple):
    """One rider's device as hygiene knows it. Few fields on purpose, and a named tuple: one is
    built per ping (three times cheaper than a frozen dataclass).

    ``fix`` is the last accepted fix (the rider's position); ``anchor`` the fix where the odometer
    last counted (the same object as ``fix`` while the rider keeps moving); ``recent`` and ``earlier``
    the resend memory (see ``Seen``); ``jump`` a new place awaiting confirmation by ``jump_count``
    consistent pings so far."""

    rider_id: str
    vehicle_type: VehicleType | None = None
    fix: Fix | None = None
    anchor: Fix | None = None
    distance_m: float = 0.0
    newest_t: float | None = None  # newest device time screened (dropped pings included, skewed ones not)
    heard_s: float | None = None  # receive time of the last ping that proved the device alive
    recent: Seen | None = None  # the resend memory's current generation
    earlier: Seen | None = None  # its previous (full) generation
    jump: Fix | None = None
    jump_count: int = 0


def _state(rider_id: str, vehicle_type: VehicleType | None, fix: Fix | None, anchor: Fix | None, distance_m: float,
           newest_t: float | None, heard_s: float | None, recent: Seen | None, earlier: Seen | None,
           jump: Fix | None, jump_count: int) -> DeviceState:
    """A DeviceState from all its fields in order, without the keyword-parsing constructor (one is
    built per ping; this is about three times cheaper)."""
    return _new_tuple(DeviceState, (rider_id, vehicle_type, fix, anchor, distance_m, newest_t, heard_s, recent, earlier,
                                    jump, jump_count))


_new_tuple = tuple.__new__


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    reason: Drop | None = None  # None: accepted
    reanchored: bool = False  # accepted as a new start: the jump to it added no distance
    back_after_s: float = 0.0  # > 0: the device had not been heard for this long and is back

    @property
    def accepted(self) -> bool:
        return self.reason is None


# Shared verdicts: the common case allocates none.
_ACCEPTED = Verdict()
_REANCHORED = Verdict(reanchored=True)
_DROPPED = MappingProxyType({reason: Verdict(reason=reason) for reason in Drop})
_INVALID = _DROPPED[Drop.INVALID]
_DUPLICATE = _DROPPED[Drop.DUPLICATE]


def is_silent(state: DeviceState, now_s: float, params: HygieneParams = DEFAULT_PARAMS) -> bool:
    """True when the device has not been heard for ``silent_after_s`` (for the device-silent alert,
    checked on a timer since a silent device sends nothing to react to)."""
    return state.heard_s is not None and now_s - state.heard_s >= params.silent_after_s


def screen(state: DeviceState, ping: PingLike, params: HygieneParams = DEFAULT_PARAMS,
           received_s: float | None = None) -> tuple[DeviceState, Verdict]:
    """Judge one ping of ``state``'s rider. ``received_s`` is when it reached us (epoch s; the
    Kafka record or poll time); ``None`` uses ``ping.occurred_at``. Never raises on a bad ping."""
    try:
        eid = ping.event_id
        t = ping.device_time.timestamp()
        heard = ping.occurred_at.timestamp() if received_s is None else received_s
        lat = ping.lat
        lon = ping.lon
        accuracy = ping.accuracy_m
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0) or (lat == 0.0 and lon == 0.0):
            return state, _INVALID
        if accuracy is None:
            accuracy = params.assumed_accuracy_m
        elif not accuracy >= 0.0:
            return state, _INVALID
    except (AttributeError, TypeError, ValueError, OverflowError, OSError):
        return state, _INVALID

    # One unpacking instead of a descriptor read per field (this runs for every ping).
    rider, vehicle, last, anchor, distance, newest, last_heard, recent, earlier, _, _ = state
    window = params.dedupe_window if params.dedupe_window > 1 else 1  # the ping itself is always remembered
    if newest is not None and t <= newest and _is_resend(recent, earlier, window, eid, t, lat, lon):
        return state, _DUPLICATE
    silent_after = params.silent_after_s
    back = 0.0
    if last_heard is not None:
        if heard - last_heard >= silent_after:
            back = heard - last_heard
        if heard < last_heard:
            heard = last_heard  # a batch stamped earlier than the last one: the device was heard later than this

    if t > heard + params.max_clock_ahead_s:
        return _noted(state, newest, heard, recent, earlier), _verdict(Drop.CLOCK_SKEW, back)

    if recent is not None and recent[4] < window:
        recent = (eid, t, lat, lon, recent[4] + 1, recent)
    else:
        recent, earlier = (eid, t, lat, lon, 1, None), recent
    if newest is None or t > newest:
        newest = t
    if last is not None and t <= last[0]:
        reason = Drop.OUT_OF_ORDER if last[0] - t <= params.late_window_s else Drop.TOO_LATE
        return _noted(state, newest, heard, recent, earlier), _verdict(reason, back)
    if accuracy > params.max_accuracy_m:
        return _noted(state, newest, heard, recent, earlier), _verdict(Drop.POOR_ACCURACY, back)
    verdict = _ACCEPTED if back == 0.0 else Verdict(back_after_s=back)

    if last is None:  # first fix: the odometer starts here
        fix = (t, lat, lon, accuracy, False)
        return _state(rider, vehicle, fix, fix, distance, newest, heard, recent, earlier, None, 0), verdict

    step = _metres(last[1], last[2], lat, lon)
    dt = t - last[0]
    vmax = params.max_speed_mps.get(vehicle, params.unknown_vehicle_max_speed_mps)  # type: ignore[arg-type]
    if step - last[3] - accuracy > vmax * dt:
        return _jump(state, (t, lat, lon, accuracy, False), dt, vmax, newest, heard, recent, earlier, back, params)

    assert anchor is not None
    counted = step if anchor is last else _metres(anchor[1], anchor[2], lat, lon)
    if counted <= params.min_step_m or counted <= params.jitter_k * hypot(anchor[3], accuracy):
        fix = (t, lat, lon, accuracy, False)
        return _state(rider, vehicle, fix, anchor, distance, newest, heard, recent, earlier, None, 0), verdict
    fix = (t, lat, lon, accuracy, True)
    # One fix out of the noise circle is noise, two in a row are movement; the first fix after a
    # silence always waits for a second one, so a spike there never becomes an endpoint.
    if not last[4] or dt >= silent_after:
        return _state(rider, vehicle, fix, anchor, distance, newest, heard, recent, earlier, None, 0), verdict
    return _state(rider, vehicle, fix, fix, distance + counted, newest, heard, recent, earlier, None, 0), verdict


def _jump(state: DeviceState, fix: Fix, dt: float, vmax: float, newest: float, heard: float,
          recent: Seen | None, earlier: Seen | None, back: float, params: HygieneParams) -> tuple[DeviceState, Verdict]:
    """A fix too far from the last one to have been driven: a spike, unless the device keeps
    saying so (or the last fix is so old that anything may have happened since)."""
    count = 1
    pending = state.jump
    if pending is not None and fix[0] > pending[0]:
        from_pending = _metres(pending[1], pending[2], fix[1], fix[2])
        if from_pending - pending[3] - fix[3] <= vmax * (fix[0] - pending[0]):
            count = state.jump_count + 1
    rider, vehicle, last, anchor, distance = state[:5]
    if dt >= params.silent_after_s or count >= params.confirm_pings:
        moved = _state(rider, vehicle, fix, fix, distance, newest, heard, recent, earlier, None, 0)
        return moved, (_REANCHORED if back == 0.0 else Verdict(reanchored=True, back_after_s=back))
    return _state(rider, vehicle, last, anchor, distance, newest, heard, recent, earlier, fix, count), \
        _verdict(Drop.IMPOSSIBLE_JUMP, back)


def _noted(state: DeviceState, newest: float | None, heard: float, recent: Seen | None,
           earlier: Seen | None) -> DeviceState:
    """A dropped ping still proves the device alive and joins the resend memory."""
    rider, vehicle, fix, anchor, distance, _, _, _, _, jump, jump_count = state
    return _state(rider, vehicle, fix, anchor, distance, newest, heard, recent, earlier, jump, jump_count)


def _is_resend(recent: Seen | None, earlier: Seen | None, window: int, eid: str, t: float, lat: float,
               lon: float) -> bool:
    """Whether one of the last ``window`` pings screened had this event id, or this time and position."""
    left = window
    for cell in (recent, earlier):
        while cell is not None and left:
            if cell[0] == eid or (cell[1] == t and cell[2] == lat and cell[3] == lon):
                return True
            cell = cell[5]
            left -= 1
    return False


def _verdict(reason: Drop | None, back: float) -> Verdict:
    if back == 0.0:
        return _ACCEPTED if reason is None else _DROPPED[reason]
    return Verdict(reason=reason, back_after_s=back)


def screen_batch(states: Mapping[str, DeviceState], pings: Sequence[PingLike],
                 params: HygieneParams = DEFAULT_PARAMS, received_s: float | None = None,
                 ) -> tuple[dict[str, DeviceState], list[tuple[PingLike, Verdict]], list[tuple[PingLike, Verdict]]]:
    """Screen a batch in arrival order (one partition's poll). ``states`` is read, not changed;
    returns the new state of every rider in the batch (merge it into the table), the accepted
    pings and the dropped ones, each with its verdict. Unknown riders start fresh, with the
    vehicle unknown (the most permissive speed limit) until the worker sets ``vehicle_type``."""
    touched: dict[str, DeviceState] = {}
    accepted: list[tuple[PingLike, Verdict]] = []
    dropped: list[tuple[PingLike, Verdict]] = []
    for ping in pings:
        rider = getattr(ping, "rider_id", None)
        if type(rider) is not str:
            dropped.append((ping, _INVALID))
            continue
        state = touched.get(rider)
        if state is None:
            state = states.get(rider) or DeviceState(rider_id=rider)
        state, verdict = screen(state, ping, params, received_s)
        touched[rider] = state
        (dropped if verdict.reason is not None else accepted).append((ping, verdict))
    return touched, accepted, dropped
