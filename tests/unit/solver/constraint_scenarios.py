"""Tiny named problems, one per rule of :mod:`solver.model`, each built so the rule changes the
answer (the keyword switch builds the control without the rule). Shared by the engines' tests.

Geography as in :mod:`solver_scenarios`: ``north(km, east_km)`` around a Bengaluru hub, vans
at 7 m/s, road = 1.3 x great circle (1 km north is about 186 s of driving).
"""

from __future__ import annotations

import dataclasses

import solver_scenarios as sc
from solver_scenarios import HUB, north

from solver.model import Break, Job, Problem, Vehicle

UNIT = (1.0,)  # one parcel, in a single "units" dimension


def van(id: str, **changes: object) -> Vehicle:
    """A one-dimension van (20 units) at location 0, with any Vehicle field changed; it ends
    where it starts unless ``end`` is given."""
    start = changes.pop("start", 0)
    base = sc.van(id, start=start, end=changes.pop("end", start), capacity=(20.0,))  # type: ignore[arg-type]
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def job(id: str, location: int, **changes: object) -> Job:
    """A one-unit stop with a 2-minute service, any Job field changed."""
    return dataclasses.replace(sc.job(id, location, demand=UNIT), **changes)  # type: ignore[arg-type]


# --- heterogeneous fleet ---------------------------------------------------------------------


def pricey_van_near_cheap_van_far(*, priced: bool) -> Problem:
    """``near`` sits at the stops' hub, ``far`` starts 2 km away. Per km alike, ``near`` wins;
    when ``near`` costs 10 per km and ``far`` 1, the far van is cheaper despite the drive."""
    near = van("near", cost_per_km=10.0 if priced else 1.0)
    return Problem(locations=(HUB, north(-2), north(0.5), north(0.6)),
                   jobs=(job("a", 2), job("b", 3)), vehicles=(near, van("far", start=1)))


def two_hubs_two_clusters(*, fixed_cost: float) -> Problem:
    """Each van's hub sits next to its own cluster, 6 km apart: without a fixed cost both vans
    work; a fixed cost above the 12 km detour makes one van serve both clusters."""
    return Problem(locations=(HUB, north(6), north(0.2), north(0.3), north(6.2), north(6.3)),
                   jobs=(job("s1", 2), job("s2", 3), job("n1", 4), job("n2", 5)),
                   vehicles=(van("south", fixed_cost=fixed_cost), van("north", start=1, fixed_cost=fixed_cost)))


def slow_bike_fast_van(*, hourly: float) -> Problem:
    """A bike (2 m/s) costs 0.2 per km, a van (10 m/s) 1 per km; 5 km out. Per km alone the bike
    wins; with ``hourly`` cost on both, the van's shorter day wins."""
    return Problem(locations=(HUB, north(5)), jobs=(job("far", 1),),
                   vehicles=(van("bike", speed_mps=2.0, cost_per_km=0.2, cost_per_hour=hourly),
                             van("van", speed_mps=10.0, cost_per_hour=hourly)))


def scooter_profile_reaches_in_time(*, with_profile: bool) -> Problem:
    """The stop 3 km out closes at 300 s: at 7 m/s (~560 s) nobody makes it, but the scooter's
    profile matrix says 240 s."""
    scooter = van("scooter", profile="scooter" if with_profile else "")
    durations = {"scooter": ((0, 240), (240, 0))}
    return Problem(locations=(HUB, north(3)), jobs=(job("rush", 1, window_end_s=300),), vehicles=(scooter,),
                   durations=durations)


# --- soft windows ----------------------------------------------------------------------------


def late_but_served(*, soft: bool) -> Problem:
    """The stop 2 km out closes at 60 s: hard, nobody can make it; soft at 36 per hour late, it is
    served about six minutes late."""
    late = 36.0 if soft else None
    return Problem(locations=(HUB, north(2)), jobs=(job("late", 1, window_end_s=60, late_cost_per_hour=late),),
                   vehicles=(van("v1"),))


def soft_window_order(*, soft: bool) -> Problem:
    """``near`` (1 km) and ``far`` (2 km) lie on the way to the end 3 km north. ``far`` closes at
    600 s: hard, the van must go there first and come back; soft at 1 per hour, going near-then-far
    and arriving late is cheaper."""
    late = 1.0 if soft else None
    return Problem(locations=(HUB, north(1), north(2), north(3)),
                   jobs=(job("near", 1, service_s=600), job("far", 2, window_end_s=600, late_cost_per_hour=late)),
                   vehicles=(van("v1", end=3),))


