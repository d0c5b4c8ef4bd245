"""Custom zones, pure: polygons turned into H3 cells, and riders entering, dwelling in and
leaving them.

A zone's resolution follows the polygon's size (the finest with about ``target_cells`` cells).
Membership uses core cells to enter and core + one ring of buffer cells to stay (spatial
hysteresis), with ``enter_fixes`` / ``exit_fixes`` consecutive fixes (temporal hysteresis), and a
dwell event after ``dwell_s`` inside. A lat/lon box around all zones' cells spares most pings the
cell lookup. The rider's state is a ``NamedTuple`` (a new one on every ping in or near a zone).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import NamedTuple

import h3
from h3.api import basic_int as h3_int

from schemas import events as ev
from schemas.events import ZoneEventKind  # the kinds are the wire enums
from solver.geo import M_PER_DEG

_new_tuple = tuple.__new__  # a NamedTuple from all its fields in order, without the argument parsing


@dataclass(frozen=True, slots=True, kw_only=True)
class ZoneParams:
    enter_fixes: int = 2  # consecutive fixes in the zone's cells to enter
    exit_fixes: int = 2  # consecutive fixes beyond the zone's buffer ring to exit
    dwell_s: float = 300.0
    worst_accuracy_m: float = 100.0
    target_cells: int = 200  # resolution: the finest giving at most about this many cells...
    finest_resolution: int = 10  # ...but no finer: the buffer ring (~1 cell) must outsize GPS noise
    coarsest_resolution: int = 6
    # cells of one zone at most: a city's zones take tens to a few hundred; a polygon the size of a
    # country would take tens of thousands (memory per zone, seconds to index)
    max_cells: int = 5_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Zone:
    zone_id: str
    resolution: int
    cells: frozenset[int]  # the polygon
    buffer: frozenset[int]  # one ring around it: still inside for staying, not for entering


@dataclass(frozen=True, slots=True, kw_only=True)
class ZoneIndex:
    zones: tuple[Zone, ...]
    levels: tuple[tuple[int, Mapping[int, tuple[tuple[int, bool], ...]]], ...]  # finest first: res, cell -> (zone, core)
    # (south, north, west, east) holding every indexed cell: a ping outside needs no cell lookup
    bounds: tuple[float, float, float, float] = (-90.0, 90.0, -180.0, 180.0)


class ZoneMembership(NamedTuple):
    index: int
    inside: bool
    streak: int  # consecutive fixes against the current membership
    streak_at: datetime  # first fix of the streak
    entered_at: datetime | None
    dwelled: bool
    last_s: float


class RiderZones(NamedTuple):
    """A NamedTuple, not a frozen dataclass: a new one is built on every ping in or near a zone."""

    rider_id: str
    memberships: tuple[ZoneMembership, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ZoneEvent:
    rider_id: str
    zone_id: str
    kind: ZoneEventKind
    at: datetime  # first fix of the streak that confirmed it; for dwell, entry + dwell
    source_ping_id: str


def _polygon_area_m2(polygon: Sequence[tuple[float, float]]) -> float:
    lat0 = sum(p[0] for p in polygon) / len(polygon)
    m_lon = M_PER_DEG * math.cos(math.radians(lat0))
    pts = [(lon * m_lon, lat * M_PER_DEG) for lat, lon in polygon]
    return abs(sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(pts, pts[1:] + pts[:1], strict=True))) / 2


def zone_from_polygon(zone_id: str, polygon: Sequence[tuple[float, float]], params: ZoneParams = ZoneParams()) -> Zone:
    """A polygon of (lat, lon) vertices as H3 cells at a resolution fitting its size: the finest
    with at most ``target_cells`` cells, within [coarsest, finest]. A polygon too small for any
    cell centre takes the cells it overlaps. More than ``max_cells`` cells raise ValueError naming
    the zone (checked on the area first, so a huge polygon is refused before its cells are made)."""
    if len(polygon) < 3:
        raise ValueError(f"zone {zone_id}: a polygon needs at least 3 vertices")
    area = _polygon_area_m2(polygon)
    resolution = params.coarsest_resolution
    for res in range(params.finest_resolution, params.coarsest_resolution - 1, -1):
        if area / h3.average_hexagon_area(res, "m^2") <= params.target_cells:
            resolution = res
            break
    estimate = area / h3.average_hexagon_area(resolution, "m^2")
    if estimate > 2 * params.max_cells:  # surely too many: the exact count below would cost seconds
        raise ValueError(_too_many(zone_id, f"about {estimate:,.0f}", resolution, params))
    shape = h3.LatLngPoly(list(polygon))
    cells = {h3.str_to_int(c) for c in h3.h3shape_to_cells(shape, resolution)}
    if len(cells) > params.max_cells:
        raise ValueError(_too_many(zone_id, f"{len(cells):,}", resolution, params))
    if not cells:
        cells = {h3.str_to_int(c) for c in h3.h3shape_to_cells_experimental(shape, resolution, contain="overlap")}
    ring = {n for c in cells for n in h3_int.grid_disk(c, 1)}
    return Zone(zone_id=zone_id, resolution=resolution, cells=frozenset(cells), buffer=frozenset(ring - cells))


def _too_many(zone_id: str, count: str, resolution: int, params: ZoneParams) -> str:
    return (f"zone {zone_id}: {count} H3 cells at resolution {resolution}, more than max_cells={params.max_cells}; "
            f"split the zone or raise ZoneParams.max_cells")


def zone_index(zones: Sequence[Zone]) -> ZoneIndex:
    """One lookup table per resolution in use; a ping costs one cell lookup at the finest and a
    parent lookup per coarser resolution."""
    levels: dict[int, dict[int, list[tuple[int, bool]]]] = {}
    for i, z in enumerate(zones):
        table = levels.setdefault(z.resolution, {})
        for c in z.cells:
            table.setdefault(c, []).append((i, True))
        for c in z.buffer:
            table.setdefault(c, []).append((i, False))
    return ZoneIndex(zones=tuple(zones), levels=tuple(
        (res, MappingProxyType({c: tuple(v) for c, v in levels[res].items()})) for res in sorted(levels, reverse=True)),
        bounds=_bounds(levels))


def _bounds(levels: Mapping[int, Mapping[int, object]]) -> tuple[float, float, float, float]:
    """A lat/lon box around every indexed cell, one edge length wider on each side: covers the
    cells' curved edges and, for a coarser level, its finer descendants (a ping's coarse cell is the
    parent of its finest one), which stray past the parent by ~0.15 edge. The whole globe when a
    cell is near a pole or crosses the antimeridian. Most pings of a city are outside the few
    zones' box, so it saves their cell lookup."""
    south, north, west, east = math.inf, -math.inf, math.inf, -math.inf
    for res, table in levels.items():
        margin = h3.average_hexagon_edge_length(res, "m") / M_PER_DEG  # degrees of latitude
        for cell in table:
            lats, lons = zip(*h3_int.cell_to_boundary(cell), strict=True)
            lo, hi = min(lats) - margin, max(lats) + margin
            if max(lons) - min(lons) > 180.0 or not -80.0 < lo < hi < 80.0:
                return (-90.0, 90.0, -180.0, 180.0)
            lon_margin = margin / math.cos(math.radians(max(-lo, hi)))
            south, north = min(south, lo), max(north, hi)
            west, east = min(west, min(lons) - lon_margin), max(east, max(lons) + lon_margin)
    return (south, north, west, east)


