"""The PyVRP engine on the classes it serves, and the engine choice around it."""

from __future__ import annotations

from dataclasses import replace

import constraint_scenarios as cs
import pytest
import solver_scenarios as sc

from solver import Problem, Solution, SolveParams, engines, solve
from solver.model import RELOAD, Break

PYVRP = SolveParams(time_limit_s=0.3, engine="pyvrp")


@pytest.fixture(autouse=True)
def no_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """PyVRP falls back to OR-Tools rather than return a plan the checker rejects; here every
    plan must be PyVRP's own."""
    from solver import _ortools

    def fail(*args: object) -> None:
        raise AssertionError("PyVRP fell back to OR-Tools")

    monkeypatch.setattr(_ortools, "solve", fail)


def _solve(problem: Problem) -> Solution:
    solution = solve(problem, PYVRP)
    assert solution.violations(problem) == []
    return solution


def _routes(solution: Solution) -> dict[str, list[str]]:
    return {r.vehicle_id: [v.job_id for v in r.stops] for r in solution.routes}


def _reasons(solution: Solution) -> dict[str, str]:
    return {u.job_id: u.reason for u in solution.unassigned}


@pytest.mark.parametrize("build", [sc.three_stops_one_van, sc.four_units_two_vans_of_two,
                                   lambda: sc.line_with_windows(far_first=False),
                                   lambda: sc.line_with_windows(far_first=True), sc.cold_chain_far_van])
def test_named_scenarios_are_served_in_full(build) -> None:
    problem = build()
    solution = _solve(problem)
    assert solution.unassigned == ()
    assert sorted(j for stops in _routes(solution).values() for j in stops) == sorted(j.id for j in problem.jobs)


def test_windows_decide_the_order() -> None:
    assert _routes(_solve(sc.line_with_windows(far_first=False)))["v1"] == ["near", "far"]
    assert _routes(_solve(sc.line_with_windows(far_first=True)))["v1"] == ["far", "near"]


def test_skill_sends_job_to_the_only_vehicle_that_has_it() -> None:
    routes = _routes(_solve(sc.cold_chain_far_van()))
    assert "ice" in routes["cold"] and "ice" not in routes.get("plain", [])


def test_a_skill_bars_one_job_but_not_its_neighbour_at_the_same_address() -> None:
    # The cold van has room for one parcel only, so "milk", at the same address as "ice" but
    # needing no skill, has to go on the plain van.
    problem = sc.cold_chain_far_van()
    cold = replace(problem.vehicles[1], start=0, end=0, capacity=(5.0, 20.0, 1.0))
    problem = replace(problem, jobs=(*problem.jobs, sc.job("milk", 2)), vehicles=(problem.vehicles[0], cold))
    solution = _solve(problem)
    assert solution.unassigned == ()
    assert _routes(solution)["cold"] == ["ice"]


def test_impossible_jobs_are_unassigned_with_their_cause() -> None:
    solution = _solve(sc.with_impossible_jobs())
    reasons = _reasons(solution)
    assert set(reasons) == {"piano", "acid", "rush"} and "hazmat" in reasons["acid"]
    assert [j for stops in _routes(solution).values() for j in stops] == ["ok"]


@pytest.mark.parametrize("vip", [False, True])
def test_priority_decides_which_job_is_left_out(vip: bool) -> None:
    solution = _solve(sc.short_shift(vip=vip))
    assert len(solution.unassigned) == 1
    dropped = solution.unassigned[0]
    assert dropped.job_id in (("a", "b") if vip else ("c",)) and "capacity/time" in dropped.reason


def test_pinned_job_rides_with_its_vehicle_even_when_another_is_closer() -> None:
    problem = sc.cold_chain_far_van()
    parcel = sc.job("parcel", 1)  # at the cold van's start, 5 km from the plain van
    assert "parcel" in _routes(_solve(replace(problem, jobs=(*problem.jobs, parcel))))["cold"]
    pinned = replace(parcel, vehicle_id="plain")  # already on board the plain van
    assert "parcel" in _routes(_solve(replace(problem, jobs=(*problem.jobs, pinned))))["plain"]


