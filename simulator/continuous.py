"""A continuous operating day, pure and seeded: two hubs of one city with their stores, riders on
shifts that each owe a planned break, orders arriving all day as a Poisson process with morning
and evening peaks (a share hyperlocal: picked up at a store, promised in 15-30 minutes), and
what customers and riders will do to the plan, as timed incidents the runner plays:
cancellations and address changes (some before the order is planned, some once it is on a
route), a phone going silent mid-route, unplanned breaks. Failures at the door come from
:func:`simulator.world.attempt_outcome`.

Local time is UTC here, as the tracker's learned hours. The day is shaped so that its work fits
its shifts: last-mile orders stop arriving early enough for their windows, and a same-day
re-attempt or a customer's slot, to close before the last shift ends (nothing is left for the
next day, so every order settles)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from schemas import events as ev
from simulator.world import CAPACITY, SKILLS_BY_VEHICLE, Behaviour, Day, Site, offset_point, rng_for, sim_id

# Relative order rates per local hour from 08:00 to 19:00: a morning and an evening peak.
HOURLY_RATE: tuple[float, ...] = (0.5, 0.9, 1.5, 1.6, 1.2, 0.9, 0.8, 0.9, 1.2, 1.6, 1.7)
HUB_OFFSETS_M: tuple[tuple[float, float], ...] = ((0.0, 0.0), (4_500.0, 6_000.0), (-5_000.0, 5_500.0))  # north, east
# from day_start: 08-16, 10-18, 12-20, 14-22 (the evening peak is covered as well as the morning one)
SHIFTS_H: tuple[tuple[float, float], ...] = ((0.0, 8.0), (2.0, 10.0), (4.0, 12.0), (6.0, 14.0))
FLEET_MIX: tuple[ev.VehicleType, ...] = (
    ev.VehicleType.SCOOTER, ev.VehicleType.BIKE, ev.VehicleType.SCOOTER, ev.VehicleType.CAR,
    ev.VehicleType.SCOOTER, ev.VehicleType.BIKE, ev.VehicleType.VAN, ev.VehicleType.SCOOTER,
)
PROMISES_MIN = (15, 20, 25, 30)
# Store riders' shifts from day_start, round-robin over a store's riders: 08-14, 13:30-19:30, 10-16,
# 16-19:30, 09:30-13:00, 16:30-20:00 and 16-20. With seven a store, three are on shift through the
# morning peak (10-12) and four through the evening one (17-19), whose slower streets make each
# order take a rider longer; a six-hour shift's break falls in the lull between them, as a store
# manager places it: a 15-minute promise needs a rider who is free when the order comes, and a store
# whose riders are busy most of the peak breaks its promises (see the README's figures).
STORE_SHIFTS_H: tuple[tuple[float, float], ...] = ((0.0, 6.0), (5.5, 11.5), (2.0, 8.0), (8.0, 11.5), (1.5, 5.0),
                                                   (8.5, 12.0), (8.0, 12.0))
# When each shift's break may start, in hours into it (a shift under six hours owes none)
STORE_BREAKS_H: tuple[tuple[float, float] | None, ...] = ((4.0, 5.0), (1.0, 2.0), (2.5, 4.0), None, None, None,
                                                          None)
HUB_BREAKS_H: tuple[tuple[float, float] | None, ...] = ((3.0, 5.0),) * len(SHIFTS_H)
STORE_FLEET: tuple[ev.VehicleType, ...] = (ev.VehicleType.SCOOTER, ev.VehicleType.BIKE)


@dataclass(frozen=True, slots=True, kw_only=True)
class ContinuousConfig:
    seed: int = 7
    orders: int = 1000
    riders: int = 48  # riders of the hubs
    store_riders: int = 56  # riders stationed at stores (seven a store), on top of ``riders``
    hubs: int = 2
    day_start: datetime = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)  # 08:00 local: first shift, first orders
    orders_until_h: float = 11.0  # orders arrive until 19:00
    last_mile_until_h: float = 10.0  # then only hyperlocal ones: a last-mile window must close by...
    windows_end_h: float = 12.5  # ...20:30, leaving a same-day re-attempt time before the last shift ends
    last_mile_radius_km: float = 5.0
    store_radius_km: tuple[float, float] = (0.5, 2.5)
    hyperlocal_share: float = 0.3
    cancel_share: float = 0.03
    address_change_share: float = 0.03
    customer_slot_share: float = 0.12  # last-mile orders whose customer picks the re-attempt's slot
    three_attempts_share: float = 0.05  # last-mile orders allowed a third attempt
    unplanned_breaks_per_rider: float = 0.15
    horizon_min: float = 120.0  # the hubs' planning horizon: "before it is planned" cancellations respect it
    break_min: int = 30

    def __post_init__(self) -> None:
        if self.orders < 1 or self.riders < self.hubs or self.store_riders < 0:
            raise ValueError(f"need at least one order and a rider per hub, got orders={self.orders} "
                             f"riders={self.riders} store_riders={self.store_riders} hubs={self.hubs}")
        if not 1 <= self.hubs <= len(HUB_OFFSETS_M):
            raise ValueError(f"hubs={self.hubs} must be between 1 and {len(HUB_OFFSETS_M)}")
        for name in ("hyperlocal_share", "cancel_share", "address_change_share", "customer_slot_share",
                     "three_attempts_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}={getattr(self, name)} must be in [0, 1]")
        if not 0 < self.last_mile_until_h <= self.orders_until_h <= len(HOURLY_RATE):
            raise ValueError("need 0 < last_mile_until_h <= orders_until_h <= 11")
        if self.windows_end_h < self.last_mile_until_h + 2.5:
            raise ValueError("windows_end_h must leave a 2-hour window to the last last-mile order")

    def at(self, hours: float) -> datetime:
        return self.day_start + timedelta(hours=hours)


# ---- incidents ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Cancel:
    """The customer cancels at ``at``, or ``after_assigned_s`` after the order's first assignment
    (then only while it is still waiting at the hub or the store)."""

    order_id: str
    at: datetime | None = None
    after_assigned_s: float | None = None
    reason: str = "customer changed their mind"


@dataclass(frozen=True, slots=True, kw_only=True)
class AddressChange:
    """The customer moves the drop, at ``at`` or ``after_assigned_s`` after the first assignment."""

    order_id: str
    drop: ev.Location
    at: datetime | None = None
    after_assigned_s: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PhoneSilent:
    """The rider's phone goes silent for ``duration_s`` on the first leg of a route it starts after ``at``."""

    rider_id: str
    at: datetime
    duration_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class UnplannedBreak:
    """The rider stops for a break of its own at the first stop or hub after ``at``."""

    rider_id: str
    at: datetime
    duration_s: float