def zones_from_geojson(doc: Mapping[str, object], params: ZoneParams = ZoneParams()) -> ZoneIndex:
    """A GeoJSON FeatureCollection of Polygons (outer ring, [lon, lat] as GeoJSON has it) as a zone
    index; each feature's ``properties.zone_id`` (else its ``id``) names the zone. Bad input raises
    ValueError naming the feature."""
    if doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        raise ValueError("zones: expected a GeoJSON FeatureCollection")
    zones: list[Zone] = []
    for i, feature in enumerate(doc["features"]):  # type: ignore[arg-type]
        props = feature.get("properties") or {}
        zone_id = str(props.get("zone_id") or feature.get("id") or "")
        geometry = feature.get("geometry") or {}
        if not zone_id:
            raise ValueError(f"zones: feature {i} has no properties.zone_id or id")
        if geometry.get("type") != "Polygon" or not geometry.get("coordinates"):
            raise ValueError(f"zones: feature {zone_id} is not a Polygon")
        ring = [(float(lat), float(lon)) for lon, lat, *_ in geometry["coordinates"][0]]
        if len(ring) > 3 and ring[0] == ring[-1]:
            ring = ring[:-1]
        zones.append(zone_from_polygon(zone_id, ring, params))
    if len({z.zone_id for z in zones}) != len(zones):
        raise ValueError("zones: zone ids must be unique")
    return zone_index(zones)