def test_pinned_to_a_vehicle_that_cannot_serve_it_is_unassigned() -> None:
    problem = sc.cold_chain_far_van()
    pinned = replace(problem.jobs[0], vehicle_id="plain")  # "ice" needs cold chain, "plain" lacks it
    reasons = _reasons(_solve(replace(problem, jobs=(pinned, problem.jobs[1]))))
    assert set(reasons) == {"ice"}


def _pairs() -> Problem:
    """Two parcels picked up 2 km north and dropped 1 km north; vans hold one parcel at a time."""
    locations = (sc.HUB, sc.north(2), sc.north(1), sc.north(2.1), sc.north(1.1))
    jobs = (sc.job("p1", 1, demand=(1.0,)), replace(sc.job("d1", 2, demand=(1.0,)), pickup_id="p1"),
            sc.job("p2", 3, demand=(1.0,)), replace(sc.job("d2", 4, demand=(1.0,)), pickup_id="p2"))
    vans = (sc.van("v1", capacity=(1.0,)), sc.van("v2", capacity=(1.0,)))
    return Problem(locations=locations, jobs=jobs, vehicles=vans)


def test_pairs_ride_one_vehicle_pickup_first() -> None:
    solution = _solve(_pairs())
    assert solution.unassigned == ()
    for stops in _routes(solution).values():
        for pickup, drop in (("p1", "d1"), ("p2", "d2")):
            if pickup in stops or drop in stops:
                assert stops.index(pickup) < stops.index(drop)


def test_pair_whose_drop_cannot_be_reached_is_dropped_whole() -> None:
    problem = _pairs()
    late = replace(problem.jobs[1], window_start_s=0, window_end_s=1)
    reasons = _reasons(_solve(replace(problem, jobs=(problem.jobs[0], late, *problem.jobs[2:]))))
    assert set(reasons) == {"p1", "d1"} and "d1" in reasons["p1"]


def _four_units(max_trips: int) -> Problem:
    problem = sc.four_units_two_vans_of_two()
    van = replace(problem.vehicles[0], max_trips=max_trips, reload_s=300)
    return replace(problem, vehicles=(van,))


def test_two_trips_serve_what_one_cannot() -> None:
    assert len(_solve(_four_units(1)).unassigned) == 2
    solution = _solve(_four_units(2))
    assert solution.unassigned == ()
    (route,) = solution.routes
    reloads = [v for v in route.visits if v.kind == RELOAD]
    assert len(reloads) == 1 and reloads[0].departure_s - reloads[0].start_s >= 300
    assert [v.kind for v in route.visits].index(RELOAD) == 2  # two parcels per trip


def test_vans_start_and_end_at_their_own_hubs() -> None:
    locations = (sc.HUB, sc.north(10), sc.north(0.5), sc.north(9.5), sc.north(5))
    jobs = (sc.job("near_a", 2), sc.job("near_b", 3))
    vans = (sc.van("a", start=0, end=4), sc.van("b", start=1, end=4))
    routes = _routes(_solve(Problem(locations=locations, jobs=jobs, vehicles=vans)))
    assert routes == {"a": ["near_a"], "b": ["near_b"]}


@pytest.mark.parametrize("rate", ["cost_per_km", "cost_per_hour"])
def test_the_cheaper_vehicle_takes_the_work(rate: str) -> None:
    problem = sc.three_stops_one_van()
    vans = (replace(sc.van("dear"), **{rate: 10.0}), replace(sc.van("cheap"), **{rate: 1.0}))
    assert _routes(_solve(replace(problem, vehicles=vans))).keys() == {"cheap"}


def test_a_fixed_cost_keeps_a_vehicle_parked() -> None:
    # Two hubs 10 km apart, a stop next to each: one van per hub is shortest, unless opening one
    # costs more (100 at 1 per km) than the 18 km a single van drives on top.
    locations = (sc.HUB, sc.north(10), sc.north(0.5), sc.north(9.5))
    jobs = (sc.job("near_a", 2), sc.job("near_b", 3))
    vans = (sc.van("a", start=0), sc.van("b", start=1))
    assert len(_solve(Problem(locations=locations, jobs=jobs, vehicles=vans)).routes) == 2
    dear = tuple(replace(v, fixed_cost=100.0) for v in vans)
    assert len(_solve(Problem(locations=locations, jobs=jobs, vehicles=dear)).routes) == 1


