"""The continuous operating day as a benchmark: each seed's day played twice through the whole
system, once planning with the travel times the tracker learns (the hubs' default) and once with
one constant speed per vehicle (``{"default": {"learned_speeds": false}}``), then the medians of
the issue's figures over the seeds side by side, and ``planned_arrival_mae_ratio``: the median
over seeds of learned MAE / constant MAE for the same day (the target is <= 0.7).

The caller plays a day (``play(seed, hub_policies) -> summary dict``, the demo's JSON); this module
only orders the runs and reduces them, so it needs no broker of its own."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from typing import Any

LEARNED = None  # the environment's hub policies (learned speeds unless it says otherwise)
CONSTANT = json.dumps({"default": {"learned_speeds": False}})
FIGURES = (
    "orders_created", "settled", "delivered", "returned", "cancelled", "failed_open", "assign_median_s",
    "assign_p95_s", "hyperlocal_on_promise", "fleet_utilisation", "deliveries_per_rider_hour",
    "last_mile_before_window", "last_mile_after_window", "first_attempt_success", "reattempt_success",
    "pickup_before_drop_violations", "hyperlocal_missing_pickup", "breaks_planned", "breaks_taken",
    "planned_arrival_mae_s", "events_produced", "events_in_clickhouse", "elapsed_s",
)

Play = Callable[[int, str | None], dict[str, Any]]


def constant_policies(environment: str) -> str:
    """The environment's hub policies with learned speeds off everywhere (the same day otherwise)."""
    doc = json.loads(environment) if environment.strip() else {}
    doc.setdefault("default", {})["learned_speeds"] = False
    for hub in doc.get("hubs", {}).values():
        hub["learned_speeds"] = False
    return json.dumps(doc)


def _median(values: Sequence[Any]) -> float | None:
    numbers = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    return round(statistics.median(numbers), 4) if numbers else None


def reduce(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Medians per arm and the MAE ratio from runs tagged with ``seed`` and ``arm``."""
    arms: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        arms.setdefault(r["arm"], []).append(r)
    medians = {arm: {k: _median([r.get(k) for r in rs]) for k in FIGURES} for arm, rs in arms.items()}
    ratios = []
    by_seed = {(r["seed"], r["arm"]): r for r in runs}
    for seed in sorted({r["seed"] for r in runs}):
        learned, constant = by_seed.get((seed, "learned")), by_seed.get((seed, "constant"))
        if learned and constant and learned.get("planned_arrival_mae_s") and constant.get("planned_arrival_mae_s"):
            ratios.append(learned["planned_arrival_mae_s"] / constant["planned_arrival_mae_s"])
    dead = {arm: sum(sum(r.get("dead_letters", {}).values()) for r in rs) for arm, rs in arms.items()}
    return {"medians": medians, "planned_arrival_mae_ratio": _median(ratios),
            "planned_arrival_mae_ratios": [round(x, 4) for x in ratios], "dead_letters": dead,
            "all_ok": all(r.get("ok") for r in runs), "seeds": sorted({r["seed"] for r in runs})}


def run(play: Play, seeds: Sequence[int], *, environment_policies: str = "",
        log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Each seed, learned then constant; the summary with every run."""
    runs = []
    for seed in seeds:
        for arm, policies in (("learned", LEARNED), ("constant", constant_policies(environment_policies))):
            log(f"bench day: seed {seed}, {arm} speeds")
            summary = play(seed, policies)
            runs.append({**summary, "seed": seed, "arm": arm})
            log(f"  seed {seed} {arm}: settled {summary.get('settled')}/{summary.get('orders_created')}, assign "
                f"median {summary.get('assign_median_s')} s, planned-arrival MAE {summary.get('planned_arrival_mae_s')} s,"
                f" {summary.get('elapsed_s')} s wall")
    return {**reduce(runs), "runs": runs}


def report(result: dict[str, Any]) -> list[str]:
    """The medians of both arms side by side, then the ratio."""
    arms = [a for a in ("learned", "constant") if a in result["medians"]]
    width = max(len(k) for k in FIGURES)
    lines = [f"{'median over seeds ' + str(result['seeds']):<{width + 2}}" + "".join(f"{a:>14}" for a in arms)]
    for k in FIGURES:
        lines.append(f"{k:<{width + 2}}" + "".join(f"{_fmt(result['medians'][a][k]):>14}" for a in arms))
    lines.append(f"dead letters: {result['dead_letters']}; every run ok: {result['all_ok']}")
    lines.append(f"planned_arrival_mae_ratio (learned / constant, median of {result['planned_arrival_mae_ratios']}): "
                 f"{_fmt(result['planned_arrival_mae_ratio'])} (target <= 0.7)")
    return lines


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:g}" if isinstance(v, float) else str(v)


__all__ = ["CONSTANT", "FIGURES", "constant_policies", "reduce", "report", "run"]
