"""The ``milestream`` command line."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from infra.settings import Settings
from schemas.redact import escape_controls, mask_urls
from solver.params import ENGINES

log = logging.getLogger("milestream")


def _err(msg: str) -> None:
    print(mask_urls(msg), file=sys.stderr, flush=True)


def _table(rows: list[dict[str, Any]] | list[list[Any]], columns: list[str] | None = None) -> str:
    if rows and isinstance(rows[0], dict):
        columns = list(rows[0])
        rows = [[r[c] for c in columns] for r in rows]  # type: ignore[index]
    # Cells hold data from outside: control characters shown as \x1b..., never sent to the terminal.
    columns = [escape_controls(str(c)) for c in columns or []]
    cells = [[("" if v is None else escape_controls(str(v))) for v in r] for r in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(out)


# -- demo ---------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from infra.demo import DemoDay, run_demo

    day = DemoDay.of(args.scenario, orders=args.orders, riders=args.riders, seed=args.seed, speedup=args.speedup,
                     timeout_s=args.timeout, data_dir=Path(args.data_dir) if args.data_dir else None)
    # A continuous day runs for many minutes: its progress goes to stderr even with --json.
    summary = run_demo(day, progress=None if args.json and day.scenario == "default" else _err)
    if args.json:
        print(json.dumps(summary.to_dict(), default=str))
    else:
        if summary.scorecard:
            print("\nOperating day (the simulator's scorecard: ledger and routes read back, against its truth)")
            print(_table([{k: v for k, v in summary.scorecard.items() if k in _SCORECARD_HEAD}]))
            print(_table([{k: v for k, v in summary.scorecard.items() if k not in _SCORECARD_HEAD}]))
            if summary.run.get("stalled"):
                print(f"stalled: {summary.run['stalled']}")
        produced, in_ch = summary.events_produced, summary.events_in_clickhouse
        print("\nDelivery day KPIs (read back from ClickHouse)")
        print(_table([dict(summary.kpis)]))
        print("\nDistance per rider (km, from GPS)")
        distance = [{"rider_id": r, "km": km} for r, km in summary.distance_km_per_rider.items()]
        print(_table(distance) if distance else "(no GPS)")
        print(f"\nevents produced {produced}, in ClickHouse {in_ch}"
              + (" (match)" if produced == in_ch else " (MISMATCH)")
              + f"; dead letters {summary.dead_letters or 0}; {summary.elapsed_s}s")
    return 0 if summary.ok else 1


_SCORECARD_HEAD = ("settled", "assign_median_s", "assign_p95_s", "hyperlocal_on_promise", "fleet_utilisation",
                   "first_attempt_success", "reattempt_success", "returned", "planned_arrival_mae_s")


def cmd_bench_day(args: argparse.Namespace) -> int:
    from benchmarks import day as bench_day
    from infra.demo import DemoDay, run_demo

    seeds = [args.first_seed + k for k in range(args.seeds)]
    _at_least_one(("--seeds", args.seeds))

    def play(seed: int, hub_policies: str | None) -> dict[str, Any]:
        day = DemoDay.of("continuous", seed=seed, orders=args.orders, riders=args.riders, speedup=args.speedup,
                         timeout_s=args.timeout, hub_policies=hub_policies)
        return run_demo(day, progress=_err if args.verbose else None).to_dict()

    result = bench_day.run(play, seeds, environment_policies=Settings.from_env().hub_policies, log=_err)
    print(json.dumps(result, default=str) if args.json else "\n".join(bench_day.report(result)))
    return 0 if result["all_ok"] else 1


# -- up / sql / config ---------------------------------------------------------------------------------


def cmd_up(args: argparse.Namespace) -> int:
    from infra.stack import Stack

    settings = Settings.from_env(**({"data_dir": args.data_dir} if args.data_dir else {}))
    stack = Stack(settings)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):  # SIGINT too: a background start inherits it ignored
        signal.signal(sig, lambda *_: stop.set())
    try:
        stack.start()
        s = stack.settings
        _err(f"milestream up: Kafka {s.display('kafka_bootstrap')} ({'embedded' if stack.broker else 'external'}), "
             f"ClickHouse {s.display('resolved_clickhouse_dsn')}, workers "
             f"{', '.join(f'{r} (pid {p})' for r, p in stack.worker_pids.items())}; "
             f"logs in {Path(s.data_dir) / 'logs'}. Ctrl-C stops.")
        _err(f"  produce to {', '.join(s.topic(n) for n in ('inbox', 'riders', 'gps'))}; "
             "query with: milestream sql \"SELECT * FROM milestream.order_state FINAL LIMIT 10\"")
        seen = 0
        while not stop.wait(1.0):
            for role, code in stack.exits[seen:]:  # the supervisor restarts it; say so
                _err(f"worker {role} exited with code {code}; restarted (see logs/{role}.log)")
            seen = len(stack.exits)
    except KeyboardInterrupt:
        pass
    finally:
        _err("stopping...")
        stack.stop()
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    from infra.stack import query_running

    settings = Settings.from_env(**({"data_dir": args.data_dir} if args.data_dir else {}))
    result = query_running(Path(settings.data_dir), args.query)
    if result is None:  # nothing running: open ClickHouse ourselves
        from infra.clickhouse import connect

        try:
            res = connect(settings).query(args.query)
            result = {"columns": list(res.column_names), "rows": [list(r) for r in res.result_rows]}
        except Exception as exc:
            result = {"error": mask_urls(str(exc))}
    if "error" in result:
        _err(f"error: {result['error']}")
        return 2
    if args.format == "json":
        print(json.dumps([dict(zip(result["columns"], r, strict=True)) for r in result["rows"]], default=str))
    elif args.format == "tsv":
        print("\t".join(escape_controls(str(c)) for c in result["columns"]))
        for r in result["rows"]:
            print("\t".join(escape_controls(str(v)) for v in r))
    else:
        print(_table(result["rows"], result["columns"]))
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    rows = settings.describe()
    width = max(len(r[0]) for r in rows)
    for var, value, default, doc in rows:
        print(f"{var.ljust(width)}  = {value!r}\n{' ' * width}    {doc} (default {default!r})")
    return 0


# -- solve / bench -------------------------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH_DATA = REPO_ROOT.parent / "shared" / "benchmarks" / "vrptw"  # ../shared/benchmarks/vrptw from the repo


def _read_text(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise ValueError(f"{what} {path} is a directory, not a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{what} {path} cannot be read ({exc})") from None


def _at_least_one(*flags: tuple[str, int]) -> None:
    for flag, value in flags:
        if value < 1:
            raise ValueError(f"{flag} {value} must be at least 1")


def _check_time_limit(seconds: float) -> None:
    if not (0 < seconds < float("inf")):
        raise ValueError(f"--time-limit {seconds:g} must be a positive number of seconds")


def cmd_solve(args: argparse.Namespace) -> int:
    from benchmarks import solomon
    from benchmarks.verify import verify
    from solver import SolveParams, solve
    from solver.problem_json import problem_from_json

    _check_time_limit(args.time_limit)
    params = SolveParams(time_limit_s=args.time_limit, engine=args.engine)
    text = _read_text(args.file, "problem file")
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{args.file} is not valid JSON ({exc})") from None
        problem = problem_from_json(data)
        solution = solve(problem, params)
        out = {"vehicles": sum(1 for r in solution.routes if r.stops), "distance": round(solution.distance_m(), 1),
               "routes": [[v.job_id for v in r.stops] for r in solution.routes if r.stops],
               "unassigned": [u.job_id for u in solution.unassigned]}
        problems = solution.violations(problem)
        title = f"{args.file}: {len(problem.jobs)} jobs, {len(problem.vehicles)} vehicles"
        reasons = {u.job_id: u.reason for u in solution.unassigned}
        # The text shows breaks and reloads where they fall; --json keeps the job ids only.
        shown = [[{"break": f"[break {v.job_id}]", "reload": "[reload]"}.get(v.kind, v.job_id) for v in r.visits]
                 for r in solution.routes if r.stops]
    else:
        try:
            instance = solomon.parse(text)
        except ValueError as exc:
            raise ValueError(f"{args.file} is neither a JSON problem nor a Solomon instance ({exc})") from None
        problem, numbers = solomon.to_problem(instance)
        routes, unassigned = solomon.plan(solve(problem, params), numbers)
        verdict = verify(instance, routes)
        out = {"vehicles": verdict.vehicles, "distance": verdict.distance, "routes": routes, "unassigned": unassigned}
        problems = verdict.problems
        title = (f"{instance.name}: {len(instance.customers)} customers, fleet {instance.fleet} x capacity "
                 f"{instance.capacity:g}; distances: Euclidean truncated to one decimal (DIMACS)")
        reasons = {}
        shown = routes
    if args.json:
        print(json.dumps(out))
    else:
        print(title)
        print(f"{out['vehicles']} vehicles, distance {out['distance']}")
        for k, route in enumerate(shown, start=1):
            print(f"  route {k}: {' '.join(map(str, route))}")
        for u in out["unassigned"]:
            print(f"  unassigned {u}" + (f": {reasons[u]}" if u in reasons else ""))
    for problem_text in problems:
        _err(f"milestream solve: infeasible plan: {problem_text}")
    return 1 if problems or out["unassigned"] else 0


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def cmd_bench(args: argparse.Namespace) -> int:
    from benchmarks import solomon
    from benchmarks import solver as bench

    _check_time_limit(args.time_limit)
    data = Path(args.data_dir) if args.data_dir else BENCH_DATA
    if not (data / "solomon").is_dir() or not (data / "solomon_bks.csv").is_file():
        raise ValueError(f"no benchmark data in {data} (expected solomon/*.txt and solomon_bks.csv; see --data-dir)")
    names = args.instances.split(",") if args.instances else None
    paths = solomon.instance_files(data / "solomon", names)
    missing = [p.stem for p in paths if not p.is_file()]
    if missing or not paths:
        raise ValueError(f"no instance files for {', '.join(missing) or 'any instance'} in {data / 'solomon'}")
    solvers = [bench.OURS]
    for peer in (p.strip() for p in args.peers.split(",") if p.strip()):
        why = bench.missing_peer(peer)
        if why and peer not in bench.PEERS:
            raise ValueError(why)
        if why:
            _err(f"milestream bench: {why}")
        else:
            solvers.append(peer)
    bks = solomon.read_bks(data / "solomon_bks.csv")
    _err(f"milestream bench solver: {len(paths)} instances x {', '.join(solvers)}, {args.time_limit:g}s each, "
         f"DIMACS distances against {solomon.CONVENTION} best-known solutions")
    _at_least_one(("--jobs", args.jobs))
    if args.match_vroom and "vroom" not in solvers:
        raise ValueError("--match-vroom needs the vroom peer (--peers must include vroom, and pyvroom be installed)")
    runs = bench.bench(paths, bks, args.time_limit, solvers, seed=args.seed, progress=_err, jobs=args.jobs,
                       match_vroom=args.match_vroom, engine=args.engine)
    summary = bench.summarize(runs, solvers)
    by = {(r.instance, r.solver): r for r in runs}
    instances = list(dict.fromkeys(r.instance for r in runs))
    if args.json:
        print(json.dumps({
            "time_limit": args.time_limit, "match_vroom": args.match_vroom, "engine": args.engine,
            "convention": solomon.CONVENTION, "solvers": solvers,
            "instances": [{"instance": name,
                           "bks": {"vehicles": bks[name].vehicles, "distance": bks[name].distance} if name in bks else None,
                           "results": {s: {"vehicles": by[name, s].vehicles, "distance": by[name, s].distance,
                                           "gap_pct": by[name, s].gap, "seconds": round(by[name, s].seconds, 3),
                                           "time_limit": by[name, s].time_limit,
                                           "feasible": by[name, s].ok, "problems": by[name, s].problems}
                                       for s in solvers}} for name in instances],
            **bench.summary_dict(runs, solvers)}))
    else:
        columns = ["instance", "bks veh", "bks dist"]
        for s in solvers:
            columns += [f"{s} veh", "dist", "gap%", "s"]
        rows = []
        for name in instances:
            b = bks.get(name)
            row: list[Any] = [name, b.vehicles if b else "-", _fmt(b.distance if b else None, ".1f")]
            for s in solvers:
                r = by[name, s]
                row += [r.vehicles, f"{r.distance:.1f}" if r.ok else "INFEASIBLE", _fmt(r.gap, "+.2f"),
                        f"{r.seconds:.1f}"]
            rows.append(row)
        print(_table(rows, columns))
        print()
        print(_table([[x.solver, f"{x.feasible}/{x.instances}", _fmt(x.mean_gap, "+.2f"), _fmt(x.median_gap, "+.2f"),
                       _fmt(x.max_gap, "+.2f"), x.vehicles, f"{x.total_seconds:.1f}", _fmt(x.time_ratio, ".2f")]
                      for x in summary],
                     ["solver", "feasible", "mean gap%", "median gap%", "max gap%", "vehicles", "total s",
                      "time / ours"]))
        for r in runs:
            for problem_text in r.problems:
                _err(f"milestream bench: {r.solver} {r.instance}: {problem_text}")
    return 0 if all(r.ok for r in runs) else 1


def cmd_bench_reopt(args: argparse.Namespace) -> int:
    from benchmarks import reopt as bench_reopt

    _at_least_one(("--runs", args.runs), ("--stops", args.stops), ("--riders", args.riders))
    extra = {}
    if args.time_limit is not None:
        _check_time_limit(args.time_limit)
        extra["time_limit_s"] = args.time_limit
    result = bench_reopt.bench(runs=args.runs, stops=args.stops, riders=args.riders, seed=args.seed,
                               progress=_err, **extra)
    print(json.dumps(result) if args.json else "\n".join(bench_reopt.summary_lines(result)))
    return 1 if result["locked_moved"] or result["violations"] else 0


def cmd_bench_scale(args: argparse.Namespace) -> int:
    from benchmarks import scale as bench_scale

    _at_least_one(("--orders", args.orders), ("--riders", args.riders), ("--processes", args.processes),
                  ("--part-jobs", args.part_jobs), *(("--hubs", h) for h in args.hubs))
    _check_time_limit(args.budget)
    result = bench_scale.run(orders=args.orders, riders=args.riders, hubs=tuple(args.hubs), seed=args.seed,
                             budget_s=args.budget, processes=args.processes, engine=args.engine,
                             part_jobs=args.part_jobs, progress=_err)
    print(json.dumps(result) if args.json else "\n".join(bench_scale.report(result)))
    return 0 if all(case["feasible"] for case in result["cases"]) else 1


def cmd_bench_eta(args: argparse.Namespace) -> int:
    from benchmarks import eta as bench_eta

    _at_least_one(("--riders", args.riders), ("--stops", args.stops))
    if args.warmup_days < 0:
        raise ValueError(f"--warmup-days {args.warmup_days} must be 0 or more")
    result = bench_eta.run(seed=args.seed, riders=args.riders, stops=args.stops, warmup_days=args.warmup_days,
                           progress=_err)
    print(json.dumps(result) if args.json else "\n".join(bench_eta.report(result)))
    return 0


@contextlib.contextmanager
def _bench_kafka() -> Iterator[tuple[Settings, int | None]]:
    """The configured Kafka (``MILESTREAM_KAFKA_BOOTSTRAP``), or an embedded broker started for the
    bench and stopped after it: the settings to reach it, and the embedded broker's pid."""
    from infra.kafka import EmbeddedBroker

    settings = Settings.from_env()
    if settings.kafka_bootstrap:
        yield settings, None
        return
    broker = EmbeddedBroker().start()
    try:
        yield dataclasses.replace(settings, kafka_bootstrap=broker.bootstrap), broker.pid
    finally:
        broker.stop()


