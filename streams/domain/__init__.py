"""The delivery domain, pure: decide and evolve functions and their state, grouped by area.

- ``orders``: the order lifecycle, OTPs, customer notices;
- ``tracking``: ping hygiene, geofences and zones, ETAs, alerts, the tracker that composes them;
- ``dispatch``: the hub's pool of orders and riders, re-plans.

May import: the standard library, ``schemas``, ``solver`` (its model, geometry and travel times),
``h3`` and ``numpy``. Never Kafka, Faust, ClickHouse, HTTP, the clock or ``infra``: callers pass
time and ids in, so a replay derives the same events.
"""
