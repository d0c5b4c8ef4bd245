"""Re-optimisation: the re-planned problem built from a plan being driven, and the re-plan itself."""

from __future__ import annotations

import dataclasses

import pytest
import solver_scenarios as sc

from solver import SolveParams, solve
from solver.model import Job, Problem, Solution, schedule_route
from solver.reoptimise import Changes, Policy, Rider, Situation, build, diff, plan_of, reoptimise

FAST = SolveParams(time_limit_s=0.3, engine="ortools")


def _line(stops: int = 6) -> Problem:
    """One van at the hub, ``stops`` drops 1 km apart going north, any time in the day."""
    return Problem(locations=(sc.HUB, *(sc.north(k) for k in range(1, stops + 1))),
                   jobs=tuple(sc.job(f"s{k}", k) for k in range(1, stops + 1)), vehicles=(sc.van("v1"),))


def _situation(problem: Problem, order: list[str], *, done: int, started: bool, now_s: int,
               position: tuple[float, float] | None = None) -> Situation:
    """The van has completed the first ``done`` stops of ``order``; serving the next if ``started``."""
    jobs = {j.id: j for j in problem.jobs}
    here = order[done]
    rider = Rider(vehicle_id="v1", position=position or problem.locations[jobs[here].location],
                  started=here if started else None, on_board=frozenset(order[done:]))
    return Situation(problem=problem, plan={"v1": tuple(order)}, now_s=now_s, riders=(rider,),
                     completed=frozenset(order[:done]))


def _solution(problem: Problem, orders: dict[str, list[str]]) -> Solution:
    jobs = {j.id: j for j in problem.jobs}
    vehicles = {v.id: v for v in problem.vehicles}
    return Solution(routes=tuple(schedule_route(problem, vehicles[v], [jobs[j] for j in order])
                                 for v, order in orders.items()), unassigned=())


def _order(solution: Solution, vehicle_id: str = "v1") -> list[str]:
    return list(plan_of(solution).get(vehicle_id, ()))


# --- build ----------------------------------------------------------------------------------------


def test_build_replans_from_where_the_rider_is_with_what_is_left() -> None:
    problem = _line()
    order = ["s1", "s2", "s3", "s4", "s5", "s6"]
    urgent = sc.job("urgent", len(problem.locations), window=(3600, 5400), priority=1)
    rider_at = sc.north(2.1)
    situation = _situation(problem, order, done=2, started=False, now_s=3000, position=rider_at)
    changes = Changes(cancelled=frozenset({"s5"}), new_jobs=(urgent,), new_locations=(sc.north(0.5, 1),),
                      delays_s={"v1": 600})
    built = build(situation, changes)
    van = built.vehicles[0]
    assert [j.id for j in built.jobs] == ["s3", "s4", "s6", "urgent"]  # completed and cancelled are gone
    assert built.locations[van.start] == rider_at and van.end == 0  # starts where it is, still ends at the hub
    assert van.shift_start_s == 3000 + 600  # now, ten minutes behind
    assert van.locked == ("s3",)  # on its way to the next stop
    assert van.planned == ("s3", "s4", "s6")
    assert van.max_new_stops == 3
    jobs = {j.id: j for j in built.jobs}
    assert {j for j, job in jobs.items() if job.vehicle_id == "v1"} == {"s3", "s4", "s6"}  # on board
    assert jobs["urgent"].vehicle_id is None and built.locations[jobs["urgent"].location] == sc.north(0.5, 1)


def test_build_locks_the_started_stop_and_the_next_ones() -> None:
    problem = _line()
    order = ["s1", "s2", "s3", "s4", "s5", "s6"]
    situation = _situation(problem, order, done=1, started=True, now_s=2000)
    assert build(situation).vehicles[0].locked == ("s2", "s3")
    assert build(situation, policy=Policy(lock_next=3)).vehicles[0].locked == ("s2", "s3", "s4", "s5")
    assert build(situation, policy=Policy(lock_next=0)).vehicles[0].locked == ("s2",)


def test_a_next_stop_the_delay_makes_late_is_not_locked() -> None:
    problem = _line()
    order = ["s1", "s2", "s3", "s4", "s5", "s6"]
    situation = _situation(problem, order, done=1, started=False, now_s=1000)
    on_time = Changes(windows={"s2": (0, 1200)})
    assert build(situation, on_time).vehicles[0].locked == ("s2",)
    late = dataclasses.replace(on_time, delays_s={"v1": 900})
    built = build(situation, late)
    assert built.vehicles[0].locked == ()
    assert solve(built, FAST).violations(built) == []


