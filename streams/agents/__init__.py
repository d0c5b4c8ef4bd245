"""Faust agents, one module per input stream. Each module's ``install(streams)`` declares its tables
and agents on a :class:`streams.app.Streams`; its handlers are plain async functions (decode, call
the pure domain, emit) that run the same on Faust and offline in tests.

May import: ``streams.app`` (the edge), ``streams.domain``, ``schemas``, ``solver``; never ``infra``."""