# --- pickup and delivery ---------------------------------------------------------------------


def pair_pickup_before_drop(*, paired: bool) -> Problem:
    """The van drives from the hub to its end 3 km north; ``drop`` (1 km) lies before ``pickup``
    (2 km) on the way, so without the pair the drop comes first."""
    drop = job("drop", 1, pickup_id="pickup" if paired else None)
    return Problem(locations=(HUB, north(1), north(2), north(3)),
                   jobs=(job("pickup", 2), drop), vehicles=(van("v1", end=3),))


def pair_picked_up_late_in_a_full_trip() -> Problem:
    """Three 3-unit hub parcels fill a 10-unit van to 9 from the start. A 3-unit pickup next to
    the hub would be cheapest first, but only fits once a hub parcel is delivered: the checker
    counts all of a trip's hub goods from its start."""
    three = (3.0,)
    return Problem(locations=(HUB, north(0.3), north(3), north(3.2), north(3.4), north(3.6)),
                   jobs=(job("h1", 2, demand=three), job("h2", 3, demand=three), job("h3", 4, demand=three),
                         job("pickup", 1, demand=three), job("drop", 5, demand=three, pickup_id="pickup")),
                   vehicles=(van("v1", capacity=(10.0,)),))


def pair_drop_unreachable() -> Problem:
    """The pickup is easy, its drop closes before any van gets there: the pair is left out whole."""
    return Problem(locations=(HUB, north(1), north(20)),
                   jobs=(job("pickup", 1), job("drop", 2, window_end_s=60, pickup_id="pickup")),
                   vehicles=(van("v1"),))


# --- multiple trips --------------------------------------------------------------------------


def two_trips_small_van(*, trips: int) -> Problem:
    """A 2-unit van and four 1-unit parcels: one trip serves two, two trips serve all."""
    return Problem(locations=(HUB, north(1), north(1.2), north(1.4), north(1.6)),
                   jobs=tuple(job(f"j{i}", i) for i in range(1, 5)),
                   vehicles=(van("v1", capacity=(2.0,), max_trips=trips, reload_s=300),))


def pair_carried_over_a_reload() -> Problem:
    """A 3-unit van, two trips: four hub parcels and a pair. The pair's goods stay on board over
    the reload until dropped, so each trip can carry at most two hub parcels beside it."""
    return Problem(locations=(HUB, north(0.5), north(1), north(1.1), north(1.2), north(1.3), north(2)),
                   jobs=(job("pickup", 1), job("h1", 2), job("h2", 3), job("h3", 4), job("h4", 5),
                         job("drop", 6, pickup_id="pickup")),
                   vehicles=(van("v1", capacity=(3.0,), max_trips=2, reload_s=120),))


# --- breaks ----------------------------------------------------------------------------------

LUNCH = Break(id="lunch", earliest_start_s=1200, latest_start_s=2400, duration_s=1800)


def lunch_break(*, with_break: bool) -> Problem:
    """A one-hour shift and three 15-minute stops near the hub: all fit, unless a 30-minute lunch
    must be taken between 20 and 40 minutes into the shift."""
    breaks = (LUNCH,) if with_break else ()
    return Problem(locations=(HUB, north(0.2), north(0.3), north(0.4)),
                   jobs=tuple(job(f"s{i}", i, service_s=900) for i in range(1, 4)),
                   vehicles=(van("v1", shift_end_s=3600, breaks=breaks),))


def break_while_waiting() -> Problem:
    """The second stop opens an hour after the first is done: the break fits in the wait."""
    rest = Break(id="rest", earliest_start_s=1800, latest_start_s=3000, duration_s=1200)
    return Problem(locations=(HUB, north(1), north(1.5)),
                   jobs=(job("early", 1, window_end_s=600), job("later", 2, window_start_s=4200)),
                   vehicles=(van("v1", breaks=(rest,)),))


# --- pinned, locked, stability ---------------------------------------------------------------


def pinned_parcel_far_van(*, pinned: bool) -> Problem:
    """The parcel sits next to ``near``'s hub but is already on ``far`` (5 km away)."""
    return Problem(locations=(HUB, north(5), north(0.3)),
                   jobs=(job("parcel", 2, vehicle_id="far" if pinned else None),),
                   vehicles=(van("near"), van("far", start=1)))


def locked_stops_first(*, locked: tuple[str, ...]) -> Problem:
    """Three stops on a line towards the van's end; the shortest order is a, b, c; ``locked``
    must come first."""
    return Problem(locations=(HUB, north(1), north(2), north(3)),
                   jobs=(job("a", 1), job("b", 2), job("c", 3)),
                   vehicles=(van("v1", end=3, locked=locked, planned=locked),))


