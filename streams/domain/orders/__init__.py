"""Orders: the lifecycle state machine (the ledger's only rules), delivery OTPs, customer notices."""
