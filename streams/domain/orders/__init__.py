"""Orders: the lifecycle state machine (the ledger's only rules), delivery OTPs, customer notices.

May import: the standard library, ``schemas`` and ``streams.domain.ids``; nothing of the other areas.
"""
