"""Live tracking: ping hygiene, geofences and zones, ETAs, alerts, and the tracker that composes them."""