def on_ping_zones(rider: RiderZones, index: ZoneIndex, ping: ev.GpsPing,
                  params: ZoneParams = ZoneParams()) -> tuple[RiderZones, tuple[ZoneEvent, ...]]:
    """Fold one ping into a rider's zone memberships. Same state object when nothing changes."""
    if not index.levels or (ping.accuracy_m is not None and ping.accuracy_m > params.worst_accuracy_m):
        return rider, ()
    hits: dict[int, bool] = {}  # zone -> in its core (True) or only its buffer (False)
    lat, lon = ping.lat, ping.lon
    south, north, west, east = index.bounds
    if south <= lat <= north and west <= lon <= east:
        cell = 0
        for res, table in index.levels:
            cell = h3_int.latlng_to_cell(lat, lon, res) if not cell else h3_int.cell_to_parent(cell, res)
            for zone, core in table.get(cell, ()):
                hits[zone] = hits.get(zone, False) or core
    memberships = rider.memberships
    if not hits and not memberships:
        return rider, ()
    at = ping.device_time
    t = at.timestamp()
    events: list[ZoneEvent] = []
    kept: list[ZoneMembership] = []

    def emit(m: ZoneMembership, kind: ZoneEventKind, when: datetime) -> None:
        events.append(ZoneEvent(rider_id=rider.rider_id, zone_id=index.zones[m.index].zone_id, kind=kind, at=when,
                                source_ping_id=ping.event_id))

    for m in memberships:
        if t <= m.last_s:
            return rider, ()  # duplicate or out of order: nothing changes
        hit = hits.pop(m.index, None)
        if m.inside:  # rebuilt positionally on every ping inside (``_replace`` is ~4x dearer)
            if hit is None:  # beyond the buffer
                streak = m.streak + 1
                m = ZoneMembership(m.index, True, streak, at if streak == 1 else m.streak_at, m.entered_at, m.dwelled, t)
                if streak >= params.exit_fixes:
                    emit(m, ZoneEventKind.EXITED, m.streak_at)
                    continue
            else:
                m = ZoneMembership(m.index, True, 0, m.streak_at, m.entered_at, m.dwelled, t)
            assert m.entered_at is not None
            if not m.dwelled and t - m.entered_at.timestamp() >= params.dwell_s:
                m = m._replace(dwelled=True)
                emit(m, ZoneEventKind.DWELLED, m.entered_at + timedelta(seconds=params.dwell_s))
            kept.append(m)
        elif hit is None:
            continue  # pending entry ended beyond the buffer
        else:
            m = m._replace(streak=m.streak + hit, last_s=t)  # a buffer fix neither counts nor resets
            kept.append(_maybe_enter(m, params, emit))
    for zone, core in hits.items():
        if core:
            kept.append(_maybe_enter(ZoneMembership(index=zone, inside=False, streak=1, streak_at=at, entered_at=None,
                                                    dwelled=False, last_s=t), params, emit))
    if not kept and not memberships:
        return rider, ()  # only in a zone's buffer
    return _new_tuple(RiderZones, (rider.rider_id, tuple(kept))), tuple(events)


def _maybe_enter(m: ZoneMembership, params: ZoneParams,
                 emit: Callable[[ZoneMembership, ZoneEventKind, datetime], None]) -> ZoneMembership:
    if m.streak < params.enter_fixes:
        return m
    m = m._replace(inside=True, streak=0, entered_at=m.streak_at)
    emit(m, ZoneEventKind.ENTERED, m.streak_at)
    return m