def cmd_bench_pipeline(args: argparse.Namespace) -> int:
    from benchmarks import pipeline as bench_pipeline

    _at_least_one(("--riders", args.riders), ("--stops", args.stops), ("--batch", args.batch))
    if args.latency_s <= 0 or args.checkpoint_s <= 0 or (args.latency_rate is not None and args.latency_rate <= 0):
        raise ValueError("--latency-s, --checkpoint-s and --latency-rate must be positive")
    from infra.kafka import confluent_config

    with _bench_kafka() as (settings, _):
        result = bench_pipeline.run(riders=args.riders, stops=args.stops, seed=args.seed, latency_s=args.latency_s,
                                    batch=args.batch, checkpoint_s=args.checkpoint_s, client=confluent_config(settings),
                                    partitions=settings.kafka_partitions, latency_rate=args.latency_rate, log=_err)
    print(json.dumps(result) if args.json else "\n".join(bench_pipeline.report(result)))
    return 0


def cmd_bench_broker(args: argparse.Namespace) -> int:
    from benchmarks import broker as bench_broker

    cases = bench_broker.parse_cases(args.cases)
    if args.rate <= 0 or args.window_s <= 0:
        raise ValueError("--rate and --window-s must be positive")
    from infra.kafka import confluent_config

    with _bench_kafka() as (settings, broker_pid):
        result = bench_broker.run(confluent_config(settings), cases, rate=args.rate, window_s=args.window_s,
                                  broker_pid=broker_pid, log=_err)
    print(json.dumps(result) if args.json else "\n".join(bench_broker.report(result)))
    return 0


