"""The exceptions of ``streams``, one root:

    StreamError
    ├── KafkaFailure      a Kafka call failed; ``code`` is the broker's or client's error code
    │   └── TopicError    a topic could not be created or described
    ├── StateError        a state record was refused (wrong kind, unknown version, not ours)
    │   └── StaleState    a tracker checkpoint of another state format (streams.domain.tracking)
    └── WorkerError       a worker cannot go on (an output or checkpoint was not acknowledged)

Kafka's own exceptions are translated once, in :mod:`streams.kafka`, by error code, never by text.
"""

from __future__ import annotations


class StreamError(Exception):
    """Root of every error the stream side raises on purpose."""


class KafkaFailure(StreamError):
    def __init__(self, message: str, *, code: int | None = None, name: str = "", retriable: bool = False,
                 fatal: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.name = name
        self.retriable = retriable
        self.fatal = fatal


class TopicError(KafkaFailure):
    pass


class StateError(StreamError, ValueError):
    pass


class WorkerError(StreamError):
    pass


__all__ = ["KafkaFailure", "StateError", "StreamError", "TopicError", "WorkerError"]
