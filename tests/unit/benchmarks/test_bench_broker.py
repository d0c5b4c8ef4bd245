"""`bench broker`: the cases it is given, the broker CPU it reads, and the table it prints."""

from __future__ import annotations

import pytest

from benchmarks import broker as bench_broker
from benchmarks.broker import Case


def test_cases_are_records_by_records_per_batch_and_the_last_batch_may_be_short() -> None:
    cases = bench_broker.parse_cases(" 0x1, 60000x1 ,25X10,")
    assert cases == [Case(0, 1), Case(60_000, 1), Case(25, 10)]
    assert [c.batches for c in cases] == [0, 60_000, 3]


@pytest.mark.parametrize("text", ["", "60000", "60000x0", "x10", "-5x1", "60k x1", "1x2x3"])
def test_a_malformed_case_is_refused_with_the_expected_form(text: str) -> None:
    with pytest.raises(ValueError, match="RECORDSxPER_BATCH|no cases"):
        bench_broker.parse_cases(text)


def test_cpu_is_user_plus_system_ticks_even_when_the_command_name_holds_spaces_and_parentheses() -> None:
    # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
    stat = "4242 (tansu (v0) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 1000"
    assert bench_broker.cpu_seconds(stat, 100.0) == pytest.approx(3.0)


def test_the_report_gives_ratios_against_the_first_case_and_says_when_cpu_was_not_measured() -> None:
    result = {"rate": 30.0, "window_s": 20.0, "fetch_wait_ms": 500, "cpu_measured": False, "cases": [
        {"records": 0, "per_batch": 1, "batches": 0, "broker_cores": None, "cores_ratio": None, "p50_ms": 4.0,
         "p50_ratio": 1.0, "p99_ms": 9.0, "sent": 600, "received": 600},
        {"records": 60_000, "per_batch": 1, "batches": 60_000, "broker_cores": None, "cores_ratio": None,
         "p50_ms": 410.0, "p50_ratio": 102.5, "p99_ms": 900.0, "sent": 600, "received": 598}]}
    lines = bench_broker.report(result)
    assert "60,000" in lines[3] and "102.5" in lines[3] and "598/600" in lines[3]
    assert lines[-1].startswith("broker CPU is measured on the embedded broker only")
