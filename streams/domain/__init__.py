"""The delivery domain, pure: decide and evolve functions and their state, grouped by area.

- ``orders``: the order lifecycle, OTPs, customer notices;
- ``tracking``: ping hygiene, geofences, zones, ETAs, alerts, the tracker that composes them;
- ``dispatch``: the hub's pool of orders and riders, re-plans, the hub state that holds both;
- ``ids``: event ids derived from their cause, so a replay makes the same ones.

May import: the standard library, ``schemas``, ``solver`` (model, geometry, travel times, the
re-plan problem; never an engine) and ``h3``. Never Kafka, Faust, ClickHouse, HTTP,
the clock, ``infra`` or the stream edges (``streams.agents``, ``streams.workers``); of the rest of
``streams`` only its exception root ``streams.errors``. Callers pass time and ids in, so a replay
derives the same events.
"""