def stability_cap(*, max_new_stops: int | None) -> Problem:
    """``v1`` has planned a and b (already on board); two new stops sit next to it, ``v2`` is 3 km
    away. Uncapped, ``v1`` takes both new stops; capped at one, ``v2`` takes the other."""
    return Problem(locations=(HUB, north(3), north(0.2), north(0.3), north(0.4), north(0.5)),
                   jobs=(job("a", 2, vehicle_id="v1"), job("b", 3, vehicle_id="v1"), job("new1", 4), job("new2", 5)),
                   vehicles=(van("v1", planned=("a", "b"), max_new_stops=max_new_stops), van("v2", start=1)))


def warm_start_from_plan(*, planned: tuple[str, ...], j4_closes_s: int = sc.DAY_S) -> Problem:
    """Four stops on a line and a planned route that may name jobs no longer in the problem, or
    break a window (``j4`` 4 km out closing at ``j4_closes_s``)."""
    return Problem(locations=(HUB, north(1), north(2), north(3), north(4)),
                   jobs=tuple(job(f"j{i}", i, window_end_s=j4_closes_s if i == 4 else sc.DAY_S) for i in range(1, 5)),
                   vehicles=(van("v1", planned=planned),))


def delayed_rider_replan(*, capped: bool = True) -> Problem:
    """A re-plan of two riders, each with a locked next stop, its parcels on board and at most one
    stop not on its plan (``capped``). ``v1`` (at the hub) is 10 minutes late: its planned a1, a2,
    a3 now reaches a3 after its window closes (1050 s), a1, a3, a2 still makes it. Three new
    orders sit between them, more than the two riders may take, so one must be left out."""
    cap = 1 if capped else None
    locations = (HUB, north(3), north(0.5), north(1.0), north(1.5), north(2.0), north(3.3), north(3.6), north(4.0),
                 north(1.5, 0.3), north(1.6, 0.3), north(1.7, 0.3))
    jobs = (job("a1", 2, vehicle_id="v1"), job("a2", 3, vehicle_id="v1"), job("a3", 4, vehicle_id="v1", window_end_s=1050),
            job("a4", 5, vehicle_id="v1"), job("b1", 6, vehicle_id="v2"), job("b2", 7, vehicle_id="v2"),
            job("b3", 8, vehicle_id="v2"), *(job(f"new{k}", 9 + k, priority=3) for k in range(3)))
    return Problem(locations=locations, jobs=jobs, vehicles=(
        van("v1", shift_start_s=600, planned=("a1", "a2", "a3", "a4"), locked=("a1",), max_new_stops=cap),
        van("v2", start=1, planned=("b1", "b2", "b3"), locked=("b1",), max_new_stops=cap)))


# --- even workload ---------------------------------------------------------------------------


def eight_stops_two_vans(*, even: bool) -> Problem:
    """Eight stops around the hub, two vans there: one tour is shortest; even workload splits 4+4."""
    points = tuple(north(0.3 * dy, 0.3 * dx) for dy, dx in ((1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1),
                                                             (0, -1), (1, -1)))
    return Problem(locations=(HUB, *points), jobs=tuple(job(f"s{i}", i) for i in range(1, 9)),
                   vehicles=(van("v1"), van("v2")), even_workload=even)


# --- everything at once ----------------------------------------------------------------------


def combined_day() -> Problem:
    """Pairs, a lunch break, a soft window, two trips and a cold-chain skill on one problem: a
    3-unit cold van with two trips, a plain van; a pair, hub parcels, one cold parcel."""
    lunch = Break(id="lunch", earliest_start_s=3600, latest_start_s=5400, duration_s=1800)
    cold = frozenset({"cold_chain"})
    locations = (HUB, north(1), north(1.5), north(2), north(2.5), north(0.5, 1), north(1, 1), north(1.5, 1),
                 north(2, -1))
    jobs = (job("ice", 1, skills=cold, late_cost_per_hour=30.0, window_end_s=120),
            job("h1", 2), job("h2", 3), job("h3", 4), job("h4", 5), job("h5", 6),
            job("pickup", 7), job("drop", 8, pickup_id="pickup"))
    return Problem(locations=locations, jobs=jobs,
                   vehicles=(van("cold", capacity=(3.0,), skills=cold, max_trips=2, reload_s=300, breaks=(lunch,)),
                             van("plain", capacity=(3.0,), breaks=(lunch,), fixed_cost=1000.0)))

