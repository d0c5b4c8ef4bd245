"""OSRM and Valhalla table clients against a real local HTTP server answering in their JSON shapes."""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from infra.road_table import OsrmTable, RoadTableError, ValhallaMatrix
from solver.geo import haversine_m
from solver.model import Job, Problem, Vehicle
from solver.travel import PROFILES, TravelModel, problem_durations

LOCATIONS = [(48.8566, 2.3522), (48.8867, 2.3431), (48.8400, 2.2800), (48.8700, 2.3900),
             (48.8300, 2.3600), (48.8600, 2.3000), (48.8750, 2.3100)]


def fake_seconds(a: tuple[float, float], b: tuple[float, float]) -> float:
    return haversine_m(a, b) / 5.0 + 0.25  # never whole: rounding up shows


def fake_metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return haversine_m(a, b) * 1.3


@dataclass
class FakeService:
    """What the fake server answers, and what it was asked."""

    mode: str = "ok"  # ok | http500 | http400 | refused | null | slow | garbage
    requests: list[dict[str, Any]] = field(default_factory=list)


def osrm_answer(service: FakeService, raw: str) -> tuple[int, Any]:
    url = urlsplit(raw)
    query = parse_qs(url.query)
    _, _, _, profile, coords = url.path.split("/", 4)
    points = [(float(lat), float(lon)) for lon, lat in (c.split(",") for c in coords.split(";"))]
    sources = [int(k) for k in query["sources"][0].split(";")]
    targets = [int(k) for k in query["destinations"][0].split(";")]
    service.requests.append({"profile": profile, "points": points, "sources": sources, "targets": targets,
                             "annotations": query["annotations"][0], "raw": raw})
    if service.mode == "http400":
        return 400, {"code": "InvalidQuery", "message": "Query string malformed close to position 42"}
    if service.mode == "refused":
        return 200, {"code": "NoSegment", "message": "Could not find a matching segment for coordinate 0"}
    durations = [[fake_seconds(points[s], points[t]) if s != t else 0 for t in targets] for s in sources]
    distances = [[fake_metres(points[s], points[t]) for t in targets] for s in sources]
    if service.mode == "null":
        durations[-1][0] = None
    return 200, {"code": "Ok", "durations": durations, "distances": distances, "sources": [], "destinations": []}


def valhalla_answer(service: FakeService, body: dict[str, Any]) -> tuple[int, Any]:
    service.requests.append(body)
    if service.mode == "http400":
        return 400, {"error_code": 154, "error": "Path distance exceeds the max distance limit", "status_code": 400,
                     "status": "Bad Request"}
    sources = [(p["lat"], p["lon"]) for p in body["sources"]]
    targets = [(p["lat"], p["lon"]) for p in body["targets"]]
    rows = [[{"from_index": i, "to_index": j, "time": fake_seconds(s, t),
              "distance": fake_metres(s, t) / 1000} for j, t in enumerate(targets)] for i, s in enumerate(sources)]
    if service.mode == "null":
        rows[0][-1]["time"] = rows[0][-1]["distance"] = None
    return 200, {"sources_to_targets": rows, "units": "kilometers"}


def handler_for(service: FakeService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def reply(self, status: int, payload: Any) -> None:
            if service.mode == "slow":
                time.sleep(0.6)
            data = b"<html>502 Bad Gateway</html>" if service.mode == "garbage" else json.dumps(payload).encode()
            status = 500 if service.mode == "http500" else status
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client timed out and left, as tested
                pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self.reply(*osrm_answer(service, self.path))

        def do_POST(self) -> None:  # noqa: N802
            assert self.path == "/sources_to_targets"
            assert self.headers["Content-Type"] == "application/json"
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            self.reply(*valhalla_answer(service, body))

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return Handler


@pytest.fixture
def server() -> Iterator[tuple[str, FakeService]]:
    service = FakeService()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(service))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", service
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def expected(locations: list[tuple[float, float]]) -> tuple[list[list[int]], list[list[float]]]:
    seconds = [[math.ceil(fake_seconds(a, b)) if i != j else 0 for j, b in enumerate(locations)]
               for i, a in enumerate(locations)]
    metres = [[fake_metres(a, b) if i != j else 0.0 for j, b in enumerate(locations)] for i, a in enumerate(locations)]
    return seconds, metres


