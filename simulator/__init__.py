"""A simulated delivery day: a hub, riders and orders (``world``), riders driving their planned
routes with GPS noise, gaps and duplicates, handing over or failing at stops (``driving``), and
the runner that plays it against Kafka on a compressed clock (``runner``). Deterministic under a
seed: every random choice comes from a generator seeded by (seed, rider or order id); ``truth``
is the hidden ground truth the tracking benchmarks score against.

May import: ``schemas``, ``solver`` (geometry, travel profiles), ``streams.domain`` (OTPs) and, in
``runner`` only, the stream edge's Kafka client (``streams.kafka``). Never ``infra``."""