def cmd_bench_clients(args: argparse.Namespace) -> int:
    from benchmarks import clients as bench_clients
    from infra.kafka import aiokafka_config, confluent_config

    _at_least_one(("--messages", args.messages), ("--runs", args.runs))
    try:
        import kafka  # noqa: F401 - the peer measured here
    except ImportError:
        _err("milestream bench clients: kafka-python is not installed; pip install -e '.[bench]' (make bench does)")
        return 2
    with _bench_kafka() as (settings, _):
        # aiokafka takes kafka-python's connection arguments (it began as its port)
        result = bench_clients.run(confluent_config(settings), aiokafka_config(settings), messages=args.messages,
                                   runs=args.runs, seed=args.seed, partitions=settings.kafka_partitions, log=_err)
    print(json.dumps(result) if args.json else "\n".join(bench_clients.report(result)))
    return 0


def cmd_bench_hostile(args: argparse.Namespace) -> int:
    import dataclasses
    import secrets
    import tempfile
    import uuid

    from benchmarks import hostile as bench_hostile
    from infra.kafka import confluent_config
    from infra.stack import Stack

    if args.messages < 0 or args.timeout is not None and args.timeout <= 0 or any(n < 1 for n in args.route_stops):
        raise ValueError("--messages must be 0 or more; --timeout and --route-stops must be positive")
    tag = uuid.uuid4().hex[:6]
    with tempfile.TemporaryDirectory(prefix="milestream-hostile-") as data_dir:
        # the whole system as `milestream up` runs it, on topics, groups and a data dir of its own
        env = Settings.from_env()
        settings = dataclasses.replace(env, topic_prefix=f"hostile{tag}.", app_id=f"hostile{tag}", data_dir=data_dir,
                                       clickhouse_dsn="", otp_key=env.otp_key or secrets.token_hex(32))
        stack = Stack(settings)
        try:
            stack.start(with_sql_endpoint=False)
            target = bench_hostile.Target(client_config=confluent_config(stack.settings), topic=stack.settings.topic,
                                          exits=lambda: [role for role, _ in stack.exits])
            result = bench_hostile.run(target, messages=args.messages, seed=args.seed, route_stops=tuple(args.route_stops),
                                       skip=frozenset(args.skip), timeout_s=args.timeout, idle_s=args.idle, log=_err)
        finally:
            stack.stop()
    print(json.dumps(result, default=str) if args.json else "\n".join(bench_hostile.report(result)))
    return 0 if not bench_hostile.problems(result) else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="milestream",
        description="Event-sourced last-mile delivery backend: orders, GPS, routes, POD and ETAs on Kafka + ClickHouse. "
                    "Runs embedded (Tansu broker + chdb) unless MILESTREAM_KAFKA_BOOTSTRAP / MILESTREAM_CLICKHOUSE_DSN "
                    "point at a cluster (see `milestream config`).")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="simulate a delivery day end to end and print the KPIs from ClickHouse",
                       description="Starts the embedded broker, the Faust worker and the projection, plays a simulated "
                                   "day (orders, shifts, routes planned by dispatch, GPS, OTP handovers, failures) and "
                                   "prints the KPIs read back from ClickHouse. Exit code 1 if events were lost.")
    d.add_argument("--scenario", choices=("default", "continuous"), default="default",
                   help="default: the short day (1 hub, every order created at the start, played at 300x); "
                        "continuous: a whole operating day, 08:00-22:00 (2 hubs, orders arriving all day with "
                        "morning and evening peaks, 30%% hyperlocal pickups with 15-30 min promises, cancellations, "
                        "address changes, failures with re-attempts, breaks, a phone going silent), scored: "
                        "assignment latency, promises kept, first-attempt success, planned-arrival error...")
    d.add_argument("--orders", type=int, default=None, help="orders in the day (default 200; continuous 1000)")
    d.add_argument("--riders", type=int, default=None, help="riders (default 10; continuous 48, split over 2 hubs)")
    d.add_argument("--seed", type=int, default=7, help="random seed; the same seed plays the same day (default 7)")
    d.add_argument("--speedup", type=float, default=None,
                   help="simulated seconds per wall second (default 300; continuous 30). Latencies are measured in "
                        "event time, and the workers' wall latency (batch window, solve, Kafka hops: about a second) "
                        "is multiplied by it: at 30x one wall second is 30 s of event time, so assignment figures "
                        "stay meaningful against a 30 s target, and a 14-hour day takes about 28 minutes. Faster "
                        "runs finish sooner but inflate assign_median_s / assign_p95_s and promise misses.")
    d.add_argument("--data-dir", help="where ClickHouse and logs go (default: a fresh temporary directory)")
    d.add_argument("--timeout", type=float, default=None,
                   help="give up after this many wall seconds (default 600; continuous 3600)")
    d.add_argument("--json", action="store_true", help="print one JSON object with the summary instead of tables "
                                                       "(a continuous day still reports progress on stderr)")
    d.set_defaults(func=cmd_demo)
    u = sub.add_parser("up", help="run broker, worker and projections until interrupted",
                       description="Runs the system: the embedded broker (or MILESTREAM_KAFKA_BOOTSTRAP), the Faust "
                                   "worker and the ClickHouse projection, until Ctrl-C.")
    u.add_argument("--data-dir", help="override MILESTREAM_DATA_DIR")
    u.set_defaults(func=cmd_up)
    q = sub.add_parser("sql", help="query the ClickHouse projections (also while `milestream up` runs)",
                       description="Runs one query. While `milestream up` runs it is answered by that process "
                                   "(read queries only); otherwise ClickHouse is opened directly. Tables: events, "
                                   "order_state, gps_pings, dead_letters in database milestream (use FINAL).")
    q.add_argument("query", help='e.g. "SELECT status, count() FROM milestream.order_state FINAL GROUP BY status"')
    q.add_argument("--format", choices=("table", "json", "tsv"), default="table")
    q.add_argument("--data-dir", help="override MILESTREAM_DATA_DIR")
    q.set_defaults(func=cmd_sql)
    c = sub.add_parser("config", help="print every setting, its value and default (secrets masked)")
    c.set_defaults(func=cmd_config)
    so = sub.add_parser("solve", help="plan routes for a Solomon instance or a JSON problem file and print them",
                        description="Reads a Solomon VRPTW instance (classic text format; DIMACS convention: arcs "
                                    "truncated to one decimal) or a JSON problem (fields of solver.model.Problem, see "
                                    "solver/problem_json.py), solves it and prints the routes (Solomon customer "
                                    "numbers or job ids). Exit code 1 if the plan leaves jobs out or fails the check.")
    so.add_argument("file", help="a Solomon .txt instance or a JSON problem file")
    so.add_argument("--time-limit", type=float, default=5.0, help="search time in seconds (default 5)")
    so.add_argument("--json", action="store_true",
                    help='print one JSON object {"vehicles", "distance", "routes", "unassigned"}')
    so.add_argument("--engine", choices=ENGINES, default="auto",
                    help="auto (default): PyVRP when it supports every constraint of the problem, else OR-Tools "
                         "(breaks, soft windows, route-change caps, even workload need OR-Tools)")
    so.set_defaults(func=cmd_solve)
    be = sub.add_parser("bench", help="benchmark the route solver on the Solomon VRPTW instances (not a test)",
                        description="Benchmarks; `bench solver` runs our solver (and optional peers) on Solomon "
                                    "instances, checks every plan independently and prints vehicles, distance, gap "
                                    "to the best-known DIMACS distance and wall time.")
    bsub = be.add_subparsers(dest="target", required=True)
    bs = bsub.add_parser("solver", help="Solomon VRPTW: ours vs best-known solutions and peer solvers",
                         description="Per instance: vehicles, distance (arcs truncated to one decimal), gap % to "
                                     "the dist_trunc1 best-known distance and wall time, for our solver and each "
                                     "peer (PyVRP, VROOM; optional, pip install 'milestream[bench]'), every plan "
                                     "verified by benchmarks.verify; then mean/median gap and time ratio per solver. "
                                     "Progress goes to stderr. Exit code 1 if any plan is infeasible.")
    bs.add_argument("--time-limit", type=float, default=10.0, help="seconds per instance and solver (default 10)")
    bs.add_argument("--instances", help="comma-separated names, e.g. C101,R101 (default: all in the data dir)")
    bs.add_argument("--peers", default="pyvrp,vroom", help="comma-separated peers to run too, '' for none "
                                                          "(default pyvrp,vroom; skipped if not installed)")
    bs.add_argument("--seed", type=int, default=0, help="random seed for the solvers that take one (default 0)")
    bs.add_argument("--data-dir", help=f"benchmark data with solomon/*.txt and solomon_bks.csv "
                                       f"(default ../shared/benchmarks/vrptw from the repo: {BENCH_DATA})")
    bs.add_argument("--jobs", type=int, default=1,
                    help="runs at once, each in its own single-threaded process: one core each (default 1)")
    bs.add_argument("--match-vroom", action="store_true",
                    help="run VROOM first on each instance; ours and the other peers get VROOM's wall time as "
                         "their limit (capped at --time-limit)")
    bs.add_argument("--engine", choices=ENGINES, default="auto", help="our solver's engine (default auto)")
    bs.add_argument("--json", action="store_true", help="print one JSON object with every run and the summary")
    bs.set_defaults(func=cmd_bench)
    br = bsub.add_parser("reopt", help="re-optimise 40-stop routes after a cancellation, an urgent order and a delay",
                         description="Seeded riders with 40-stop planned routes; at a moment of the day one future "
                                     "stop is cancelled, an urgent order arrives and a rider runs 10 minutes late. "
                                     "Each run re-plans from the riders' positions with the started and next stops "
                                     "locked and a cap on new stops per route, and prints the median and p90 wall "
                                     "time of the whole call (build + solve + schedule), locked stops moved, stops "
                                     "changed and violations. Exit code 1 if a locked stop moved or a plan fails "
                                     "the check.")
    br.add_argument("--runs", type=int, default=21, help="scenarios to time (default 21)")
    br.add_argument("--stops", type=int, default=40, help="planned stops per rider (default 40)")
    br.add_argument("--riders", type=int, default=1, help="riders (default 1)")
    br.add_argument("--time-limit", type=float, default=None,
                    help="search time per re-plan in seconds (default: the re-optimiser's own)")
    br.add_argument("--seed", type=int, default=0, help="first scenario's seed (default 0)")
    br.add_argument("--json", action="store_true", help="print one JSON object with the figures")
    br.set_defaults(func=cmd_bench_reopt)
    bc = bsub.add_parser("scale", help="plan a 2,000-order, 80-rider city day with 1 and with 5 hubs",
                         description="Builds a seeded city day (mixed bikes, scooters, cars and vans based at the "
                                     "hubs, 2-hour slots, skills, multiple trips), splits it into parts solved in "
                                     "parallel processes, merges and checks the plan against the whole problem. "
                                     "Prints routed and unassigned orders (with causes), vehicles and trips used, "
                                     "distance, cost and wall time per hub count. Exit code 1 if a plan fails the "
                                     "check.")
    bc.add_argument("--orders", type=int, default=2000, help="orders in the day (default 2000)")
    bc.add_argument("--riders", type=int, default=80, help="riders (default 80)")
    bc.add_argument("--hubs", type=int, nargs="+", default=[1, 5], help="hub counts, one case each (default 1 5)")
    bc.add_argument("--seed", type=int, default=1, help="random seed of the city day (default 1)")
    bc.add_argument("--budget", type=float, default=55.0,
                    help="wall-clock budget per case in seconds, building and checking included (default 55)")
    bc.add_argument("--processes", type=int, default=2, help="parts solved at once (default 2)")
    bc.add_argument("--engine", choices=ENGINES, default="auto", help="engine for the parts (default auto)")
    bc.add_argument("--part-jobs", type=int, default=250, help="target orders per part (default 250)")
    bc.add_argument("--json", action="store_true", help="print one JSON object with the figures")
    bc.set_defaults(func=cmd_bench_scale)
    bd = bsub.add_parser(
        "day", help="the continuous operating day per seed, with learned and with constant speeds, side by side",
        description="Plays `milestream demo --scenario continuous` for each seed twice: with the hub policies of "
                    "the environment (learned travel times) and with {\"default\": {\"learned_speeds\": false}} "
                    "(one constant speed per vehicle), the same day otherwise. Prints the medians over the seeds of "
                    "both and planned_arrival_mae_ratio, the median over seeds of learned / constant planned-arrival "
                    "MAE (target <= 0.7). Each run takes about half an hour at the default 30x. Exit code 1 if a run "
                    "lost events, left orders unsettled or dead-lettered anything.")
    bd.add_argument("--seeds", type=int, default=3, help="seeds to play (default 3)")
    bd.add_argument("--first-seed", type=int, default=7, help="the first seed (default 7)")
    bd.add_argument("--orders", type=int, default=None, help="orders per day (default 1000)")
    bd.add_argument("--riders", type=int, default=None, help="riders per day (default 48)")
    bd.add_argument("--speedup", type=float, default=None, help="simulated seconds per wall second (default 30)")
    bd.add_argument("--timeout", type=float, default=None, help="wall seconds per run (default 3600)")
    bd.add_argument("--verbose", action="store_true", help="each run's progress on stderr")
    bd.add_argument("--json", action="store_true", help="print one JSON object (medians, ratio, every run)")
    bd.set_defaults(func=cmd_bench_day)
    bt = bsub.add_parser("eta", help="ETA accuracy and arrival detection on a simulated day with ground truth",
                         description="Simulates warm-up days and a measured day in one city whose true speeds "
                                     "(by hour, zone and rider) the model is not told, with GPS noise, gaps and "
                                     "resends. Every ping goes through hygiene, geofence and ETA (pure modules, "
                                     "no broker). Prints ETA MAE, p90 absolute error, share within 5 min and band "
                                     "coverage beside a naive baseline (straight line at a constant speed), and "
                                     "arrival precision, recall and median delay at 10, 30 and 50 m noise (RMS "
                                     "radius). Figures only: the exit code does not judge them.")
    bt.add_argument("--seed", type=int, default=7, help="measured day's seed (default 7)")
    bt.add_argument("--riders", type=int, default=10, help="riders (default 10)")
    bt.add_argument("--stops", type=int, default=30, help="stops per rider (default 30)")
    bt.add_argument("--warmup-days", type=int, default=2, help="days the model learns from first (default 2)")
    bt.add_argument("--json", action="store_true", help="print one JSON object with the figures")
    bt.set_defaults(func=cmd_bench_eta)
    bp = bsub.add_parser(
        "pipeline", help="pings per second through one tracking worker, its p99 latency, and the broker's ceiling",
        description="On the embedded broker (or MILESTREAM_KAFKA_BOOTSTRAP), with topics of its own: produces a "
                    "simulated day (shifts, routes, noisy pings), measures consume + decode of those pings alone "
                    "(the ceiling), then the tracking worker on the same backlog (decode, hygiene, geofence, ETA, "
                    "alerts, outputs produced, state checkpointed; from its first batch to the last record, final "
                    "checkpoint included), then p50/p99 latency from a ping's produce time to its outputs while "
                    "another process produces the next day at half that throughput. Figures only.")
    bp.add_argument("--riders", type=int, default=400, help="riders (default 400)")
    bp.add_argument("--stops", type=int, default=3, help="stops per rider (default 3: about 200k pings)")
    bp.add_argument("--seed", type=int, default=1, help="simulated day's seed (default 1)")
    bp.add_argument("--latency-s", type=float, default=20.0, help="seconds of paced pings for latency (default 20)")
    bp.add_argument("--latency-rate", type=float, default=None,
                    help="pings per second of the latency phase (default: half the measured throughput)")
    bp.add_argument("--batch", type=int, default=5000, help="most records per worker batch (default 5000)")
    bp.add_argument("--checkpoint-s", type=float, default=2.0, help="seconds between state checkpoints (default 2)")
    bp.add_argument("--json", action="store_true", help="print one JSON object (pings_per_s, ceiling_per_s, "
                                                          "p99_latency_ms, ...)")
    bp.set_defaults(func=cmd_bench_pipeline)
    bb = bsub.add_parser(
        "broker", help="the broker's CPU and a tailing consumer's latency as a partition's record batches pile up",
        description="On the embedded broker (or MILESTREAM_KAFKA_BOOTSTRAP): per case, a fresh one-partition topic "
                    "filled with RECORDS records in batches of PER_BATCH, then one consumer (the workers' fetch "
                    "settings) tails it while a producer trickles one-record batches. Prints the broker's CPU in "
                    "cores over the window (embedded broker only) and the trickle's produce-to-consume p50/p99, "
                    "with ratios against the first case. Same records in fewer batches is the peer: the embedded "
                    "broker's cost follows batches, so producers of many small events should batch (linger.ms).")
    bb.add_argument("--cases", default="0x1,20000x1,60000x1,60000x10",
                    help="comma-separated RECORDSxPER_BATCH (default 0x1,20000x1,60000x1,60000x10: an empty "
                         "partition first, the base of the ratios)")
    bb.add_argument("--rate", type=float, default=30.0, help="records per second trickled while tailing (default 30)")
    bb.add_argument("--window-s", type=float, default=20.0, help="seconds each case is tailed (default 20)")
    bb.add_argument("--json", action="store_true", help="print one JSON object (cases with broker_cores, p50_ms, ...)")
    bb.set_defaults(func=cmd_bench_broker)
    bk = bsub.add_parser(
        "clients", help="kafka-python beside confluent-kafka on the tracker, produce and projection paths",
        description="On the embedded broker (or MILESTREAM_KAFKA_BOOTSTRAP): a backlog of encoded GpsPing events, "
                    "then per run and client in turn: the tracker path (consumer group, batches, decode, one "
                    "output per record with acks=all, commit), the produce path (acks=all) and the projection "
                    "path (batches, a commit after each; no ClickHouse). Prints the median records/s per client "
                    "and path and the ratio kafka-python / confluent-kafka. Figures only.")
    bk.add_argument("--messages", type=int, default=100_000, help="pings in the backlog (default 100000)")
    bk.add_argument("--runs", type=int, default=3, help="runs per client, interleaved (default 3)")
    bk.add_argument("--seed", type=int, default=1, help="simulated day's seed (default 1)")
    bk.add_argument("--json", action="store_true", help="print one JSON object (median, ratio, runs_per_s, config)")
    bk.set_defaults(func=cmd_bench_clients)
    bh = bsub.add_parser(
        "hostile", help="hostile input on every input topic, then valid traffic: what was dead-lettered, and how",
        description="Starts the whole system as `milestream up` does (topics and a data dir of its own), produces a "
                    "seeded corpus of hostile messages on inbox, gps, riders and routes (garbage, unknown schemas, "
                    "truncated, NaN, far event times, bad keys, control characters, reserved and empty ids, "
                    "oversized, huge routes, illegal transitions, duplicates, ...), then valid traffic, and checks "
                    "that every hostile message is dead-lettered exactly once with the right kind, none reaches "
                    "the ledger, no worker exits and the valid traffic reaches its end state. Exits 1 if not.")
    bh.add_argument("--messages", type=int, default=100_000,
                    help="messages in the corpus (default 100,000; 0: each variant once, a few hundred)")
    bh.add_argument("--seed", type=int, default=1, help="corpus seed (default 1)")
    bh.add_argument("--route-stops", type=lambda s: [int(x) for x in s.split(",")], default=[10_000, 20_000, 28_000],
                    help="stops of the huge routes, comma-separated (default 10000,20000,28000; a tracker that "
                         "takes them builds an N x N matrix: 28k stops is about 25 GB)")
    bh.add_argument("--skip", type=lambda s: [x for x in s.split(",") if x], default=[],
                    help="hostile cases to leave out, comma-separated (e.g. oversized,huge_route: to see past a case "
                         "that stops the system)")
    bh.add_argument("--timeout", type=float, default=None,
                    help="seconds to wait for the dead letters (default 120 + 1 per 50 messages)")
    bh.add_argument("--idle", type=float, default=60.0, help="stop waiting after this many seconds with nothing new "
                                                             "(default 60: a worker may take that long to join its group)")
    bh.add_argument("--json", action="store_true", help="print one JSON object (hostile, dead_lettered, "
                                                          "dead_lettered_twice, wrong_kind, on_ledger, processes_lost, "
                                                          "valid_processed, duplicates, by_case, ...)")
    bh.set_defaults(func=cmd_bench_hostile)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from infra.logs import install

    install(logging.WARNING)  # umask 077, log records and tracebacks masked and escaped
    try:
        return int(args.func(args))
    except ValueError as exc:  # bad settings or arguments: a sentence, not a traceback
        _err(f"milestream: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
