"""The simulated day is seeded: the same seed gives the same day, and every event it makes
keeps the wire contract."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from schemas import Codec
from schemas import events as ev
from simulator import world
from solver.geo import haversine_m

SMALL = world.DayConfig(seed=11, orders=60, riders=7)


def test_same_seed_gives_an_identical_day() -> None:
    one, two = world.make_day(SMALL), world.make_day(world.DayConfig(seed=11, orders=60, riders=7))
    assert one == two
    assert one.orders == two.orders and one.shifts == two.shifts


def test_different_seed_gives_a_different_day() -> None:
    one = world.make_day(SMALL)
    other = world.make_day(world.DayConfig(seed=12, orders=60, riders=7))
    assert [o.drop for o in one.orders] != [o.drop for o in other.orders]
    assert {o.event_id for o in one.orders}.isdisjoint({o.event_id for o in other.orders})
    assert {o.order_id for o in one.orders}.isdisjoint({o.order_id for o in other.orders})


def test_day_has_the_configured_numbers_of_orders_and_riders_with_unique_ids() -> None:
    day = world.make_day(SMALL)
    assert len(day.orders) == 60 and len(day.shifts) == 7
    assert len({o.order_id for o in day.orders}) == 60
    assert len({s.rider_id for s in day.shifts}) == 7
    ids = [e.event_id for e in (*day.orders, *day.shifts)]
    assert len(set(ids)) == len(ids)
    assert {o.hub_id for o in day.orders} == {s.hub_id for s in day.shifts} == {day.hub_id}


def test_every_generated_event_passes_the_codec() -> None:
    codec = Codec()
    day = world.make_day(world.DayConfig(seed=3, orders=200, riders=10))
    for event in (*day.shifts, *day.orders):
        data = codec.encode(event)
        assert codec.decode(data) == event


def test_orders_fall_within_the_radius_and_their_windows_within_the_day() -> None:
    cfg = SMALL
    day = world.make_day(cfg)
    first = cfg.day_start + timedelta(minutes=30)
    last_end = first + timedelta(hours=cfg.windows_until_h)
    for o in day.orders:
        assert haversine_m((cfg.hub_lat, cfg.hub_lon), (o.drop.lat, o.drop.lon)) <= cfg.radius_km * 1000 * 1.01
        assert o.window_end - o.window_start == timedelta(hours=cfg.window_hours)
        assert first <= o.window_start and o.window_end <= last_end
        assert o.units >= 1 and o.weight_kg > 0


def test_shifts_follow_the_fleet_mix_with_its_capacities() -> None:
    day = world.make_day(SMALL)
    for i, s in enumerate(day.shifts):
        vehicle = world.FLEET[i % len(world.FLEET)]
        assert s.vehicle_type is vehicle
        assert (s.capacity_weight_kg, s.capacity_volume_l, s.capacity_units) == world.CAPACITY[vehicle]
        assert s.start == ev.GeoPoint(lat=SMALL.hub_lat, lon=SMALL.hub_lon)
        assert s.shift_end > s.shift_start


@pytest.mark.parametrize(("orders", "riders"), [(0, 1), (1, 0), (-3, 5)])
def test_day_config_refuses_an_empty_day(orders: int, riders: int) -> None:
    with pytest.raises(ValueError, match="at least one"):
        world.DayConfig(orders=orders, riders=riders)


def test_offset_point_moves_by_the_given_metres() -> None:
    lat, lon = world.offset_point(12.97, 77.59, 300.0, 400.0)
    assert haversine_m((12.97, 77.59), (lat, lon)) == pytest.approx(500.0, rel=0.01)
    assert math.isclose(world.offset_point(12.97, 77.59, 0, 0)[0], 12.97)


def test_rng_for_is_stable_per_seed_and_name() -> None:
    assert world.rng_for(1, "a").random() == world.rng_for(1, "a").random()
    assert world.rng_for(1, "a").random() != world.rng_for(1, "b").random()
    assert world.rng_for(1, "a").random() != world.rng_for(2, "a").random()