def test_a_next_stop_whose_window_opens_long_after_the_rider_gets_there_is_not_locked() -> None:
    """Locked, it would hold the rider at that door until its window opens, and every stop after
    it: seed 8 had a rider wait 87 minutes at a door with four parcels due in the meantime."""
    problem = _line()
    order = ["s1", "s2", "s3", "s4", "s5", "s6"]
    situation = _situation(problem, order, done=1, started=False, now_s=1000)
    soon = Changes(windows={"s2": (1000 + 600, 9000)})  # reached a few minutes before it opens: kept
    assert build(situation, soon).vehicles[0].locked == ("s2",)
    others_first = {f"s{k}": (0, 1000 + 3000) for k in range(3, 7)}  # due before s2 opens
    later = Changes(windows={"s2": (1000 + 3600, 9000), **others_first})
    built = build(situation, later)
    assert built.vehicles[0].locked == ()
    solution = solve(built, FAST)
    assert solution.violations(built) == [] and not solution.unassigned
    assert _order(solution)[-1] == "s2"  # the others in their windows first, then s2 in its own


def test_the_stop_being_served_stays_servable_after_its_window_closed() -> None:
    problem = dataclasses.replace(_line(), jobs=tuple(
        dataclasses.replace(j, window_start_s=0, window_end_s=1800) if j.id == "s2" else j for j in _line().jobs))
    situation = _situation(problem, ["s1", "s2", "s3"], done=1, started=True, now_s=1790,
                           position=sc.north(2.01))  # GPS a few metres off the door
    built = build(situation, Changes(delays_s={"v1": 300}))
    serving = next(j for j in built.jobs if j.id == "s2")
    assert serving.window_end_s > 1800
    solution = solve(built, FAST)
    assert solution.violations(built) == [] and _order(solution)[0] == "s2"


def test_build_pins_parcels_on_board_to_their_rider() -> None:
    problem = Problem(locations=(sc.HUB, sc.north(1), sc.north(5), sc.north(5.1)),
                      jobs=(sc.job("mine", 1), sc.job("theirs", 3), sc.job("free", 3)),
                      vehicles=(sc.van("a"), sc.van("b", start=2)))
    riders = (Rider(vehicle_id="a", position=sc.north(0.2), on_board=frozenset({"mine", "theirs"})),
              Rider(vehicle_id="b", position=sc.north(5)))
    situation = Situation(problem=problem, plan={"a": ("mine", "theirs"), "b": ("free",)}, now_s=600, riders=riders)
    built = build(situation, policy=Policy(lock_next=0))
    assert {j.id: j.vehicle_id for j in built.jobs} == {"mine": "a", "theirs": "a", "free": None}
    solution = solve(built, FAST)
    assert solution.violations(built) == []
    assert "theirs" in _order(solution, "a")  # b passes right by it, but it is in a's box
    assert "theirs" not in _order(solution, "b")


def test_a_drop_whose_pickup_is_done_is_a_parcel_on_board() -> None:
    problem = Problem(locations=(sc.HUB, sc.north(1), sc.north(2)),
                      jobs=(sc.job("shop", 1), dataclasses.replace(sc.job("door", 2), pickup_id="shop")),
                      vehicles=(sc.van("v1"),))
    situation = Situation(problem=problem, plan={"v1": ("shop", "door")}, now_s=900, completed=frozenset({"shop"}),
                          riders=(Rider(vehicle_id="v1", position=sc.north(1.5), on_board=frozenset({"door"})),))
    (door,) = build(situation).jobs
    assert door.id == "door" and door.pickup_id is None and door.vehicle_id == "v1"


def test_cancelling_one_end_of_a_pair_cancels_the_order() -> None:
    problem = Problem(locations=(sc.HUB, sc.north(1), sc.north(2)),
                      jobs=(sc.job("shop", 1), dataclasses.replace(sc.job("door", 2), pickup_id="shop"), sc.job("x", 2)),
                      vehicles=(sc.van("v1"),))
    situation = Situation(problem=problem, plan={"v1": ("shop", "door", "x")}, now_s=0, riders=())
    assert [j.id for j in build(situation, Changes(cancelled=frozenset({"door"}))).jobs] == ["x"]


def test_a_vehicle_still_at_the_hub_keeps_its_start_and_is_not_locked() -> None:
    problem = _line(3)
    situation = Situation(problem=problem, plan={"v1": ("s1", "s2", "s3")}, now_s=1200, riders=())
    van = build(situation, Changes(delays_s={"v1": 60})).vehicles[0]
    assert (van.start, van.shift_start_s, van.locked, van.planned) == (0, 1260, (), ("s1", "s2", "s3"))


@pytest.mark.parametrize(("policy", "route", "cap"), [
    (Policy(), 0, None),  # nothing planned: nothing to keep stable
    (Policy(), 20, 3),
    (Policy(), 45, 5),  # 10% of 45, rounded up
    (Policy(min_new_stops=None), 45, None),
])
def test_stability_limit_grows_with_the_route(policy: Policy, route: int, cap: int | None) -> None:
    assert policy.max_new_stops(route) == cap


