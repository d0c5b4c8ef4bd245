"""Stream processing: the pure delivery domain (``streams.domain``) and its edges: the Faust app and
agents (``streams.app``, ``streams.agents``) and the batched workers (``streams.workers``).

The domain imports no I/O; the edges import the domain, ``schemas`` and ``solver``, never ``infra``
(settings are passed in by the entry points)."""
