"""Dispatch per hub: the pool of orders and free riders and the problems it builds (``pool``),
re-plans of the routes being driven (``replan``), and the hub state that holds both (``hub``).

May import: the standard library, ``schemas``, ``solver.model``, ``solver.geo`` and
``solver.reoptimise`` (the re-plan problem and its diff; the solve is the caller's),
``streams.domain.ids`` and ``streams.domain.tracking.alerts`` (the alert kinds it reacts to).
"""