@pytest.mark.parametrize(("situation", "changes", "message"), [
    (lambda p: Situation(problem=p, plan={"v9": ()}, now_s=0, riders=()), Changes(), "planned vehicle 'v9'"),
    (lambda p: Situation(problem=p, plan={}, now_s=0, riders=(), completed=frozenset({"zz"})), Changes(),
     "completed job 'zz'"),
    (lambda p: Situation(problem=p, plan={}, now_s=0, riders=()), Changes(cancelled=frozenset({"zz"})),
     "cancelled job 'zz'"),
    (lambda p: Situation(problem=p, plan={}, now_s=0, riders=()), Changes(new_jobs=(sc.job("s1", 1),)),
     "already exist"),
    (lambda p: Situation(problem=p, plan={}, now_s=0, riders=(Rider(vehicle_id="v1", position=sc.HUB, started="s1"),),
                         completed=frozenset({"s1"})), Changes(), "started job 's1' is completed"),
])
def test_build_rejects_a_situation_that_contradicts_the_problem(situation, changes, message) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match=message):
        build(situation(_line(2)), changes)


# --- diff -----------------------------------------------------------------------------------------


def test_diff_reports_added_removed_and_the_fewest_moved_stops() -> None:
    problem = _line()
    van = dataclasses.replace(problem.vehicles[0], planned=("s1", "s2", "s3", "s4", "s5"), locked=("s1",))
    before = dataclasses.replace(problem, vehicles=(van,))
    after = _solution(before, {"v1": ["s1", "s4", "s2", "s3", "s6"]})
    (change,) = diff(before, after)
    assert (change.added, change.removed, change.moved, change.locks_kept) == (("s6",), ("s5",), ("s4",), True)
    assert change.changed == 3
    (swapped,) = diff(before, _solution(before, {"v1": ["s2", "s1", "s3", "s4", "s5"]}))
    assert not swapped.locks_kept and len(swapped.moved) == 1


# --- the re-plan ----------------------------------------------------------------------------------


def test_replan_keeps_locked_stops_first_and_in_order() -> None:
    # The plan zigzags; shortest would be s1..s6 going north. The rider is serving s2 and heading to
    # s5 next: those two stay first, the rest may be re-ordered.
    problem = _line()
    order = ["s1", "s2", "s5", "s3", "s6", "s4"]
    situation = _situation(problem, order, done=1, started=True, now_s=2000)
    built = build(situation)
    assert built.vehicles[0].locked == ("s2", "s5")
    solution = reoptimise(situation, params=FAST)
    assert solution.violations(built) == []
    assert _order(solution)[:2] == ["s2", "s5"]
    assert sorted(_order(solution)) == ["s2", "s3", "s4", "s5", "s6"]


def test_replan_takes_at_most_max_new_stops_new_orders() -> None:
    problem = _line(3)
    new = tuple(sc.job(f"n{k}", k) for k in (1, 2, 3, 1, 2))  # on the way: every one would fit
    situation = Situation(problem=problem, plan={"v1": ("s1", "s2", "s3")}, now_s=600,
                          riders=(Rider(vehicle_id="v1", position=sc.north(0.5),
                                        on_board=frozenset({"s1", "s2", "s3"})),))
    changes = Changes(new_jobs=tuple(dataclasses.replace(j, id=f"n{k}") for k, j in enumerate(new)))
    policy = Policy(min_new_stops=2, new_stops_share=0.0)
    built = build(situation, changes, policy)
    solution = reoptimise(situation, changes, policy, FAST)
    assert solution.violations(built) == []
    served = set(_order(solution))
    assert {"s1", "s2", "s3"} <= served and len(served - {"s1", "s2", "s3"}) == 2
    assert len(solution.unassigned) == 3
    unlimited = solve(build(situation, changes, Policy(min_new_stops=None)), FAST)
    assert unlimited.unassigned == ()  # control: without the limit all five fit


def test_replan_after_cancel_urgent_order_and_delay_is_feasible_and_serves_the_urgent_order() -> None:
    problem = sc.city(seed=7, jobs=20, vehicles=1)
    plan = solve(problem, FAST)
    assert plan.unassigned == ()
    order = _order(plan, "v00")
    jobs = {j.id: j for j in problem.jobs}
    route = plan.routes[0]
    serving = route.stops[10]
    rider = Rider(vehicle_id="v00", position=problem.locations[jobs[serving.job_id].location],
                  started=serving.job_id, on_board=frozenset(order[10:]))
    situation = Situation(problem=problem, plan=plan_of(plan), now_s=serving.start_s + 60, riders=(rider,),
                          completed=frozenset(order[:10]))
    urgent = Job(id="urgent", location=len(problem.locations), demand=(1.0, 1.0, 1.0),
                 window_start_s=situation.now_s, window_end_s=situation.now_s + 3600, service_s=120, priority=1)
    changes = Changes(cancelled=frozenset({order[15]}), new_jobs=(urgent,), new_locations=(sc.north(1, 1),),
                      delays_s={"v00": 600})
    built = build(situation, changes)
    solution = reoptimise(situation, changes, params=FAST)
    assert solution.violations(built) == []
    assert "urgent" in _order(solution, "v00") and order[15] not in _order(solution, "v00")
    (change,) = diff(built, solution)
    assert change.locks_kept and change.added == ("urgent",)
