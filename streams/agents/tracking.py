"""GPS pings and route plans, keyed by rider: position, distance, H3 cell, arrivals at stops.

One agent reads both topics so that one writer owns each rider's tracking state.
"""

from __future__ import annotations

from typing import Any

from schemas import events as ev
from schemas import topics as tp
from streams import lifecycle, tracking
from streams.app import (
    app,
    decode,
    gps_topic,
    handles_each,
    inbox_topic,
    publish,
    rider_routes,
    rider_tracks,
    routes_topic,
)
from streams.ids import derived_id

PARAMS = tracking.ArrivalParams()


async def handle_rider_input(message: Any) -> None:
    item = await decode(message, tp.GPS.events + tp.ROUTES.events)
    if item is None:
        return
    rider_id = item.key
    key = rider_id.encode()  # table keys are the raw message keys
    track = rider_tracks.get(key) or tracking.RiderTrack(rider_id=rider_id)
    if isinstance(item, ev.RoutePlanned):
        rider_routes[key] = tracking.route_stops(item, PARAMS)
        rider_tracks[key] = tracking.start_route(track, item.route_id)
        return
    assert isinstance(item, ev.GpsPing)
    new_track, arrivals = tracking.on_ping(track, rider_routes.get(key) or (), item, PARAMS)
    if arrivals:
        await publish(inbox_topic, [
            ev.StatusChanged(event_id=derived_id(f"{a.route_id}/{a.order_id}", "arrived"), occurred_at=a.at,
                             order_id=a.order_id, to_status=ev.OrderStatus.ARRIVED, reason=lifecycle.GEOFENCE,
                             rider_id=rider_id, location=ev.GeoPoint(lat=a.lat, lon=a.lon))
            for a in arrivals
        ])
    if new_track is not track:
        rider_tracks[key] = new_track


rider_tracking = app.agent(
    app.topic(gps_topic.get_topic_name(), routes_topic.get_topic_name(), key_type=bytes, value_type=bytes,
              key_serializer="raw", value_serializer="raw"),
    name="rider_tracking",
)(handles_each(handle_rider_input))
