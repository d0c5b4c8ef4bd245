"""A simulated delivery day: a hub, riders and orders (``world``), riders driving their planned
routes with GPS noise, gaps and duplicates, handing over or failing at stops (``driving``), and
the runner that plays it against Kafka on a compressed clock (``runner``). Deterministic under a
seed: every random choice comes from a generator seeded by (seed, rider or order id)."""
