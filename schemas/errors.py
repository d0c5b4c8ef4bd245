"""The exceptions of ``schemas``, one root::

    SchemaError
    ├── DecodeError            a message value could not be turned into an event
    │   ├── MalformedMessage   not an Avro message we can parse
    │   └── UnknownSchema      framing is fine but the fingerprint / schema id is not ours
    ├── InvalidEvent           (also a ValueError) decodes, but breaks a rule of the contract
    └── RegistryError          the schema registry refused or did not answer a request
"""

from __future__ import annotations


class SchemaError(Exception):
    """Root of every error the contract raises on purpose."""


class DecodeError(SchemaError):
    """A message value could not be turned into an event."""


class MalformedMessage(DecodeError):
    pass


class UnknownSchema(DecodeError):
    pass


class InvalidEvent(SchemaError, ValueError):
    """An event that has the right shape but breaks a rule of the contract."""


class RegistryError(SchemaError):
    """The schema registry refused a request or did not answer in time (text has no credentials)."""


__all__ = ["DecodeError", "InvalidEvent", "MalformedMessage", "RegistryError", "SchemaError", "UnknownSchema"]
