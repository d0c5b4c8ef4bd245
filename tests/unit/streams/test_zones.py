"""Custom zones: given polygons, when these (noisy) pings arrive, then these zone events."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import timedelta

import pytest
from h3.api import basic_int as h3_int
from route_fixture import HUB, RIDER, T0, offset
from test_geofence_arrivals import ping, stay

from schemas import events as ev
from streams.domain.tracking import zones as zn


def square(centre: tuple[float, float], half_m: float) -> list[tuple[float, float]]:
    return [offset(-half_m, -half_m, centre), offset(-half_m, half_m, centre), offset(half_m, half_m, centre),
            offset(half_m, -half_m, centre)]


MARKET = zn.zone_from_polygon("market", square(offset(5000, 5000), 400))
ZONES = zn.zone_index([MARKET])
ZP = zn.ZoneParams()


def feed_zones(pings: Iterable[ev.GpsPing], rider: zn.RiderZones | None = None,
               index: zn.ZoneIndex = ZONES) -> tuple[zn.RiderZones, list[zn.ZoneEvent]]:
    rider = rider or zn.RiderZones(rider_id=RIDER)
    out: list[zn.ZoneEvent] = []
    for p in pings:
        rider, events = zn.on_ping_zones(rider, index, p, ZP)
        out.extend(events)
    return rider, out


def test_zone_resolution_follows_the_polygon_size() -> None:
    big = zn.zone_from_polygon("city", square(HUB, 5000))
    small = zn.zone_from_polygon("gate", square(HUB, 15))
    assert big.resolution < MARKET.resolution <= small.resolution == ZP.finest_resolution
    assert 20 <= len(MARKET.cells) <= ZP.target_cells
    assert small.cells  # too small for a cell centre: the overlapping cells
    assert not (MARKET.cells & MARKET.buffer)


def test_zone_enter_dwell_and_exit() -> None:
    centre = offset(5000, 5000)
    outside = offset(-1500, 0, centre)
    pings = [*stay(outside, 0, 30), *stay(centre, 100, 400), *stay(outside, 600, 30)]
    _, events = feed_zones(pings)
    assert [(e.zone_id, e.kind) for e in events] == [
        ("market", zn.ZoneEventKind.ENTERED), ("market", zn.ZoneEventKind.DWELLED), ("market", zn.ZoneEventKind.EXITED)]
    entered, dwelled, exited = (e.at for e in events)
    assert entered == T0 + timedelta(seconds=100)  # first fix of the confirming streak
    assert dwelled == entered + timedelta(seconds=ZP.dwell_s)
    assert exited == T0 + timedelta(seconds=600)


def test_zone_needs_consecutive_fixes_and_ignores_a_lone_outlier() -> None:
    centre = offset(5000, 5000)
    far = offset(-1500, 0, centre)
    # one fix inside among fixes outside: no entry
    _, events = feed_zones([ping(0, far), ping(10, centre), ping(20, far), ping(30, far)])
    assert events == []
    # inside, then one fix far away, then inside again: no exit
    pings = stay(centre, 0, 60)
    pings[3] = ping(30, far)
    rider, events = feed_zones(pings)
    assert [e.kind for e in events] == [zn.ZoneEventKind.ENTERED]
    assert [m.inside for m in rider.memberships] == [True]


def test_zone_buffer_ring_keeps_a_rider_inside_but_does_not_let_one_in() -> None:
    ring_cell = next(iter(MARKET.buffer))
    edge = h3_int.cell_to_latlng(ring_cell)
    _, events = feed_zones(stay(edge, 0, 120))
    assert events == []  # the buffer alone never enters
    rider, events = feed_zones(stay(offset(5000, 5000), 0, 30))
    assert [e.kind for e in events] == [zn.ZoneEventKind.ENTERED]
    rider, events = feed_zones(stay(edge, 100, 120), rider)
    assert events == []  # ...but keeps a rider who is in
    bad = [ping(400 + 10 * i, offset(-1500, 0, offset(5000, 5000)), accuracy=200.0) for i in range(5)]
    after, events = feed_zones(bad, rider)
    assert events == [] and after is rider  # poor fixes are no evidence


def test_the_zone_bounds_skip_no_ping_that_the_cell_lookup_would_find() -> None:
    """The bounding box only saves cell lookups: outcomes equal those of an index without it, also
    for a coarse zone (its cells are parents of the finest level's) and pings all around the edges."""
    big = zn.zone_from_polygon("ward", square(offset(5000, 5000), 2500))
    index = zn.zone_index([MARKET, big])
    assert len(index.levels) == 2
    unbounded = zn.ZoneIndex(zones=index.zones, levels=index.levels)
    assert unbounded.bounds == (-90.0, 90.0, -180.0, 180.0)
    south, north, west, east = index.bounds
    assert west < offset(5000, 2600)[1] and offset(5000, 7400)[1] < east  # the wide zone is in the box...
    assert offset(5000, 11_000)[1] > east  # ...and a ping 3.5 km beyond it is outside
    rng = random.Random(5)
    rider = plain = zn.RiderZones(rider_id=RIDER)
    found = outside = 0
    t = 0.0
    for _ in range(300):  # short stays in and out of both zones and on both sides of the box's edges
        spot = rng.uniform(-1000, 11_000), rng.uniform(-1000, 11_000)
        for _ in range(rng.randint(1, 5)):
            t += 10
            p = ping(t, offset(spot[0] + rng.gauss(0, 30), spot[1] + rng.gauss(0, 30)),
                     accuracy=rng.choice([None, 8.0, 150.0]))
            rider, events = zn.on_ping_zones(rider, index, p, ZP)
            plain, expected = zn.on_ping_zones(plain, unbounded, p, ZP)
            assert (rider, events) == (plain, expected)
            found += len(events)
            outside += not (south <= p.lat <= north and west <= p.lon <= east)
    assert found > 50 and outside > 200


def test_zone_bounds_fall_back_to_the_globe_across_the_antimeridian() -> None:
    date_line = zn.zone_from_polygon("fiji", [(-17.0, 179.99), (-17.0, -179.99), (-16.99, -179.99), (-16.99, 179.99)])
    assert zn.zone_index([date_line]).bounds == (-90.0, 90.0, -180.0, 180.0)


def test_a_zone_with_too_many_cells_is_refused_naming_it() -> None:
    """A 15 x 15 degree polygon (tens of thousands of cells) is refused on its area, before any cell is made."""
    country = [(0.0, 0.0), (15.0, 0.0), (15.0, 15.0), (0.0, 15.0)]
    with pytest.raises(ValueError, match=r"zone country: about [\d,]+ H3 cells at resolution 6, "
                                         r"more than max_cells=5000"):
        zn.zone_from_polygon("country", country)


def test_the_cell_limit_is_exact_and_a_parameter() -> None:
    cells = len(MARKET.cells)
    assert zn.zone_from_polygon("market", square(offset(5000, 5000), 400), zn.ZoneParams(max_cells=cells)).cells
    with pytest.raises(ValueError, match=rf"zone market: {cells} H3 cells at resolution \d+, "
                                         rf"more than max_cells={cells - 1}"):
        zn.zone_from_polygon("market", square(offset(5000, 5000), 400), zn.ZoneParams(max_cells=cells - 1))


def test_geojson_zones_over_the_limit_name_the_feature() -> None:
    ring = [[0.0, 0.0], [15.0, 0.0], [15.0, 15.0], [0.0, 15.0], [0.0, 0.0]]
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"zone_id": "north"}, "geometry": {"type": "Polygon", "coordinates": [ring]}}]}
    with pytest.raises(ValueError, match="zone north: about"):
        zn.zones_from_geojson(doc)
