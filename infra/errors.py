"""The exceptions of ``infra``, one root::

    InfraError
    ├── BrokerError      the embedded broker did not start, or a topic could not be created
    └── RoadTableError   a road-routing server (OSRM, Valhalla) refused or did not answer
"""

from __future__ import annotations


class InfraError(Exception):
    """Root of every error the composition root raises on purpose."""


class BrokerError(InfraError):
    """The embedded broker did not start, or a topic could not be created."""


class RoadTableError(InfraError):
    """A road-routing server refused a request or did not answer."""


__all__ = ["BrokerError", "InfraError", "RoadTableError"]
