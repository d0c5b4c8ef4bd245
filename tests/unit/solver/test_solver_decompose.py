"""Large problems split into parts by hub and sector, solved in worker processes and merged."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from dataclasses import replace

import solver_scenarios as sc

from benchmarks.city import city_day, point
from solver import SolveParams, solve
from solver.decompose import _second_chance, solve_large, split, subproblem
from solver.eligibility import fits
from solver.matrix import MatrixProblem
from solver.model import RELOAD, Job, Problem, Solution, schedule_route

FAST = SolveParams(time_limit_s=0.5, engine="ortools")


def small_city() -> Problem:
    return city_day(orders=120, riders=8, hubs=2, seed=3)


def test_every_job_is_in_exactly_one_part_and_every_vehicle_in_at_most_one() -> None:
    problem = small_city()
    cut = split(problem, part_jobs=40)
    assert len(cut.parts) >= 3
    in_parts = Counter(j.id for part in cut.parts for j in part.jobs)
    assert in_parts + Counter(u.job_id for u in cut.unassigned) == Counter(j.id for j in problem.jobs)
    assert max(Counter(v.id for part in cut.parts for v in part.vehicles).values()) == 1


def test_parts_keep_vehicles_with_their_hub_and_riders_for_every_order() -> None:
    problem = small_city()
    for part in split(problem, part_jobs=40).parts:
        assert part.vehicles and {v.hub for v in part.vehicles} == {part.hub}
        for job in part.jobs:
            assert any(job.skills <= v.skills and fits(job, v) for v in part.vehicles), job.id


def test_orders_go_to_their_nearest_hub_unless_it_is_full() -> None:
    problem = small_city()
    near = 0
    for part in split(problem, part_jobs=40).parts:
        for job in part.jobs:
            to_hubs = [problem.distance_m(job.location, h) for h in (0, 1)]
            near += to_hubs[part.hub] == min(to_hubs)
    assert near >= 0.8 * len(problem.jobs)


def test_subproblem_keeps_distances_and_travel_times_exactly() -> None:
    base = small_city()
    durations = {"bike": tuple(tuple(7 * a + b for b in range(len(base.locations))) for a in range(len(base.locations)))}
    problem = replace(base, durations=durations)
    jobs, vehicles = problem.jobs[10:20], problem.vehicles[5:7]
    sub = subproblem(problem, jobs, vehicles)
    assert len(sub.locations) == len({j.location for j in jobs} | {v.start for v in vehicles})
    mapping = {j.id: (j.location, s.location) for j, s in zip(jobs, sub.jobs, strict=True)}
    for v, w in zip(vehicles, sub.vehicles, strict=True):
        assert problem.locations[v.start] == sub.locations[w.start]
        for old, new in mapping.values():
            assert sub.distance_m(w.start, new) == problem.distance_m(v.start, old)
            assert sub.travel_s(w, w.start, new) == problem.travel_s(v, v.start, old)


def test_subproblem_of_a_matrix_problem_takes_its_rows_and_columns() -> None:
    matrix = ((0, 1, 2, 3), (10, 0, 12, 13), (20, 21, 0, 23), (30, 31, 32, 0))
    problem = MatrixProblem(locations=((0.0, 0.0),) * 4, matrix=matrix, vehicles=(sc.van("v", start=1),),
                            jobs=(sc.job("a", 3), sc.job("b", 0)))
    sub = subproblem(problem, problem.jobs[:1], problem.vehicles)
    assert sub.matrix == ((0.0, 13.0), (31.0, 0.0))


def test_merged_plan_of_a_split_city_is_feasible() -> None:
    problem = small_city()
    lines: list[str] = []
    solution = solve_large(problem, FAST, processes=2, part_jobs=60, small_jobs=50, progress=lines.append)
    assert "into 3 parts" in lines[0]
    assert solution.violations(problem) == []
    assert sum(len(r.stops) for r in solution.routes) >= 0.9 * len(problem.jobs)


def test_pairs_stay_together_and_pinned_jobs_with_their_vehicle() -> None:
    base = small_city()
    rider = base.vehicles[-1]  # based at hub 1
    jobs = list(base.jobs)
    jobs[0] = replace(jobs[0], vehicle_id=rider.id, skills=frozenset())
    jobs[2] = replace(jobs[2], pickup_id=jobs[1].id, demand=jobs[1].demand, skills=jobs[1].skills)
    problem = replace(base, jobs=tuple(jobs))
    parts = split(problem, part_jobs=40).parts
    where = {j.id: part for part in parts for j in part.jobs}
    assert rider in where[jobs[0].id].vehicles
    assert where[jobs[1].id] is where[jobs[2].id]
    solution = solve_large(problem, FAST, processes=1, part_jobs=40, small_jobs=50)
    assert solution.violations(problem) == []


def test_a_job_no_vehicle_can_serve_is_unassigned_with_its_cause() -> None:
    base = small_city()
    far = len(base.locations)
    acid = Job(id="acid", location=far, demand=(1.0, 1.0, 1.0), window_start_s=0, window_end_s=40000, service_s=60,
               skills=frozenset({"hazmat"}))
    piano = replace(acid, id="piano", demand=(900.0, 2000.0, 1.0), skills=frozenset())
    problem = replace(base, locations=base.locations + (point(3, 3),), jobs=base.jobs + (acid, piano))
    solution = solve_large(problem, FAST, processes=1, part_jobs=60, small_jobs=50)
    reasons = {u.job_id: u.reason for u in solution.unassigned}
    assert "hazmat" in reasons["acid"]
    assert "exceeds the capacity of every vehicle" in reasons["piano"]
    assert solution.violations(problem) == []


def test_small_problem_is_one_search() -> None:
    problem = sc.three_stops_one_van()
    lines: list[str] = []
    solution = solve_large(problem, FAST, progress=lines.append)
    assert lines == [] and solution.unassigned == () and solution.violations(problem) == []


def test_left_over_jobs_ride_a_used_vehicle_again_after_a_reload() -> None:
    """A van of two parcels served two stops; the other two go out on its second trip."""
    base = sc.four_units_two_vans_of_two()
    van = replace(base.vehicles[0], max_trips=2, reload_s=300)
    problem = replace(base, vehicles=(van,))
    first = schedule_route(problem, van, problem.jobs[:2])
    routes = _second_chance(problem, {van.id: first}, list(problem.jobs[2:]), FAST, most=10)
    route = routes[van.id]
    assert [v.kind for v in route.visits].count(RELOAD) == 1
    assert sorted(v.job_id for v in route.stops) == ["j1", "j2", "j3", "j4"]
    assert Solution(routes=(route,), unassigned=()).violations(problem) == []


def test_split_plan_is_close_to_one_search_on_a_small_city() -> None:
    problem = small_city()
    whole = solve(problem, SolveParams(time_limit_s=1.0, engine="ortools"))
    parts = solve_large(problem, FAST, processes=1, part_jobs=60, small_jobs=50)
    served = [sum(len(r.stops) for r in s.routes) for s in (whole, parts)]
    assert served[1] >= served[0] - 0.08 * len(problem.jobs)


def test_without_vehicles_every_job_is_unassigned_with_the_cause() -> None:
    problem = replace(sc.three_stops_one_van(), vehicles=())
    solution = solve_large(problem, FAST, small_jobs=1)
    assert solution.routes == () and {u.reason for u in solution.unassigned} == {"no vehicles in the problem"}
    assert solution.violations(problem) == []


def test_city_decompose_and_bench_modules_load_no_solver_library() -> None:
    probe = ("import json, sys\nimport benchmarks.city, solver.decompose, benchmarks.scale\n"
             "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'ortools', 'pyvrp', 'infra'})))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30, check=True).stdout
    assert json.loads(out) == []
