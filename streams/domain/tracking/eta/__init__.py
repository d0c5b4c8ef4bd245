"""ETAs for the remaining stops of a route, pure: p50 and p90 arrival times that learn from the
fleet's own tracks and arrivals.

- ``speeds``: the prior, speeds learned per H3 cell and hour, fleet and rider factors;
- ``calibration``: the band, from the errors of past estimates;
- ``estimate``: the route's ETAs, when to recompute and emit, a rider's state on a route;
- ``histogram``: the forgetting histograms of log ratios the other two read quantiles from.

Callers import names from this package, not from its modules. May import: the standard library,
``schemas``, ``solver.geo``, ``solver.travel`` and ``h3``.
"""

from streams.domain.tracking.eta.calibration import (
    AHEAD_EDGES,
    HORIZON_EDGES_S,
    Calibration,
    CalibrationParams,
    calibration_bucket,
    horizon_bucket,
    observe_arrival,
    observe_arrivals,
)
from streams.domain.tracking.eta.estimate import (
    EmitParams,
    EtaRoute,
    EtaStop,
    Pace,
    RiderEta,
    StopEta,
    arrived,
    departed,
    due,
    eta_route,
    leg_seconds,
    paused,
    route_etas,
    should_emit,
    start_route,
    update,
)
from streams.domain.tracking.eta.speeds import (
    LegSample,
    Position,
    ServiceSample,
    SpeedModel,
    SpeedParams,
    SpeedSample,
    TravelTimes,
    learn_legs,
    learn_services,
    learn_speeds,
    refresh,
    segment_sample,
    travel_times,
    travel_times_moved,
)

__all__ = [
    "AHEAD_EDGES", "HORIZON_EDGES_S", "Calibration", "CalibrationParams", "EmitParams", "EtaRoute", "EtaStop",
    "LegSample", "Pace", "Position", "RiderEta", "ServiceSample", "SpeedModel", "SpeedParams", "SpeedSample",
    "StopEta", "TravelTimes", "arrived", "calibration_bucket", "departed", "due", "eta_route", "horizon_bucket", "leg_seconds",
    "learn_legs", "learn_services", "learn_speeds", "observe_arrival", "observe_arrivals", "paused", "refresh",
    "route_etas", "segment_sample", "should_emit", "start_route", "travel_times", "travel_times_moved", "update",
]
