"""`bench day` plays each seed with learned and with constant speeds and reduces the runs to
medians and the planned-arrival MAE ratio."""

from __future__ import annotations

import json
from typing import Any

from benchmarks import day as bench_day


def test_constant_arm_turns_learned_speeds_off_everywhere_and_keeps_the_rest() -> None:
    env = json.dumps({"default": {"horizon_min": 90}, "hubs": {"hub-2": {"even_workload": True}}})
    doc = json.loads(bench_day.constant_policies(env))
    assert doc == {"default": {"horizon_min": 90, "learned_speeds": False},
                   "hubs": {"hub-2": {"even_workload": True, "learned_speeds": False}}}
    assert json.loads(bench_day.constant_policies("")) == {"default": {"learned_speeds": False}}


def test_each_seed_is_played_learned_then_constant_and_the_ratio_is_the_median_of_per_seed_ratios() -> None:
    played: list[tuple[int, str | None]] = []
    mae = {(1, None): 60.0, (2, None): 90.0, (3, None): 50.0}

    def play(seed: int, policies: str | None) -> dict[str, Any]:
        played.append((seed, policies))
        return {"planned_arrival_mae_s": mae.get((seed, policies), 100.0), "assign_median_s": 10.0 * seed,
                "dead_letters": {}, "ok": True, "settled": 5, "orders_created": 5}

    result = bench_day.run(play, [1, 2, 3])
    assert [s for s, _ in played] == [1, 1, 2, 2, 3, 3]
    assert [p is None for _, p in played] == [True, False] * 3
    assert result["planned_arrival_mae_ratios"] == [0.6, 0.9, 0.5]
    assert result["planned_arrival_mae_ratio"] == 0.6
    assert result["medians"]["learned"]["assign_median_s"] == 20.0
    assert result["all_ok"] is True and len(result["runs"]) == 6
    lines = bench_day.report(result)
    assert any(line.startswith("planned_arrival_mae_ratio") and "0.6" in line for line in lines)


def test_a_run_without_arrivals_scored_gives_no_ratio_rather_a_wrong_one() -> None:
    runs = [{"seed": 1, "arm": "learned", "planned_arrival_mae_s": None, "ok": False},
            {"seed": 1, "arm": "constant", "planned_arrival_mae_s": 80.0, "ok": True}]
    result = bench_day.reduce(runs)
    assert result["planned_arrival_mae_ratio"] is None and result["all_ok"] is False