def as_lists(matrix: tuple[tuple[Any, ...], ...]) -> list[list[Any]]:
    return [list(row) for row in matrix]


def flat(matrix: Any) -> list[Any]:
    return [x for row in matrix for x in row]


# --- OSRM ------------------------------------------------------------------------------------------


def test_osrm_one_request_in_table_format_rounded_up(server: tuple[str, FakeService]) -> None:
    url, service = server
    osrm = OsrmTable(servers={"van": url, "car": url})
    locations = LOCATIONS[:3]
    seconds = osrm.durations(locations, PROFILES["van"], 8 * 3600)
    (request,) = service.requests
    assert request["profile"] == "van"
    assert request["points"] == [(round(lat, 6), round(lon, 6)) for lat, lon in locations]  # lon,lat in the URL
    assert (request["sources"], request["targets"]) == ([0, 1, 2], [0, 1, 2])
    assert request["annotations"] == "duration,distance"
    assert as_lists(seconds) == expected(locations)[0]
    assert all(type(x) is int for row in seconds for x in row)


def test_osrm_url_puts_longitude_first_with_six_decimals(server: tuple[str, FakeService]) -> None:
    url, service = server
    OsrmTable(servers={"bike": url + "/"}).table([(48.8566, 2.3522), (48.8867, 2.3431)], "bike")
    assert [r["raw"] for r in service.requests] == [
        "/table/v1/bike/2.352200,48.856600;2.343100,48.886700?sources=0;1&destinations=0;1&annotations=duration,distance"]


def test_osrm_chunks_blocks_within_the_table_size_and_merges_them(server: tuple[str, FakeService]) -> None:
    url, service = server
    whole = OsrmTable(servers={"car": url}).table(LOCATIONS, "car")
    service.requests.clear()
    chunked = OsrmTable(servers={"car": url}, block_size=3).table(LOCATIONS, "car")
    assert len(service.requests) == 9  # 7 locations: blocks of 3, 3, 1 each way
    assert all(len(r["sources"]) * len(r["targets"]) <= 9 for r in service.requests)
    diagonal = [r for r in service.requests if len(r["points"]) == len(r["sources"])]
    assert len(diagonal) == 3 and all(r["sources"] == r["targets"] for r in diagonal)  # points sent once
    assert all(r["targets"] == list(range(len(r["sources"]), len(r["points"])))
               for r in service.requests if r not in diagonal)
    assert chunked == whole
    seconds, metres = expected(LOCATIONS)
    assert as_lists(chunked[0]) == seconds
    assert flat(chunked[1]) == pytest.approx(flat(metres))


def test_osrm_distances_come_from_the_distance_profile_server(server: tuple[str, FakeService]) -> None:
    url, service = server
    metres = OsrmTable(servers={"car": url, "bike": "http://127.0.0.1:9/"}, distance_profile="car").distances(LOCATIONS)
    assert {r["profile"] for r in service.requests} == {"car"}
    assert flat(metres) == pytest.approx(flat(expected(LOCATIONS)[1]))


@pytest.mark.parametrize(("mode", "message"), [
    ("http500", "HTTP 500"),
    ("http400", "HTTP 400.*InvalidQuery"),
    ("refused", "code='NoSegment' Could not find a matching segment"),
    ("null", r"no road from location 2 \(48.84, 2.28\) to location 0"),
    ("garbage", "not JSON"),
    ("slow", "cannot reach OSRM.*timed out"),
])
def test_osrm_failures_are_clear_errors(server: tuple[str, FakeService], mode: str, message: str) -> None:
    url, service = server
    service.mode = mode
    with pytest.raises(RoadTableError, match=message):
        OsrmTable(servers={"van": url}, timeout_s=0.2).table(LOCATIONS[:3], "van")


