"""The continuous day is seeded and shaped as the issue asks: two hubs of one city with their
stores, 30 % hyperlocal orders promised in 15-30 minutes, orders arriving all day with morning and
evening peaks, shifts owing a break, and incidents (cancellations, address changes, a silent phone,
unplanned breaks) that fit the day."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

import pytest

from schemas import Codec
from schemas import events as ev
from simulator import continuous as ct
from simulator import world
from solver.geo import haversine_m

CFG = ct.ContinuousConfig(seed=3)
DAY = ct.make_continuous_day(CFG)
HUBS = {h.hub_id: h for h in DAY.hubs}
STORES = {s.site_id: s for s in DAY.stores}


def test_same_seed_gives_the_same_day_and_another_seed_another() -> None:
    assert ct.make_continuous_day(ct.ContinuousConfig(seed=3)) == DAY
    other = ct.make_continuous_day(ct.ContinuousConfig(seed=4))
    assert [o.drop for o in other.orders] != [o.drop for o in DAY.orders]
    assert {o.order_id for o in other.orders}.isdisjoint({o.order_id for o in DAY.orders})


def test_two_hubs_of_one_city_with_two_to_four_stores_each_nearby() -> None:
    assert len(DAY.hubs) == 2
    a, b = DAY.hubs
    assert 6_000 <= haversine_m((a.lat, a.lon), (b.lat, b.lon)) <= 10_000
    per_hub = Counter(s.hub_id for s in DAY.stores)
    assert set(per_hub) == set(HUBS) and all(2 <= n <= 4 for n in per_hub.values())
    for s in DAY.stores:
        assert haversine_m((s.lat, s.lon), (HUBS[s.hub_id].lat, HUBS[s.hub_id].lon)) <= 2_500 * 1.01


HUB_SHIFTS = [s for s in DAY.shifts if s.station_id is None]
STORE_SHIFTS = [s for s in DAY.shifts if s.station_id is not None]


def test_counts_ids_and_riders_split_over_the_hubs() -> None:
    assert len(DAY.orders) == 1000 and len(HUB_SHIFTS) == 48 and len(STORE_SHIFTS) == 56
    assert len({o.order_id for o in DAY.orders}) == 1000
    ids = [e.event_id for e in (*DAY.orders, *DAY.shifts)]
    assert len(set(ids)) == len(ids) and len({s.rider_id for s in DAY.shifts}) == 104
    assert Counter(s.hub_id for s in HUB_SHIFTS) == {"hub-1": 24, "hub-2": 24}
    assert {s.vehicle_type for s in HUB_SHIFTS} == set(ev.VehicleType)
    assert {o.hub_id for o in DAY.orders} == set(HUBS)
    for s in HUB_SHIFTS:
        assert (s.start.lat, s.start.lon) == (HUBS[s.hub_id].lat, HUBS[s.hub_id].lon)
    for s in DAY.shifts:
        assert (s.capacity_weight_kg, s.capacity_volume_l, s.capacity_units) == world.CAPACITY[s.vehicle_type]


def test_store_riders_are_stationed_at_every_store_of_their_hub_from_the_first_order_to_the_last_promise() -> None:
    per_store = Counter(s.station_id for s in STORE_SHIFTS)
    assert set(per_store) == set(STORES) and max(per_store.values()) - min(per_store.values()) <= 1
    for s in STORE_SHIFTS:
        store = STORES[s.station_id]
        assert (s.start.lat, s.start.lon) == (store.lat, store.lon) and s.hub_id == store.hub_id
        assert s.vehicle_type in (ev.VehicleType.SCOOTER, ev.VehicleType.BIKE)
    for store in STORES:  # someone is at every store while orders come, and until the last promise
        shifts = [s for s in STORE_SHIFTS if s.station_id == store]
        assert min(s.shift_start for s in shifts) <= CFG.day_start
        assert max(s.shift_end for s in shifts) >= CFG.at(CFG.orders_until_h) + timedelta(minutes=30)


def test_three_store_riders_are_free_at_every_store_through_the_morning_peak_and_four_through_the_evening() -> None:
    for store in STORES:
        shifts = [s for s in STORE_SHIFTS if s.station_id == store]
        for hour in (10, 11, 17, 18):  # the morning and evening peaks of HOURLY_RATE
            begin, end = CFG.at(hour - 8), CFG.at(hour - 8 + 1)
            on = [s for s in shifts if s.shift_start <= begin and end <= s.shift_end]
            # no break of theirs can fall in that hour: its latest end is before, or its earliest start after
            free = [s for s in on if all(b.latest_start + timedelta(seconds=b.duration_s) <= begin
                                         or b.earliest_start >= end for b in s.breaks)]
            assert len(free) >= (3 if hour < 14 else 4), (store, hour, [s.rider_id for s in on])


def test_every_six_hour_shift_at_a_store_owes_one_break_and_shorter_ones_none() -> None:
    for s in STORE_SHIFTS:
        long = s.shift_end - s.shift_start >= timedelta(hours=6)
        assert len(s.breaks) == (1 if long else 0), s.rider_id
        for b in s.breaks:
            assert s.shift_start < b.earliest_start <= b.latest_start
            assert b.latest_start + timedelta(seconds=b.duration_s) <= s.shift_end


def test_shifts_are_staggered_and_each_owes_one_half_hour_break_inside_it() -> None:
    starts = Counter(s.shift_start.hour for s in HUB_SHIFTS)
    assert set(starts) == {8, 10, 12, 14}
    skilled = {ev.VehicleType.CAR, ev.VehicleType.VAN}  # fragile and cold-chain parcels leave with every shift
    for hub in HUBS:
        assert {s.shift_start for s in HUB_SHIFTS if s.hub_id == hub and s.vehicle_type in skilled} == {
            s.shift_start for s in HUB_SHIFTS}
    for s in HUB_SHIFTS:
        assert s.shift_end - s.shift_start == timedelta(hours=8) and s.occurred_at == s.shift_start
        (b,) = s.breaks
        assert b.duration_s == 1800
        assert s.shift_start < b.earliest_start <= b.latest_start
        assert b.latest_start + timedelta(seconds=b.duration_s) <= s.shift_end


def test_exactly_the_hyperlocal_share_picked_up_at_a_store_of_their_hub_and_promised_in_15_to_30_min() -> None:
    hyper = [o for o in DAY.orders if o.mode is ev.DeliveryMode.HYPERLOCAL]
    assert len(hyper) == 300
    for o in hyper:
        assert o.pickup is not None and 15 <= (o.promise_min or 0) <= 30
        store = next(s for s in DAY.stores if (s.lat, s.lon) == (o.pickup.lat, o.pickup.lon))
        assert store.hub_id == o.hub_id
        assert o.window_start == o.occurred_at and o.window_end == o.occurred_at + timedelta(minutes=o.promise_min)
        assert haversine_m((o.pickup.lat, o.pickup.lon), (o.drop.lat, o.drop.lon)) <= o.promise_min * 80 * 1.01
        assert o.max_attempts == 1


def test_last_mile_windows_are_two_to_three_hours_open_later_and_close_within_the_day() -> None:
    end = CFG.at(CFG.windows_end_h)
    last_mile = [o for o in DAY.orders if o.mode is ev.DeliveryMode.LAST_MILE]
    for o in last_mile:
        assert o.pickup is None and o.promise_min is None
        assert timedelta(hours=2) <= o.window_end - o.window_start <= timedelta(hours=3)
        assert timedelta(minutes=30) <= o.window_start - o.occurred_at <= timedelta(hours=4, minutes=5)
        assert o.window_end <= end
        assert o.occurred_at < CFG.at(CFG.last_mile_until_h)
        assert o.reattempt in (None, ev.ReattemptMode.CUSTOMER_SLOT)  # no next-day work in a demo day
    slot = sum(o.reattempt is ev.ReattemptMode.CUSTOMER_SLOT for o in last_mile) / len(last_mile)
    assert 0.07 < slot < 0.17
    assert any(o.max_attempts == 3 for o in last_mile)
    held = sum(o.window_start - o.occurred_at > timedelta(minutes=CFG.horizon_min) for o in last_mile)
    assert held > 100  # the rolling horizon has work to hold back


def test_orders_arrive_through_the_day_with_morning_and_evening_peaks() -> None:
    times = [o.occurred_at for o in DAY.orders]
    assert times == sorted(times)
    assert CFG.day_start <= times[0] and times[-1] < CFG.at(CFG.orders_until_h)
    by_hour = Counter(t.hour for t in times)
    morning, trough, evening = by_hour[10] + by_hour[11], by_hour[14] + by_hour[15], by_hour[16] + by_hour[17]
    assert morning > 1.3 * trough and evening > 1.3 * trough
    assert by_hour[8] < by_hour[11]


def test_the_hyperlocal_share_holds_through_the_day_and_the_last_hour_is_store_orders_only() -> None:
    def share(orders: list[ev.OrderCreated]) -> float:
        return sum(o.mode is ev.DeliveryMode.HYPERLOCAL for o in orders) / len(orders)

    last_mile_until = CFG.at(CFG.last_mile_until_h)
    for lo, hi in ((8, 12), (12, 15), (15, 18)):
        part = [o for o in DAY.orders if lo <= o.occurred_at.hour < hi]
        assert 0.2 <= share(part) <= 0.4, (lo, hi, share(part))
    late = [o for o in DAY.orders if o.occurred_at >= last_mile_until]
    assert late and share(late) == 1.0


def test_arrivals_follow_the_hourly_rate_curve() -> None:
    cfg = ct.ContinuousConfig(orders=40_000, riders=2, hubs=1)
    by_hour = Counter(t.hour - 8 for t in ct.arrival_times(cfg, random.Random(1)))
    total = sum(ct.HOURLY_RATE)
    for h, rate in enumerate(ct.HOURLY_RATE):
        assert by_hour[h] / 40_000 == pytest.approx(rate / total, rel=0.08)


def test_incidents_cancel_and_move_about_three_percent_each_half_before_planning_half_on_a_route() -> None:
    kinds = Counter(type(i).__name__ for i in DAY.incidents)
    assert kinds["Cancel"] == 30 and kinds["AddressChange"] == 30
    orders = {o.order_id: o for o in DAY.orders}
    touched = [i.order_id for i in DAY.incidents if isinstance(i, ct.Cancel | ct.AddressChange)]
    assert len(touched) == len(set(touched))  # at most one per order
    horizon = timedelta(minutes=CFG.horizon_min)
    for i in DAY.incidents:
        if not isinstance(i, ct.Cancel | ct.AddressChange):
            continue
        o = orders[i.order_id]
        assert (i.at is None) != (i.after_assigned_s is None)
        if i.at is not None:  # before dispatch plans it: the horizon still holds it back
            assert o.occurred_at < i.at < o.window_start - horizon
        if isinstance(i, ct.AddressChange):
            assert 300 * 0.99 <= haversine_m((o.drop.lat, o.drop.lon), (i.drop.lat, i.drop.lon)) <= 2_000 * 1.01
    timed = [i for i in DAY.incidents if isinstance(i, ct.Cancel | ct.AddressChange)]
    assert sum(i.at is not None for i in timed) == 30 and sum(i.after_assigned_s is not None for i in timed) == 30


def test_one_phone_goes_silent_for_about_a_quarter_hour_and_some_riders_take_unplanned_breaks() -> None:
    (silent,) = [i for i in DAY.incidents if isinstance(i, ct.PhoneSilent)]
    assert 13 * 60 <= silent.duration_s <= 17 * 60
    shift = next(s for s in DAY.shifts if s.rider_id == silent.rider_id)
    assert shift.shift_start < silent.at < shift.shift_end
    unplanned = [i for i in DAY.incidents if isinstance(i, ct.UnplannedBreak)]
    assert len(unplanned) >= 3
    shifts = {s.rider_id: s for s in DAY.shifts}
    for b in unplanned:
        assert shifts[b.rider_id].shift_start < b.at < shifts[b.rider_id].shift_end
        assert 8 * 60 <= b.duration_s <= 20 * 60


def test_the_days_work_fits_its_shifts() -> None:
    last_end = max(s.shift_end for s in DAY.shifts)
    assert max(o.window_end for o in DAY.orders) <= last_end - timedelta(hours=1)
    assert DAY.behaviour.slots_end is not None and DAY.behaviour.slots_end <= last_end - timedelta(minutes=60)


def test_every_event_of_the_day_passes_the_codec() -> None:
    codec = Codec()
    for event in (*DAY.shifts, *DAY.orders):
        assert codec.decode(codec.encode(event)) == event


@pytest.mark.parametrize("bad", [dict(orders=0), dict(riders=1, hubs=2), dict(hubs=4), dict(hyperlocal_share=1.5),
                                 dict(windows_end_h=11.0)])
def test_config_refuses_days_that_cannot_be_played(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ct.ContinuousConfig(**bad)


def test_attempt_outcomes_are_fixed_per_order_and_attempt_and_fail_at_the_set_rate() -> None:
    b = world.Behaviour()
    assert [world.attempt_outcome(1, f"o{i}", 1, b) for i in range(50)] == \
        [world.attempt_outcome(1, f"o{i}", 1, b) for i in range(50)]
    first = [world.attempt_outcome(1, f"o{i}", 1, b) for i in range(5000)]
    later = [world.attempt_outcome(1, f"o{i}", 2, b) for i in range(5000)]
    assert sum(x is not None for x in first) / 5000 == pytest.approx(0.08, abs=0.015)
    assert sum(x is not None for x in later) / 5000 == pytest.approx(0.2, abs=0.025)
    reasons = Counter(x[0] for x in first if x)
    assert set(reasons) == set(ev.FailureReason)
    assert all(words for _, words in filter(None, first))
    assert world.attempt_outcome(1, "o", 1, world.Behaviour(failure_rate=0.0)) is None


def test_a_customer_picks_a_slot_one_to_two_hours_later_that_closes_by_the_end_of_the_day() -> None:
    asked = CFG.at(3)
    answer, start, end = world.customer_slot(3, "o1", asked, DAY.behaviour)
    assert asked < answer <= asked + timedelta(minutes=15)
    assert timedelta(minutes=60) <= start - answer <= timedelta(minutes=135) and end - start == timedelta(minutes=90)
    late = DAY.behaviour.slots_end - timedelta(minutes=30)  # type: ignore[operator]
    answer, start, end = world.customer_slot(3, "o1", late, DAY.behaviour)
    assert end <= max(DAY.behaviour.slots_end, answer + timedelta(minutes=60))  # type: ignore[type-var]
    assert answer < start < end
