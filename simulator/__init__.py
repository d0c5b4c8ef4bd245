"""A simulated delivery day: the short demo day (``world``) or a whole operating day with two hubs,
stores, shifts, breaks and customers changing their minds (``continuous``); the rider app's
decisions (``rider``); the runner that plays a day against Kafka on a compressed clock, riders
driving at the hidden true speeds of ``truth`` (``runner``); and the day's figures (``scorecard``).
Deterministic under a seed: every random choice comes from a generator seeded by (seed, rider or
order id); ``truth`` is also the ground truth the tracking benchmarks score against.

May import: ``schemas``, ``solver`` (geometry, travel profiles), ``streams.domain`` (OTPs, hub policies) and, in
``runner`` only, the stream edge's Kafka client (``streams.kafka``). Never ``infra``."""