def test_travel_times_come_from_the_vehicle_profile() -> None:
    # The bike's matrix says the far stop takes an hour to reach: past its window, so the van serves it.
    problem = sc.three_stops_one_van()
    n = len(problem.locations)
    slow = tuple(tuple(0 if a == b else (3600 if b == 2 else 60) for b in range(n)) for a in range(n))
    jobs = (problem.jobs[0], replace(problem.jobs[1], window_end_s=1800), problem.jobs[2])
    bike = replace(sc.van("bike"), profile="bike")
    solution = _solve(replace(problem, jobs=jobs, vehicles=(bike, sc.van("van")), durations={"bike": slow}))
    assert "b" in _routes(solution)["van"] and "b" not in _routes(solution).get("bike", [])


def test_city_instance_is_served_in_full() -> None:
    problem = sc.city(seed=7, jobs=60, vehicles=4)
    solution = _solve(problem)
    assert solution.unassigned == ()


def test_an_infeasible_pyvrp_plan_falls_back_to_ortools(monkeypatch: pytest.MonkeyPatch) -> None:
    from solver import _ortools, _pyvrp

    class Infeasible:
        best = type("Best", (), {"is_feasible": lambda self: False})()

    monkeypatch.setattr(_pyvrp, "pyvrp_solve", lambda *args, **kwargs: Infeasible())
    called = []

    def ortools(problem, eligible, params):
        called.append(params.engine)
        return Solution(routes=(), unassigned=())

    monkeypatch.setattr(_ortools, "solve", ortools)
    assert solve(sc.three_stops_one_van(), PYVRP) == Solution(routes=(), unassigned=())
    assert called == ["pyvrp"]


def _with(kind: str) -> Problem:
    problem = sc.three_stops_one_van()
    van, first = problem.vehicles[0], problem.jobs[0]
    if kind == "breaks":
        return replace(problem, vehicles=(replace(van, breaks=(Break(id="lunch", earliest_start_s=0,
                                                                   latest_start_s=3600, duration_s=600),)),))
    if kind == "soft time windows":
        return replace(problem, jobs=(replace(first, late_cost_per_hour=5.0), *problem.jobs[1:]))
    if kind == "a cap on route changes":
        return replace(problem, vehicles=(replace(van, max_new_stops=1),))
    if kind == "even workload":
        return replace(problem, even_workload=True)
    assert kind == "locked stops"
    return replace(problem, vehicles=(replace(van, locked=(first.id,)),))


KINDS = ["breaks", "soft time windows", "a cap on route changes", "even workload", "locked stops"]


@pytest.mark.parametrize("kind", KINDS)
def test_auto_sends_what_pyvrp_cannot_express_to_ortools(kind: str) -> None:
    problem = _with(kind)
    assert engines.pyvrp_unsupported(problem) == [kind]
    assert engines.choose(problem, "auto") == "ortools"
    with pytest.raises(ValueError, match=f"pyvrp does not support {kind}"):
        engines.choose(problem, "pyvrp")


def test_auto_picks_pyvrp_for_the_basic_class() -> None:
    for problem in (sc.three_stops_one_van(), _pairs(), _four_units(2), sc.cold_chain_far_van()):
        assert engines.choose(problem, "auto") == "pyvrp"


def test_solve_refuses_pyvrp_on_breaks() -> None:
    with pytest.raises(ValueError, match="breaks"):
        solve(_with("breaks"), PYVRP)


# --- the constraint scenarios PyVRP serves (the OR-Tools engine's are in test_solver_constraints) ---


def test_cs_a_dearer_cost_per_km_sends_the_work_to_the_far_cheap_van() -> None:
    assert set(_routes(_solve(cs.pricey_van_near_cheap_van_far(priced=False)))) == {"near"}
    assert set(_routes(_solve(cs.pricey_van_near_cheap_van_far(priced=True)))) == {"far"}