Incident = Cancel | AddressChange | PhoneSilent | UnplannedBreak


# ---- the day ------------------------------------------------------------------------------------


def arrival_times(config: ContinuousConfig, rng: random.Random, count: int | None = None,
                  until_h: float | None = None) -> list[datetime]:
    """``count`` (default ``config.orders``) creation times until ``until_h`` (default
    ``config.orders_until_h``): a Poisson process with rate :data:`HOURLY_RATE` conditioned on its
    count (independent draws from the rate's density), in order."""
    until = config.orders_until_h if until_h is None else until_h
    hours = int(math.ceil(until))
    weights = [HOURLY_RATE[h] * min(1.0, until - h) for h in range(hours)]
    times = []
    for _ in range(config.orders if count is None else count):
        h = rng.choices(range(hours), weights=weights)[0]
        width = min(1.0, until - h)
        times.append(config.at(h + rng.random() * width))
    return sorted(t.replace(microsecond=0) for t in times)


def _sites(config: ContinuousConfig, rng: random.Random, lat0: float, lon0: float) -> tuple[list[Site], list[Site]]:
    hubs, stores = [], []
    for k in range(config.hubs):
        north, east = HUB_OFFSETS_M[k]
        lat, lon = offset_point(lat0, lon0, north, east)
        hub_id = f"hub-{k + 1}"
        hubs.append(Site(site_id=hub_id, hub_id=hub_id, lat=lat, lon=lon))
        for j in range(rng.randint(2, 4)):
            r = rng.uniform(*config.store_radius_km) * 1000
            theta = rng.random() * 2 * math.pi
            s_lat, s_lon = offset_point(lat, lon, r * math.cos(theta), r * math.sin(theta))
            stores.append(Site(site_id=f"store-{k + 1}{chr(ord('a') + j)}", hub_id=hub_id, lat=s_lat, lon=s_lon))
    return hubs, stores


