"""A planned route around a Bengaluru hub, with stops about 1 km apart (well outside each other's
geofences), shared by the tracking and geofence tests."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from schemas import events as ev

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
HUB = (12.9716, 77.5946)
RIDER = "rider-1"


def offset(north_m: float, east_m: float, origin: tuple[float, float] = HUB) -> tuple[float, float]:
    lat, lon = origin
    return lat + north_m / 111_320.0, lon + east_m / (111_320.0 * math.cos(math.radians(lat)))


STOPS = [offset(1000, 0), offset(1000, 1000), offset(2000, 1000), offset(2000, 2000), offset(3000, 2000)]


def route(points: list[tuple[float, float]] = STOPS, route_id: str = "route-1") -> ev.RoutePlanned:
    stops = tuple(ev.PlannedStop(order_id=f"ord-{i + 1}", kind=ev.StopKind.DROP, lat=lat, lon=lon,
                                 planned_arrival=T0 + timedelta(minutes=10 * (i + 1)), service_time_s=120)
                  for i, (lat, lon) in enumerate(points))
    return ev.RoutePlanned(event_id=f"{route_id}-planned", occurred_at=T0, rider_id=RIDER, route_id=route_id,
                           hub_id="hub-1", stops=stops, start=ev.GeoPoint(lat=HUB[0], lon=HUB[1]), planned_start=T0,
                           planned_end=T0 + timedelta(hours=1), distance_m=5000.0)