def test_cs_a_fixed_cost_keeps_the_second_van_parked() -> None:
    assert len(_solve(cs.two_hubs_two_clusters(fixed_cost=0.0)).routes) == 2
    (route,) = _solve(cs.two_hubs_two_clusters(fixed_cost=100.0)).routes
    assert len(route.stops) == 4


def test_cs_cost_per_hour_prefers_the_faster_vehicle() -> None:
    assert set(_routes(_solve(cs.slow_bike_fast_van(hourly=0.0)))) == {"bike"}
    assert set(_routes(_solve(cs.slow_bike_fast_van(hourly=60.0)))) == {"van"}


def test_cs_travel_times_come_from_the_vehicle_profile() -> None:
    assert set(_reasons(_solve(cs.scooter_profile_reaches_in_time(with_profile=False)))) == {"rush"}
    assert _solve(cs.scooter_profile_reaches_in_time(with_profile=True)).routes[0].stops[0].arrival_s == 240


def test_cs_a_pair_is_picked_up_before_it_is_dropped() -> None:
    assert _routes(_solve(cs.pair_pickup_before_drop(paired=False)))["v1"] == ["drop", "pickup"]
    assert _routes(_solve(cs.pair_pickup_before_drop(paired=True)))["v1"] == ["pickup", "drop"]


def test_cs_a_pickup_waits_until_hub_parcels_made_room() -> None:
    solution = _solve(cs.pair_picked_up_late_in_a_full_trip())
    order = _routes(solution)["v1"]
    assert solution.unassigned == ()
    assert min(order.index(h) for h in ("h1", "h2", "h3")) < order.index("pickup") < order.index("drop")


def test_cs_a_pair_whose_drop_cannot_be_served_is_left_out_whole() -> None:
    reasons = _reasons(_solve(cs.pair_drop_unreachable()))
    assert set(reasons) == {"pickup", "drop"}
    assert "pair" in reasons["pickup"] and "cannot be reached" in reasons["drop"]


def test_cs_a_second_trip_serves_what_one_cannot() -> None:
    assert len(_solve(cs.two_trips_small_van(trips=1)).unassigned) == 2
    solution = _solve(cs.two_trips_small_van(trips=2))
    assert solution.unassigned == ()
    (route,) = solution.routes
    reloads = [v for v in route.visits if v.kind == RELOAD]
    assert len(reloads) == 1 and reloads[0].departure_s - reloads[0].start_s == 300


def test_cs_a_pair_and_hub_parcels_share_two_trips() -> None:
    solution = _solve(cs.pair_carried_over_a_reload())
    assert solution.unassigned == ()
    assert RELOAD in [v.kind for v in solution.routes[0].visits]


def test_cs_a_pinned_parcel_rides_with_its_vehicle_even_when_another_is_closer() -> None:
    assert set(_routes(_solve(cs.pinned_parcel_far_van(pinned=False)))) == {"near"}
    assert set(_routes(_solve(cs.pinned_parcel_far_van(pinned=True)))) == {"far"}


def test_cs_a_planned_route_with_stale_or_late_stops_does_not_get_in_the_way() -> None:
    stale = _solve(cs.warm_start_from_plan(planned=("j2", "gone", "j1")))
    assert stale.unassigned == () and len(stale.routes[0].stops) == 4
    broken = _solve(cs.warm_start_from_plan(planned=("j1", "j2", "j3", "j4"), j4_closes_s=900))
    assert broken.unassigned == () and _routes(broken)["v1"] != ["j1", "j2", "j3", "j4"]


@pytest.mark.parametrize("build", [lambda: cs.lunch_break(with_break=True), lambda: cs.late_but_served(soft=True),
                                   lambda: cs.stability_cap(max_new_stops=1), lambda: cs.eight_stops_two_vans(even=True),
                                   lambda: cs.locked_stops_first(locked=("c", "a"))])
def test_cs_scenarios_pyvrp_cannot_express_go_to_ortools(build) -> None:
    assert engines.choose(build(), "auto") == "ortools"
