"""Each hub's operating policy, pure: re-attempts after a failed delivery, the planning horizon,
even workload, learned travel times and departure waves. One JSON document (``MILESTREAM_HUB_POLICIES``) gives the
defaults and per-hub overrides; an order may override its re-attempts (``OrderCreated``)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from schemas.events import ReattemptMode


class PolicyError(ValueError):
    """A hub policy document that cannot be used; the message names the field."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReattemptPolicy:
    max_attempts: int = 2  # attempts in all, the first included
    mode: ReattemptMode = ReattemptMode.SAME_DAY
    same_day_after_min: float = 60.0  # a same-day re-attempt's window opens this long after the failure...
    same_day_window_min: float = 180.0  # ...and stays open at least this long (the original window's end if later)
    # the latest time of day (minutes after midnight, UTC) a same-day re-attempt's window may open:
    # a failure later than that goes back to the hub (None: no limit)
    same_day_latest_min: float | None = None

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise PolicyError(f"reattempt.max_attempts={self.max_attempts} must be >= 1")
        for name in ("same_day_after_min", "same_day_window_min"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise PolicyError(f"reattempt.{name}={value} must be finite and >= 0")
        latest = self.same_day_latest_min
        if latest is not None and not (0 <= latest <= 24 * 60):
            raise PolicyError(f"reattempt.same_day_latest_min={latest} must be between 0 and 1440 (minutes after midnight)")


@dataclass(frozen=True, slots=True, kw_only=True)
class HubPolicy:
    reattempt: ReattemptPolicy = ReattemptPolicy()
    horizon_min: float = 120.0  # orders are planned once their window opens within this (rolling horizon)
    even_workload: bool = False  # spread stops evenly over the riders used, at some cost in distance
    learned_speeds: bool = True  # plan with the tracker's learned travel times (else one speed per vehicle)
    # Departure waves (streams.domain.dispatch.departure): a rider with a route of hub parcels waits
    # at the hub up to hold_min for more, unless the route has hold_full_drops drops or a window
    # would come closer than hold_slack_min to its end. 0: leave as soon as planned.
    hold_min: float = 0.0
    hold_full_drops: int = 8
    hold_slack_min: float = 30.0

    def __post_init__(self) -> None:
        if not (self.horizon_min > 0):
            raise PolicyError(f"horizon_min={self.horizon_min} must be > 0 (math.inf: plan every order at once)")
        for name in ("hold_min", "hold_slack_min"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise PolicyError(f"{name}={value} must be finite and >= 0")
        if self.hold_full_drops < 1:
            raise PolicyError(f"hold_full_drops={self.hold_full_drops} must be >= 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class HubPolicies:
    default: HubPolicy = HubPolicy()
    hubs: Mapping[str, HubPolicy] = field(default_factory=dict)

    def of(self, hub_id: str) -> HubPolicy:
        return self.hubs.get(hub_id, self.default)


def parse(document: Mapping[str, Any]) -> HubPolicies:
    """``{"default": {...}, "hubs": {"hub-1": {...}}}``; a hub's entry overrides the default field by
    field (``reattempt`` too). Unknown keys are errors: a typo must not silently mean the default."""
    if not isinstance(document, Mapping):
        raise PolicyError("hub policies must be a JSON object with 'default' and/or 'hubs'")
    _known(document, {"default", "hubs"}, "hub policies")
    default = _policy(document.get("default", {}), HubPolicy(), "default")
    hubs_doc = document.get("hubs", {})
    if not isinstance(hubs_doc, Mapping):
        raise PolicyError("'hubs' must be an object of hub id -> policy")
    return HubPolicies(default=default, hubs={str(h): _policy(p, default, f"hubs.{h}") for h, p in hubs_doc.items()})


def _known(doc: Mapping[str, Any], names: set[str], where: str) -> None:
    unknown = sorted(set(doc) - names)
    if unknown:
        raise PolicyError(f"{where}: unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(names))})")


def _policy(doc: Any, base: HubPolicy, where: str) -> HubPolicy:
    if not isinstance(doc, Mapping):
        raise PolicyError(f"{where} must be an object")
    fields = {f.name for f in dataclasses.fields(HubPolicy)}
    _known(doc, fields, where)
    values: dict[str, Any] = {}
    for name, value in doc.items():
        if name == "reattempt":
            values[name] = _reattempt(value, base.reattempt, f"{where}.reattempt")
        elif name in ("even_workload", "learned_speeds"):
            if not isinstance(value, bool):
                raise PolicyError(f"{where}.{name} must be true or false, got {value!r}")
            values[name] = value
        elif name == "hold_full_drops":
            values[name] = _whole(value, f"{where}.{name}")
        else:
            values[name] = _number(value, f"{where}.{name}")
    return _replaced(base, values, where)


def _replaced(base: Any, values: dict[str, Any], where: str) -> Any:
    try:
        return dataclasses.replace(base, **values)
    except PolicyError as e:
        raise PolicyError(f"{where}: {e}") from None


def _reattempt(doc: Any, base: ReattemptPolicy, where: str) -> ReattemptPolicy:
    if not isinstance(doc, Mapping):
        raise PolicyError(f"{where} must be an object")
    _known(doc, {f.name for f in dataclasses.fields(ReattemptPolicy)}, where)
    values: dict[str, Any] = {}
    for name, value in doc.items():
        if name == "mode":
            try:
                values[name] = ReattemptMode(value)
            except ValueError:
                raise PolicyError(f"{where}.mode={value!r} is not one of "
                                  f"{', '.join(m.value for m in ReattemptMode)}") from None
        elif name == "max_attempts":
            values[name] = _whole(value, f"{where}.{name}")
        elif name == "same_day_latest_min" and value is None:
            values[name] = None
        else:
            values[name] = _number(value, f"{where}.{name}")
    return _replaced(base, values, where)


def _whole(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise PolicyError(f"{where} must be a whole number, got {value!r}")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PolicyError(f"{where} must be a number, got {value!r}")
    return float(value)
