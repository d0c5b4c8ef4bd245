"""Live tracking: ping hygiene, geofences (``geofence``), custom zones (``zones``), ETAs (``eta``),
alerts, and the tracker that composes them per rider.

May import: the standard library, ``schemas``, ``solver.geo`` and ``solver.travel``, ``h3``,
``streams.domain.ids`` and ``streams.domain.orders.lifecycle`` (the reason a geofence arrival carries).
"""
