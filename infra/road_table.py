"""Travel times from a road-network table service, at the edge: OSRM or Valhalla over HTTP.

Both implement :class:`solver.travel.TravelModel`, so :func:`solver.travel.problem_durations`
takes them in place of the haversine default. Standard library only (urllib): one blocking
request per block of the matrix, in turn; a 2,001-location matrix is 21 x 21 = 441 OSRM requests
of 100 x 100 (OSRM's default ``--max-table-size``) or 41 x 41 Valhalla requests of 50 x 50
(Valhalla's default 2,500 ``max_matrix_location_pairs``).

Durations are rounded up to whole seconds (a plan is never optimistic) and a location to itself
is 0. A pair the road network cannot connect (``null`` in the answer) is an error naming the
locations: a stop on an island or outside the extract should be fixed in the data, not routed at
a made-up time.

Time of day: neither service is asked for a departure time. OSRM's durations come from the
speeds its data was built with (live traffic goes in through ``osrm-customize``), Valhalla's
from its costing's speeds; ``depart_s_of_day`` is accepted for the interface and ignored.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from infra.errors import RoadTableError
from solver.model import Matrix
from solver.travel import Location, Metres, Profile

# (sources, targets) -> (durations in seconds, distances in metres), rows by source; None: no route
Block = Callable[[Sequence[Location], Sequence[Location]], tuple[list[list[float | None]], list[list[float | None]]]]


def fetch_json(request: urllib.request.Request, timeout_s: float, service: str) -> Any:
    """One request; every way it can fail becomes a :class:`RoadTableError` that says where and why."""
    where = f"{service} at {request.full_url[:200]}"
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body = response.read()
    except urllib.error.HTTPError as e:
        detail = e.read()[:500].decode("utf-8", "replace")
        raise RoadTableError(f"{where} answered HTTP {e.code}: {detail}") from e
    except (urllib.error.URLError, OSError) as e:  # refused, DNS, timeout (TimeoutError is an OSError)
        reason = getattr(e, "reason", e)
        raise RoadTableError(f"cannot reach {where}: {reason}") from e
    try:
        return json.loads(body)
    except ValueError as e:
        raise RoadTableError(f"{where} answered with something that is not JSON: {body[:200]!r}") from e


def full_table(locations: Sequence[Location], block_size: int, block: Block, service: str) -> tuple[Matrix, Metres]:
    """Ask ``block`` for every block_size x block_size piece of the matrix and put them together."""
    n = len(locations)
    seconds: list[list[int]] = [[0] * n for _ in range(n)]
    metres: list[list[float]] = [[0.0] * n for _ in range(n)]
    starts = range(0, n, block_size)
    for s0 in starts:
        sources = range(s0, min(n, s0 + block_size))
        for t0 in starts:
            targets = range(t0, min(n, t0 + block_size))
            durations, distances = block([locations[i] for i in sources], [locations[j] for j in targets])
            if len(durations) != len(sources) or any(len(row) != len(targets) for row in durations) \
                    or len(distances) != len(sources) or any(len(row) != len(targets) for row in distances):
                raise RoadTableError(f"{service} answered a table that is not {len(sources)} x {len(targets)}")
            for i, d_row, m_row in zip(sources, durations, distances, strict=True):
                for j, d, m in zip(targets, d_row, m_row, strict=True):
                    if i == j:
                        continue
                    if d is None or m is None:
                        raise RoadTableError(f"{service} finds no road from location {i} {locations[i]} "
                                             f"to location {j} {locations[j]}")
                    if not (math.isfinite(d) and d >= 0 and math.isfinite(m) and m >= 0):
                        raise RoadTableError(f"{service} answered duration={d}, distance={m} from {i} to {j}")
                    seconds[i][j] = math.ceil(d)
                    metres[i][j] = float(m)
    return tuple(map(tuple, seconds)), tuple(map(tuple, metres))


class _RoadTable:
    """What both services share: the TravelModel methods on top of ``table``, and checked limits."""

    __slots__ = ()
    block_size: int
    timeout_s: float
    distance_profile: str

    def __post_init__(self) -> None:
        if self.block_size < 1 or self.timeout_s <= 0:
            raise ValueError(f"block_size={self.block_size} and timeout_s={self.timeout_s} must be > 0")

    def table(self, locations: Sequence[Location], profile: str) -> tuple[Matrix, Metres]:
        raise NotImplementedError

    def durations(self, locations: Sequence[Location], profile: Profile, depart_s_of_day: float) -> Matrix:
        return self.table(locations, profile.name)[0]

    def distances(self, locations: Sequence[Location]) -> Metres:
        return self.table(locations, self.distance_profile)[1]


@dataclass(frozen=True, slots=True, kw_only=True)
class OsrmTable(_RoadTable):
    """OSRM's ``/table/v1`` service. osrm-routed serves one dataset, built with one Lua profile
    (car.lua, bicycle.lua...), so each vehicle profile has its own server."""

    servers: Mapping[str, str] = field(hash=False)  # profile name -> base URL, e.g. "http://osrm-van:5000"
    distance_profile: str = "car"  # whose road distances distances() gives
    timeout_s: float = 30.0
    block_size: int = 100  # osrm-routed --max-table-size: sources x destinations <= its square

    def table(self, locations: Sequence[Location], profile: str) -> tuple[Matrix, Metres]:
        """Whole seconds and metres between all locations, for one profile's server."""
        base = self.servers.get(profile)
        if base is None:
            raise RoadTableError(f"no OSRM server for profile {profile!r} (servers: {sorted(self.servers)})")

        def block(sources: Sequence[Location], targets: Sequence[Location]) -> Any:
            points = sources if sources == targets else (*sources, *targets)  # a diagonal block: once
            coords = ";".join(f"{lon:.6f},{lat:.6f}" for lat, lon in points)
            src = ";".join(str(k) for k in range(len(sources)))
            dst = ";".join(str(len(points) - len(targets) + k) for k in range(len(targets)))
            url = (f"{base.rstrip('/')}/table/v1/{profile}/{coords}"
                   f"?sources={src}&destinations={dst}&annotations=duration,distance")
            answer = fetch_json(urllib.request.Request(url), self.timeout_s, "OSRM")
            if not isinstance(answer, dict) or answer.get("code") != "Ok":
                code, message = (answer.get("code"), answer.get("message")) if isinstance(answer, dict) else (None, None)
                raise RoadTableError(f"OSRM at {base} refused the table: code={code!r} {message or ''}".rstrip())
            if "durations" not in answer or "distances" not in answer:
                raise RoadTableError(f"OSRM at {base} answered without durations or distances")
            return answer["durations"], answer["distances"]

        return full_table(locations, self.block_size, block, "OSRM")


