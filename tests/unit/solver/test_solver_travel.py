"""Travel-time models: profile speeds by hour, rounding up, learned per-cell speeds, Problem.durations."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys

import h3
import pytest

from solver.geo import haversine_m
from solver.model import Job, Problem, Vehicle, travel_seconds
from solver.travel import (
    PROFILES,
    HaversineTravel,
    LearnedSpeeds,
    Profile,
    SpeedObservation,
    TravelModel,
    haversine_matrix_m,
    hour_of_day,
    problem_durations,
)

HUB = (48.8566, 2.3522)  # Paris, Hôtel de Ville
FAR = (48.8867, 2.3431)  # Montmartre, about 3.4 km north
RUSH, NIGHT, OFF_PEAK = 8 * 3600 + 1800, 3 * 3600, 14 * 3600


def city(n: int, seed: int = 7) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    return [HUB] + [(HUB[0] + rng.uniform(-0.05, 0.05), HUB[1] + rng.uniform(-0.08, 0.08)) for _ in range(n - 1)]


def test_default_profiles_cover_the_fleet_and_a_bike_is_the_slowest() -> None:
    assert set(PROFILES) == {"bike", "scooter", "car", "van"}
    assert all(name == p.name for name, p in PROFILES.items())
    speeds = {name: p.speed_at(OFF_PEAK) for name, p in PROFILES.items()}
    assert speeds == {"bike": 4.2, "scooter": 6.5, "car": 7.5, "van": 6.5}
    assert min(speeds, key=speeds.__getitem__) == "bike"
    assert max(speeds, key=speeds.__getitem__) == "car"


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_rush_hour_is_slower_than_night(name: str) -> None:
    profile = PROFILES[name]
    assert profile.speed_at(RUSH) < profile.speed_at(OFF_PEAK) < profile.speed_at(NIGHT)
    model = HaversineTravel()
    rush = model.durations([HUB, FAR], profile, RUSH)[0][1]
    night = model.durations([HUB, FAR], profile, NIGHT)[0][1]
    assert rush > night > 0


def test_a_car_suffers_more_from_rush_hour_than_a_bike() -> None:
    def slowdown(p: Profile) -> float:
        return p.speed_at(NIGHT) / p.speed_at(RUSH)

    assert slowdown(PROFILES["car"]) > slowdown(PROFILES["scooter"]) > slowdown(PROFILES["bike"])


def test_hour_of_day_wraps_past_midnight_and_rejects_negative_times() -> None:
    assert [hour_of_day(s) for s in (0, 3599, 3600, 8 * 3600 + 1, 86_399, 86_400 + 7200)] == [0, 0, 1, 8, 23, 2]
    with pytest.raises(ValueError, match="depart_s_of_day"):
        hour_of_day(-1)


def test_durations_are_the_model_travel_seconds_of_road_distance_at_the_hour_speed() -> None:
    locations = city(40)
    profile = PROFILES["van"]
    matrix = HaversineTravel().durations(locations, profile, RUSH)
    speed = profile.speed_at(RUSH)
    for a in range(len(locations)):
        for b in range(len(locations)):
            road_m = haversine_m(locations[a], locations[b]) * profile.circuity
            assert matrix[a][b] == travel_seconds(road_m, speed)


@pytest.mark.parametrize("locations", [[HUB], [HUB, (-33.86, 151.21), (40.71, -74.0)]], ids=["one", "continents"])
def test_durations_of_one_location_or_days_apart_are_travel_seconds_too(locations: list[tuple[float, float]]) -> None:
    profile = PROFILES["car"]
    matrix = HaversineTravel().durations(locations, profile, NIGHT)
    assert matrix == tuple(tuple(travel_seconds(haversine_m(a, b) * profile.circuity, profile.speed_at(NIGHT))
                                 for b in locations) for a in locations)
    assert all(type(x) is int for row in matrix for x in row)


def test_durations_round_up_to_whole_seconds() -> None:
    profile = Profile(name="walker", speed_mps=1.0, circuity=1.0)
    locations = [HUB, FAR]
    exact = haversine_m(HUB, FAR)
    assert exact != int(exact)
    assert HaversineTravel().durations(locations, profile, 0)[0][1] == math.floor(exact) + 1


def test_haversine_matrix_is_the_vector_form_of_haversine_m() -> None:
    locations = city(30) + [(-33.86, 151.21), (40.71, -74.0), (0.0, 179.9), (0.0, -179.9)]
    matrix = haversine_matrix_m(locations)
    for a in range(len(locations)):
        for b in range(len(locations)):
            assert matrix[a, b] == pytest.approx(haversine_m(locations[a], locations[b]), rel=1e-12, abs=1e-6)


@pytest.mark.parametrize("model", [HaversineTravel(), LearnedSpeeds()], ids=["haversine", "learned"])
def test_matrices_are_square_whole_seconds_with_a_zero_diagonal(model: TravelModel) -> None:
    assert isinstance(model, TravelModel)
    locations = city(25)
    matrix = model.durations(locations, PROFILES["scooter"], OFF_PEAK)
    metres = model.distances(locations)
    for m in (matrix, metres):
        assert len(m) == len(locations) and all(len(row) == len(locations) for row in m)
        assert all(m[i][i] == 0 for i in range(len(locations)))
    assert all(type(x) is int and x >= 0 for row in matrix for x in row)
    assert all(x > 0 for i, row in enumerate(matrix) for j, x in enumerate(row) if i != j)
    assert metres[0][1] == pytest.approx(haversine_m(locations[0], locations[1]) * 1.3)


def test_profile_rejects_impossible_figures() -> None:
    with pytest.raises(ValueError, match="hourly_factors"):
        Profile(name="van", speed_mps=6.5, hourly_factors=(1.0,) * 23)
    with pytest.raises(ValueError, match="hourly_factors"):
        Profile(name="van", speed_mps=6.5, hourly_factors=(0.0,) + (1.0,) * 23)
    with pytest.raises(ValueError, match="circuity"):
        Profile(name="van", speed_mps=6.5, circuity=0.9)
    with pytest.raises(ValueError, match="speed_mps"):
        Profile(name="van", speed_mps=0.0)


# --- learned speeds -------------------------------------------------------------------------------


def line_cells(a: tuple[float, float], b: tuple[float, float], resolution: int = 8) -> list[str]:
    return h3.grid_path_cells(h3.latlng_to_cell(*a, resolution), h3.latlng_to_cell(*b, resolution))


def observed_on_line(speed_mps: float, weight: float, hour: int = 8, profile: str = "van") -> LearnedSpeeds:
    learned = LearnedSpeeds()
    for cell in line_cells(HUB, FAR):
        learned.observe(profile, cell, hour, speed_mps, weight)
    return learned


def test_without_observations_learned_speeds_are_the_prior() -> None:
    locations = city(30)
    prior = HaversineTravel().durations(locations, PROFILES["van"], RUSH)
    assert LearnedSpeeds().durations(locations, PROFILES["van"], RUSH) == prior
    other_hour = observed_on_line(1.0, 1e6, hour=14)
    other_profile = observed_on_line(1.0, 1e6, profile="bike")
    assert other_hour.durations(locations, PROFILES["van"], RUSH) == prior
    assert other_profile.durations(locations, PROFILES["van"], RUSH) == prior


def test_many_samples_move_durations_to_the_observed_speed_few_samples_partway() -> None:
    van = PROFILES["van"]
    half = van.speed_at(RUSH) / 2
    exact = haversine_m(HUB, FAR) * van.circuity / van.speed_at(RUSH)
    prior = HaversineTravel().durations([HUB, FAR], van, RUSH)[0][1]
    few = observed_on_line(half, weight=LearnedSpeeds().prior_weight).durations([HUB, FAR], van, RUSH)[0][1]
    many = observed_on_line(half, weight=1e6).durations([HUB, FAR], van, RUSH)[0][1]
    # as many samples as the prior's weight: the cell speed is 3/4 of the prior, trips 4/3 as long
    assert few == pytest.approx(exact * 4 / 3, abs=1)
    assert many == pytest.approx(2 * exact, abs=1)
    assert prior < few < many


def test_observed_cells_time_only_the_trips_that_cross_them() -> None:
    elsewhere = (48.8400, 2.2800)  # west, off the HUB-FAR line
    locations = [HUB, FAR, elsewhere]
    van = PROFILES["van"]
    learned = LearnedSpeeds()
    middle = line_cells(HUB, FAR)[1:-1]  # the line's cells but its ends
    assert middle
    for cell in middle:
        learned.observe("van", cell, 8, van.speed_at(RUSH) / 2, 1e6)
    prior = HaversineTravel().durations(locations, van, RUSH)
    matrix = learned.durations(locations, van, RUSH)
    assert matrix[0][1] > prior[0][1] and matrix[1][0] == matrix[0][1]
    assert matrix[0][2] == prior[0][2] and matrix[2][1] == prior[2][1]


def test_observations_after_a_first_matrix_change_the_next_one() -> None:
    learned = LearnedSpeeds()
    van = PROFILES["van"]
    before = learned.durations([HUB, FAR], van, RUSH)
    for cell in line_cells(HUB, FAR):
        learned.observe("van", cell, 8, 1.0, 1e3)
    assert learned.durations([HUB, FAR], van, RUSH)[0][1] > before[0][1]


def test_cell_speed_is_the_prior_shrunk_toward_the_weighted_observations() -> None:
    van = PROFILES["van"]
    learned = LearnedSpeeds.from_observations(
        [SpeedObservation(profile="van", lat=HUB[0], lon=HUB[1], hour=8, speed_mps=3.0, weight=10.0),
         SpeedObservation(profile="van", lat=HUB[0], lon=HUB[1], hour=8, speed_mps=5.0, weight=30.0)],
        prior_weight=40.0)
    cell = h3.latlng_to_cell(*HUB, 8)
    prior = van.speed_at(RUSH)
    assert learned.cell_speed_mps(van, cell, 8) == pytest.approx((40 * prior + 30 + 150) / 80)
    assert learned.cell_speed_mps(van, cell, 9) == prior  # same hour band, but no data for hour 9
    assert learned.cell_speed_mps(van, h3.latlng_to_cell(*FAR, 8), 8) == prior
    finer = h3.latlng_to_cell(*HUB, 10)  # a finer cell counts for its parent at the model's resolution
    learned.observe("van", finer, 8, 5.0, 40.0)
    assert learned.cell_speed_mps(van, cell, 8) == pytest.approx((40 * prior + 30 + 150 + 200) / 120)


def test_observe_rejects_bad_cells_hours_and_speeds() -> None:
    learned = LearnedSpeeds()
    cell = h3.latlng_to_cell(*HUB, 8)
    with pytest.raises(ValueError, match="not a valid H3 cell"):
        learned.observe("van", "not-a-cell", 8, 5.0)
    with pytest.raises(ValueError, match="coarser"):
        learned.observe("van", h3.latlng_to_cell(*HUB, 6), 8, 5.0)
    with pytest.raises(ValueError, match="hour"):
        learned.observe("van", cell, 24, 5.0)
    with pytest.raises(ValueError, match="speed_mps"):
        learned.observe("van", cell, 8, -1.0)
    with pytest.raises(ValueError, match="weight"):
        learned.observe("van", cell, 8, 5.0, 0.0)


# --- Problem.durations ----------------------------------------------------------------------------


def vehicle(id_: str, profile: str) -> Vehicle:
    return Vehicle(id=id_, start=0, end=0, capacity=(10.0,), shift_start_s=0, shift_end_s=36_000, speed_mps=5.0,
                   profile=profile)


def test_problem_durations_gives_a_matrix_for_each_profile_the_fleet_uses() -> None:
    locations = city(6)
    fleet = (vehicle("v1", "van"), vehicle("v2", "bike"), vehicle("v3", "van"), vehicle("v4", ""))
    durations = problem_durations(locations, fleet, HaversineTravel(), RUSH)
    assert sorted(durations) == ["bike", "van"]
    jobs = tuple(Job(id=f"j{i}", location=i, demand=(1.0,), window_start_s=0, window_end_s=36_000, service_s=60)
                 for i in range(1, len(locations)))
    problem = Problem(locations=tuple(locations), jobs=jobs, vehicles=fleet, durations=durations)
    assert problem.travel_s(fleet[0], 0, 3) == durations["van"][0][3]
    assert problem.travel_s(fleet[1], 0, 3) == durations["bike"][0][3] > durations["van"][0][3]
    assert problem.travel_s(fleet[3], 0, 3) == travel_seconds(problem.distance_m(0, 3), 5.0)


def test_problem_durations_rejects_a_profile_it_does_not_know() -> None:
    with pytest.raises(ValueError, match="hovercraft"):
        problem_durations(city(3), (vehicle("v1", "hovercraft"),), HaversineTravel(), RUSH)


def test_travel_module_loads_no_solver_engine_and_no_infra() -> None:
    probe = ("import json, sys, solver.travel\n"
             "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'ortools', 'pyvrp', 'infra'})))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30, check=True).stdout
    assert json.loads(out) == []
