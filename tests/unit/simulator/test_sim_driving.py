"""A rider driving a planned route: what the phone reports, deterministic under a seed."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from schemas import Codec
from schemas import events as ev
from simulator import driving as dr
from simulator import world

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
DAY = world.make_day(world.DayConfig(seed=5, orders=12, riders=2))
SPEED = world.SPEED_MPS[ev.VehicleType.SCOOTER]


def route_of(orders: tuple[ev.OrderCreated, ...] = DAY.orders[:6], route_id: str = "route-sim-1") -> ev.RoutePlanned:
    stops = tuple(ev.PlannedStop(order_id=o.order_id, kind=ev.StopKind.DROP, lat=o.drop.lat, lon=o.drop.lon,
                                 planned_arrival=T0 + timedelta(minutes=15 * (i + 1)), service_time_s=o.service_time_s)
                  for i, o in enumerate(orders))
    hub = DAY.shifts[0].start
    return ev.RoutePlanned(event_id=f"{route_id}-p", occurred_at=T0, rider_id=DAY.shifts[0].rider_id, route_id=route_id,
                           hub_id=DAY.hub_id, stops=stops, start=hub, planned_start=T0,
                           planned_end=T0 + timedelta(hours=3), distance_m=10_000.0)


def run(seed: int = 7, params: dr.DriveParams = dr.DriveParams(), route: ev.RoutePlanned | None = None) -> list[dr.Step]:
    return list(dr.drive(route or route_of(), SPEED, T0, seed, params))


def pings(steps: list[dr.Step]) -> list[ev.GpsPing]:
    return [s.ping for s in steps if isinstance(s, dr.Ping)]


def test_drive_is_deterministic_under_a_seed() -> None:
    assert run(seed=7) == run(seed=7)


def test_drive_differs_under_another_seed() -> None:
    one, two = pings(run(seed=7)), pings(run(seed=8))
    assert [(p.lat, p.lon) for p in one] != [(p.lat, p.lon) for p in two]
    assert {p.event_id for p in one}.isdisjoint({p.event_id for p in two})


def test_one_handover_per_stop_in_route_order_then_back_at_hub() -> None:
    route = route_of()
    steps = run(route=route)
    handovers = [s for s in steps if isinstance(s, dr.Handover)]
    assert [h.order_id for h in handovers] == [s.order_id for s in route.stops]
    assert isinstance(steps[-1], dr.BackAtHub)
    assert sum(isinstance(s, dr.BackAtHub) for s in steps) == 1
    for h, stop in zip(handovers, route.stops, strict=True):
        assert (h.lat, h.lon) == (stop.lat, stop.lon)


def test_step_times_never_go_back() -> None:
    times = [dr.step_time(s) for s in run()]
    assert times == sorted(times)
    assert times[0] > T0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ping_device_times_strictly_increase_except_exact_duplicates(seed: int) -> None:
    params = dr.DriveParams(duplicate_probability=0.3, gap_probability=0.05)
    ps = pings(run(seed=seed, params=params))
    duplicates = 0
    for prev, cur in zip(ps, ps[1:], strict=False):
        if cur.device_time == prev.device_time:
            assert cur == prev and cur.event_id == prev.event_id
            duplicates += 1
        else:
            assert cur.device_time > prev.device_time
    assert duplicates > 0
    distinct = [p for i, p in enumerate(ps) if i == 0 or p.event_id != ps[i - 1].event_id]
    assert len({p.event_id for p in distinct}) == len(distinct)  # duplicates only ever adjacent


def test_no_duplicates_or_gaps_when_disabled() -> None:
    params = dr.DriveParams(duplicate_probability=0.0, gap_probability=0.0)
    ps = pings(run(params=params))
    assert len({p.event_id for p in ps}) == len(ps)
    gaps = [(b.device_time - a.device_time).total_seconds() for a, b in zip(ps, ps[1:], strict=False)]
    assert max(gaps) <= params.ping_interval_s * 2 + 1e-6


def test_gaps_leave_holes_in_the_pings() -> None:
    params = dr.DriveParams(gap_probability=0.2, gap_s=(60.0, 60.0), duplicate_probability=0.0)
    ps = pings(run(params=params))
    gaps = [(b.device_time - a.device_time).total_seconds() for a, b in zip(ps, ps[1:], strict=False)]
    assert max(gaps) >= 60.0


def test_every_handover_is_delivered_when_failure_probability_is_zero() -> None:
    handovers = [s for s in run(params=dr.DriveParams(failure_probability=0.0)) if isinstance(s, dr.Handover)]
    assert len(handovers) == 6
    assert all(h.delivered and h.reason == "" for h in handovers)


def test_every_handover_fails_with_a_known_reason_when_failure_probability_is_one() -> None:
    handovers = [s for s in run(params=dr.DriveParams(failure_probability=1.0)) if isinstance(s, dr.Handover)]
    assert len(handovers) == 6
    assert all(not h.delivered for h in handovers)
    assert all(h.reason in dr.FAILURE_REASONS for h in handovers)


def test_pings_carry_the_rider_and_device_and_pass_the_codec() -> None:
    codec = Codec()
    route = route_of()
    ps = pings(run(route=route))
    assert ps
    for p in ps:
        assert p.rider_id == route.rider_id and p.device_id == f"dev-{route.rider_id}"
        assert p.occurred_at > p.device_time  # received after the fix
        assert p.accuracy_m is not None and p.accuracy_m >= 0
        back = codec.decode(codec.encode(p))
        assert isinstance(back, ev.GpsPing)
        # the wire carries timestamp-millis: equal up to the millisecond
        assert back == dataclasses.replace(p, occurred_at=to_ms(p.occurred_at), device_time=to_ms(p.device_time))


def to_ms(t: datetime) -> datetime:
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def test_rider_stops_near_each_drop_for_the_service_time() -> None:
    params = dr.DriveParams(gap_probability=0.0, duplicate_probability=0.0, noise_m=0.0)
    steps = run(params=params)
    last_ping: ev.GpsPing | None = None
    for s in steps:
        if isinstance(s, dr.Ping):
            last_ping = s.ping
        elif isinstance(s, dr.Handover):
            assert last_ping is not None
            assert (last_ping.lat, last_ping.lon) == pytest.approx((s.lat, s.lon), abs=1e-9)


def test_route_with_two_stops_at_the_same_address_keeps_ping_times_increasing() -> None:
    same = DAY.orders[0]
    twin = ev.OrderCreated(**{**{f: getattr(same, f) for f in same.__dataclass_fields__}, "order_id": "twin",
                              "event_id": "twin-e"})
    route = route_of((same, twin, DAY.orders[1]), route_id="route-twins")
    for seed in range(10):
        ps = pings(run(seed=seed, route=route, params=dr.DriveParams(duplicate_probability=0.0)))
        times = [p.device_time for p in ps]
        assert all(b > a for a, b in zip(times, times[1:], strict=False)), seed


def test_new_event_id_is_stable_per_seed_and_parts() -> None:
    assert dr.new_event_id(1, "pod", "o1") == dr.new_event_id(1, "pod", "o1")
    assert dr.new_event_id(1, "pod", "o1") != dr.new_event_id(1, "pod", "o2")
    assert dr.new_event_id(1, "pod", "o1") != dr.new_event_id(2, "pod", "o1")
