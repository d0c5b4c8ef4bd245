"""Orders: the lifecycle state machine (the ledger's only rules), re-attempt decisions, delivery OTPs,
customer notices.

May import: the standard library, ``schemas``, ``streams.domain.ids`` and ``streams.domain.hub_policy``;
nothing of the other areas.
"""