# Valhalla costing per vehicle profile. No van costing exists: "truck" assumes a lorry (height,
# weight, hazmat restrictions), so a delivery van is timed as a car.
VALHALLA_COSTING: Mapping[str, str] = {"bike": "bicycle", "scooter": "motor_scooter", "car": "auto", "van": "auto"}


@dataclass(frozen=True, slots=True, kw_only=True)
class ValhallaMatrix(_RoadTable):
    """Valhalla's ``/sources_to_targets`` service: one server, a costing model per profile."""

    base_url: str  # e.g. "http://valhalla:8002"
    costing: Mapping[str, str] = field(default_factory=lambda: dict(VALHALLA_COSTING), hash=False)
    distance_profile: str = "car"
    timeout_s: float = 30.0
    block_size: int = 50  # sources x targets <= Valhalla's max_matrix_location_pairs (2,500 by default)

    def table(self, locations: Sequence[Location], profile: str) -> tuple[Matrix, Metres]:
        """Whole seconds and metres between all locations, with this profile's costing."""
        costing = self.costing.get(profile)
        if costing is None:
            raise RoadTableError(f"no Valhalla costing for profile {profile!r} (costing: {dict(self.costing)})")
        url = f"{self.base_url.rstrip('/')}/sources_to_targets"

        def block(sources: Sequence[Location], targets: Sequence[Location]) -> Any:
            body = {"sources": [{"lat": lat, "lon": lon} for lat, lon in sources],
                    "targets": [{"lat": lat, "lon": lon} for lat, lon in targets],
                    "costing": costing, "units": "kilometers"}
            request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                             headers={"Content-Type": "application/json"})
            answer = fetch_json(request, self.timeout_s, "Valhalla")
            rows = answer.get("sources_to_targets") if isinstance(answer, dict) else None
            if not isinstance(rows, list):
                raise RoadTableError(f"Valhalla at {url} answered without sources_to_targets: {str(answer)[:200]}")
            try:  # rows by source, cells by target, as Valhalla orders them; distances in km
                durations = [[c["time"] for c in row] for row in rows]
                distances = [[None if c["distance"] is None else c["distance"] * 1000 for c in row] for row in rows]
            except (KeyError, TypeError) as e:
                raise RoadTableError(f"Valhalla at {url} answered cells without time or distance: {e!r}") from e
            return durations, distances

        return full_table(locations, self.block_size, block, "Valhalla")