def _shifts(config: ContinuousConfig, rng: random.Random, sites: list[Site], count: int, *, first: int,
            fleet: tuple[ev.VehicleType, ...], hours: tuple[tuple[float, float], ...],
            breaks_h: tuple[tuple[float, float] | None, ...], stationed: bool) -> list[ev.RiderShiftStarted]:
    """``count`` riders spread over ``sites`` (hubs, or stores they are stationed at: ``station_id``),
    round-robin; a site's riders take the shifts ``hours`` (hours from day_start) in turn and the
    vehicles of ``fleet`` in turn, shifted by one each round through the fleet (else, with 8
    vehicles over 4 shifts, no car or van would start before noon and no fragile parcel could leave
    before); a shift of six hours or more owes a break starting within its ``breaks_h`` window."""
    shifts = []
    per_site = [0] * len(sites)
    for i in range(count if sites else 0):
        k = i % len(sites)
        n = per_site[k]
        per_site[k] += 1
        site = sites[k]
        vehicle = fleet[(n + n // len(fleet)) % len(fleet)]  # shifted every round: each shift gets each vehicle
        begin_h, end_h = hours[n % len(hours)]
        break_h = breaks_h[n % len(hours)]
        start, end = config.at(begin_h), config.at(end_h)
        rider_id = f"rider-{first + i + 1:03d}"
        w, v, u = CAPACITY[vehicle]
        breaks = () if break_h is None or end - start < timedelta(hours=6) else (ev.PlannedBreak(
            break_id=f"{rider_id}/break-1", earliest_start=start + timedelta(hours=break_h[0]),
            latest_start=start + timedelta(hours=break_h[1]), duration_s=config.break_min * 60),)
        shifts.append(ev.RiderShiftStarted(
            event_id=sim_id(rng), occurred_at=start, rider_id=rider_id, hub_id=site.hub_id, vehicle_type=vehicle,
            capacity_weight_kg=w, capacity_volume_l=v, capacity_units=u, skills=SKILLS_BY_VEHICLE.get(vehicle, ()),
            shift_start=start, shift_end=end, start=ev.GeoPoint(lat=site.lat, lon=site.lon), breaks=breaks,
            station_id=site.site_id if stationed else None))
    return shifts


def _around(rng: random.Random, lat: float, lon: float, r_min_m: float, r_max_m: float) -> tuple[float, float]:
    r = math.sqrt(rng.uniform((r_min_m / r_max_m) ** 2, 1.0)) * r_max_m
    theta = rng.random() * 2 * math.pi
    return offset_point(lat, lon, r * math.cos(theta), r * math.sin(theta))


def make_continuous_day(config: ContinuousConfig = ContinuousConfig(), *, lat0: float = 12.9716,
                        lon0: float = 77.5946) -> Day:
    """The whole day, a pure function of ``config``."""
    rng = rng_for(config.seed, "continuous")
    hubs, stores = _sites(config, rng, lat0, lon0)
    shifts = (_shifts(config, rng, hubs, config.riders, first=0, fleet=FLEET_MIX, hours=SHIFTS_H, breaks_h=HUB_BREAKS_H,
                      stationed=False)
              + _shifts(config, rng_for(config.seed, "store-riders"), stores, config.store_riders, first=config.riders,
                        fleet=STORE_FLEET, hours=STORE_SHIFTS_H, breaks_h=STORE_BREAKS_H,
                        stationed=True))
    # Exactly the hyperlocal share, through the day: store orders follow the day's rate until the
    # orders stop, last-mile ones until their windows can still close within the day.
    n_hyper = round(config.hyperlocal_share * config.orders)
    stamped = sorted([(t, True) for t in arrival_times(config, rng_for(config.seed, "arrivals-hyperlocal"), n_hyper)]
                     + [(t, False) for t in arrival_times(config, rng_for(config.seed, "arrivals"),
                                                          config.orders - n_hyper, config.last_mile_until_h)])
    created = [t for t, _ in stamped]
    hyperlocal = {i for i, (_, hyper) in enumerate(stamped) if hyper}
    windows_end = config.at(config.windows_end_h)
    orders: list[ev.OrderCreated] = []
    for i, at in enumerate(created):
        o_rng = rng_for(config.seed, f"order/{i}")
        hub = hubs[o_rng.randrange(len(hubs))]
        order_id = f"ord-{config.seed}-{i + 1:05d}"
        common = dict(event_id=sim_id(o_rng), occurred_at=at, order_id=order_id,
                      tracking_id=f"TRK{o_rng.getrandbits(40):010X}", hub_id=hub.hub_id, currency="INR",
                      cod_amount=o_rng.choice((0.0, 0.0, 0.0, 249.0, 899.0)),
                      instructions=o_rng.choice(("", "", "Leave with security", "Call on arrival")))
        if i in hyperlocal:
            store = o_rng.choice([s for s in stores if s.hub_id == hub.hub_id])
            promise = o_rng.choice(PROMISES_MIN)
            lat, lon = _around(o_rng, store.lat, store.lon, 200.0, promise * 80.0)
            orders.append(ev.OrderCreated(
                **common, mode=ev.DeliveryMode.HYPERLOCAL,
                pickup=ev.Location(lat=store.lat, lon=store.lon, address=f"{store.site_id} counter"),
                drop=ev.Location(lat=lat, lon=lon, address=f"{o_rng.randrange(1, 400)} Sim Lane"),
                window_start=at, window_end=at + timedelta(minutes=promise), promise_min=promise,
                service_time_s=o_rng.choice((60, 90)), weight_kg=round(o_rng.uniform(0.2, 3.0), 2),
                volume_l=round(o_rng.uniform(0.5, 6.0), 1), units=1, max_attempts=1))
            continue
        lat, lon = _around(o_rng, hub.lat, hub.lon, 300.0, config.last_mile_radius_km * 1000)
        length = timedelta(minutes=o_rng.choice((120, 150, 180)))
        lead = timedelta(minutes=o_rng.uniform(30, 240))
        opens = at + lead
        opens = opens.replace(second=0, microsecond=0) + timedelta(minutes=(-opens.minute) % 5)
        if opens + length > windows_end:
            opens = max(at + timedelta(minutes=30), windows_end - length)
            length = min(length, windows_end - opens)
        roll, extra = o_rng.random(), o_rng.random()
        skills: tuple[str, ...] = ("fragile",) if roll < 0.05 else ("cold_chain",) if roll < 0.08 else ()
        orders.append(ev.OrderCreated(
            **common, mode=ev.DeliveryMode.LAST_MILE,
            drop=ev.Location(lat=lat, lon=lon, address=f"{o_rng.randrange(1, 400)} Sim Street"),
            window_start=opens, window_end=opens + length, service_time_s=o_rng.choice((60, 90, 120, 180)),
            weight_kg=round(o_rng.uniform(0.2, 4.0), 2), volume_l=round(o_rng.uniform(0.5, 8.0), 1),
            units=o_rng.choice((1, 1, 1, 2, 3)), required_skills=skills,
            reattempt=ev.ReattemptMode.CUSTOMER_SLOT if extra < config.customer_slot_share else None,
            max_attempts=3 if 1 - extra < config.three_attempts_share else None))
    incidents = _incidents(config, orders, shifts)
    last_shift_end = max(s.shift_end for s in shifts)
    behaviour = Behaviour(slots_end=min(windows_end + timedelta(minutes=60), last_shift_end - timedelta(minutes=60)))
    return Day(config=config, hub_id=hubs[0].hub_id, shifts=tuple(shifts), orders=tuple(orders), hubs=tuple(hubs),
               stores=tuple(stores), incidents=tuple(incidents), behaviour=behaviour)


def _incidents(config: ContinuousConfig, orders: list[ev.OrderCreated],
               shifts: list[ev.RiderShiftStarted]) -> list[Incident]:
    """Cancellations and address changes, half before the order is planned (orders the rolling
    horizon holds back, well before their window nears) and half once on a route; a silent phone;
    unplanned breaks. Every order gets at most one."""
    rng = rng_for(config.seed, "incidents")
    horizon = timedelta(minutes=config.horizon_min)
    held = [o for o in orders if o.mode is ev.DeliveryMode.LAST_MILE
            and o.window_start - horizon - o.occurred_at >= timedelta(minutes=30)]
    others = [o for o in orders if o not in held]
    rng.shuffle(held)
    rng.shuffle(others)
    n_cancel = round(config.cancel_share * len(orders))
    n_move = round(config.address_change_share * len(orders))
    before = held[: n_cancel // 2 + n_move // 2]
    after = others[: (n_cancel - n_cancel // 2) + (n_move - n_move // 2)]
    out: list[Incident] = []

    def when_held(o: ev.OrderCreated) -> datetime:
        latest = (o.window_start - horizon - o.occurred_at).total_seconds() - 600
        return o.occurred_at + timedelta(seconds=rng.uniform(300, max(300.0, latest)))

    def moved(o: ev.OrderCreated) -> ev.Location:
        lat, lon = _around(rng, o.drop.lat, o.drop.lon, 300.0, 2_000.0)
        return ev.Location(lat=lat, lon=lon, address=f"{rng.randrange(1, 400)} New Street (moved)")

    for k, o in enumerate(before):
        if k < n_cancel // 2:
            out.append(Cancel(order_id=o.order_id, at=when_held(o), reason="ordered twice by mistake"))
        else:
            out.append(AddressChange(order_id=o.order_id, drop=moved(o), at=when_held(o)))
    for k, o in enumerate(after):
        delay = rng.uniform(60, 900) if o.mode is ev.DeliveryMode.LAST_MILE else rng.uniform(20, 120)
        if k < n_cancel - n_cancel // 2:
            out.append(Cancel(order_id=o.order_id, after_assigned_s=delay))
        else:
            out.append(AddressChange(order_id=o.order_id, drop=moved(o), after_assigned_s=delay))
    first = next(s for s in shifts if s.shift_start == config.day_start)
    out.append(PhoneSilent(rider_id=first.rider_id, at=config.at(rng.uniform(2.5, 4.5)),
                           duration_s=rng.uniform(13 * 60, 17 * 60)))
    for _ in range(round(config.unplanned_breaks_per_rider * len(shifts))):
        s = rng.choice(shifts)
        span = (s.shift_end - s.shift_start).total_seconds()
        out.append(UnplannedBreak(rider_id=s.rider_id, at=s.shift_start + timedelta(seconds=rng.uniform(0.2, 0.8) * span),
                                  duration_s=rng.uniform(8 * 60, 20 * 60)))
    return out


__all__ = [
    "HOURLY_RATE", "AddressChange", "Cancel", "ContinuousConfig", "Incident", "PhoneSilent", "UnplannedBreak",
    "arrival_times", "make_continuous_day",
]