def test_osrm_unreachable_server_and_unknown_profile_are_clear_errors() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    osrm = OsrmTable(servers={"van": f"http://127.0.0.1:{port}"}, timeout_s=2)
    with pytest.raises(RoadTableError, match="cannot reach OSRM"):
        osrm.durations(LOCATIONS[:2], PROFILES["van"], 0)
    with pytest.raises(RoadTableError, match="no OSRM server for profile 'bike'"):
        osrm.durations(LOCATIONS[:2], PROFILES["bike"], 0)


def test_osrm_feeds_problem_durations(server: tuple[str, FakeService]) -> None:
    url, _ = server
    osrm = OsrmTable(servers={name: url for name in PROFILES})
    assert isinstance(osrm, TravelModel)
    fleet = tuple(Vehicle(id=f"v{k}", start=0, end=0, capacity=(5.0,), shift_start_s=0, shift_end_s=30_000,
                          speed_mps=5.0, profile=p) for k, p in enumerate(("van", "bike")))
    durations = problem_durations(LOCATIONS, fleet, osrm, 8 * 3600)
    assert sorted(durations) == ["bike", "van"]
    jobs = (Job(id="j1", location=3, demand=(1.0,), window_start_s=0, window_end_s=30_000, service_s=60),)
    problem = Problem(locations=tuple(LOCATIONS), jobs=jobs, vehicles=fleet, durations=durations)
    assert problem.travel_s(fleet[0], 0, 3) == math.ceil(fake_seconds(LOCATIONS[0], LOCATIONS[3]))


# --- Valhalla --------------------------------------------------------------------------------------


def test_valhalla_posts_sources_targets_and_costing(server: tuple[str, FakeService]) -> None:
    url, service = server
    valhalla = ValhallaMatrix(base_url=url + "/")
    assert isinstance(valhalla, TravelModel)
    seconds = valhalla.durations(LOCATIONS[:3], PROFILES["bike"], 8 * 3600)
    (body,) = service.requests
    assert body == {"sources": [{"lat": lat, "lon": lon} for lat, lon in LOCATIONS[:3]],
                    "targets": [{"lat": lat, "lon": lon} for lat, lon in LOCATIONS[:3]],
                    "costing": "bicycle", "units": "kilometers"}
    assert as_lists(seconds) == expected(LOCATIONS[:3])[0]
    valhalla.durations(LOCATIONS[:3], PROFILES["van"], 8 * 3600)
    assert service.requests[-1]["costing"] == "auto"


def test_valhalla_chunks_and_converts_kilometres(server: tuple[str, FakeService]) -> None:
    url, service = server
    whole = ValhallaMatrix(base_url=url).table(LOCATIONS, "scooter")
    service.requests.clear()
    chunked = ValhallaMatrix(base_url=url, block_size=2).table(LOCATIONS, "scooter")
    assert len(service.requests) == 16  # blocks of 2, 2, 2, 1 each way
    assert all(len(b["sources"]) * len(b["targets"]) <= 4 and b["costing"] == "motor_scooter" for b in service.requests)
    assert chunked == whole
    seconds, metres = expected(LOCATIONS)
    assert as_lists(chunked[0]) == seconds
    assert flat(chunked[1]) == pytest.approx(flat(metres))


@pytest.mark.parametrize(("mode", "message"), [
    ("http400", "HTTP 400.*max distance limit"),
    ("null", r"no road from location 0 .* to location 2"),
    ("slow", "cannot reach Valhalla.*timed out"),
])
def test_valhalla_failures_are_clear_errors(server: tuple[str, FakeService], mode: str, message: str) -> None:
    url, service = server
    service.mode = mode
    with pytest.raises(RoadTableError, match=message):
        ValhallaMatrix(base_url=url, timeout_s=0.2).table(LOCATIONS[:3], "car")


def test_valhalla_needs_a_costing_for_the_profile() -> None:
    with pytest.raises(RoadTableError, match="no Valhalla costing for profile 'hovercraft'"):
        ValhallaMatrix(base_url="http://127.0.0.1:9").table(LOCATIONS[:2], "hovercraft")
