"""``schemas.compat``: current schemas stay backward and forward compatible with released ones."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from schemas import compat

SCHEMA_DIR = compat.SCHEMA_DIR




def edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    schema = json.loads(path.read_text())
    change(schema)
    path.write_text(json.dumps(schema, indent=2))


def field_of(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in schema["fields"] if f["name"] == name)


def only_about(problems: list[str], name: str) -> list[str]:
    assert problems, "expected compatibility problems, got none"
    assert all(p.startswith(f"{name}:") for p in problems), problems
    return problems


# ---- the repository as it is ------------------------------------------------------------------


def test_the_repository_schemas_are_compatible_with_every_released_version() -> None:
    assert compat.check_compatibility() == []
    rep = compat.report()
    assert rep.checked == len(list(SCHEMA_DIR.glob("released/v*/*.avsc"))) >= 16
    unreleased = sorted(n.split(":")[0] for n in rep.notes)
    assert unreleased == ["ArrivedAtStop", "AttemptDecided", "BreakEnded", "BreakStarted", "CustomerNotified",
                          "DepartedStop", "TravelTimesLearned", "ZoneEvent"], rep.notes


def test_an_untouched_copy_is_compatible(schema_dir: Path) -> None:
    assert compat.check_compatibility(schema_dir) == []


def test_compatible_evolution_is_accepted(schema_dir: Path) -> None:
    """Adding an optional field, a field with a default, and an enum symbol behind an enum default
    are the changes the contract allows."""

    def evolve(s: dict[str, Any]) -> None:
        s["fields"].append({"name": "altitude_m", "type": ["null", "double"], "default": None})
        s["fields"].append({"name": "source", "type": "string", "default": "app"})

    edit(schema_dir / "GpsPing.avsc", evolve)
    edit(schema_dir / "OrderCreated.avsc", lambda s: field_of(s, "mode")["type"]["symbols"].append("same_day"))
    edit(schema_dir / "OrderCancelled.avsc", lambda s: field_of(s, "reason").update(doc="Free text."))
    assert compat.check_compatibility(schema_dir) == []


# ---- what it must catch -----------------------------------------------------------------------


def test_a_required_field_without_default_is_reported(schema_dir: Path) -> None:
    edit(schema_dir / "GpsPing.avsc", lambda s: s["fields"].append({"name": "floor", "type": "int"}))
    problems = only_about(compat.check_compatibility(schema_dir), "GpsPing")
    assert len(problems) == 1  # old readers skip the new field: still forward compatible
    assert "BACKWARD" in problems[0] and "v1" in problems[0] and "'floor'" in problems[0]


def test_a_changed_field_type_is_reported_both_ways(schema_dir: Path) -> None:
    edit(schema_dir / "GpsPing.avsc", lambda s: field_of(s, "lat").update(type="string"))
    problems = only_about(compat.check_compatibility(schema_dir), "GpsPing")
    assert len(problems) == 2
    assert any("BACKWARD" in p and "'lat'" in p for p in problems)
    assert any("FORWARD" in p and "'lat'" in p for p in problems)


def test_a_changed_type_in_a_nested_record_names_the_field_path(schema_dir: Path) -> None:
    edit(schema_dir / "OrderCreated.avsc", lambda s: field_of(field_of(s, "drop")["type"], "lat").update(type="string"))
    problems = only_about(compat.check_compatibility(schema_dir), "OrderCreated")
    assert any("'drop.lat'" in p for p in problems), problems
    assert any("'pickup.lat'" in p for p in problems), problems  # the named Location is shared


def test_a_removed_enum_symbol_is_reported(schema_dir: Path) -> None:
    edit(schema_dir / "RiderShiftStarted.avsc", lambda s: field_of(s, "vehicle_type")["type"]["symbols"].remove("van"))
    problems = only_about(compat.check_compatibility(schema_dir), "RiderShiftStarted")
    assert len(problems) == 1  # new readers of old 'van' data fail; old readers of new data are fine
    assert "BACKWARD" in problems[0] and "'vehicle_type'" in problems[0] and "van" in problems[0]


def test_a_removed_symbol_of_an_enum_nested_in_a_union_is_reported(schema_dir: Path) -> None:
    def drop_failed(s: dict[str, Any]) -> None:
        enum_schema = field_of(s, "from_status")["type"][1]
        enum_schema["symbols"].remove("failed")

    edit(schema_dir / "StatusChanged.avsc", drop_failed)
    problems = only_about(compat.check_compatibility(schema_dir), "StatusChanged")
    assert any("BACKWARD" in p and "failed" in p for p in problems), problems


def test_a_removed_field_without_default_is_reported_as_forward_incompatible(schema_dir: Path) -> None:
    edit(schema_dir / "PodRejected.avsc", lambda s: s["fields"].remove(field_of(s, "attempts_left")))
    problems = only_about(compat.check_compatibility(schema_dir), "PodRejected")
    assert len(problems) == 1
    assert "FORWARD" in problems[0] and "'attempts_left'" in problems[0]


def test_a_renamed_record_is_reported(schema_dir: Path) -> None:
    edit(schema_dir / "EtaUpdated.avsc", lambda s: s.update(name="EtaChanged"))
    problems = only_about(compat.check_compatibility(schema_dir), "EtaUpdated")
    assert any("EtaChanged" in p for p in problems), problems


def test_a_changed_logical_type_is_reported(schema_dir: Path) -> None:
    edit(schema_dir / "EtaUpdated.avsc", lambda s: field_of(s, "eta_p50")["type"].update(logicalType="timestamp-micros"))
    problems = only_about(compat.check_compatibility(schema_dir), "EtaUpdated")
    assert len(problems) == 1 and "eta_p50" in problems[0] and "timestamp-micros" in problems[0]


def test_a_removed_event_type_is_reported(schema_dir: Path) -> None:
    (schema_dir / "PodAccepted.avsc").unlink()
    problems = only_about(compat.check_compatibility(schema_dir), "PodAccepted")
    assert len(problems) == 1 and "v1" in problems[0] and "removing an event type" in problems[0]


def test_a_new_unreleased_event_type_is_only_a_note(schema_dir: Path) -> None:
    (schema_dir / "ParcelWeighed.avsc").write_text(json.dumps({
        "type": "record", "name": "ParcelWeighed", "namespace": "milestream.events",
        "fields": [{"name": "event_id", "type": "string"}],
    }))
    rep = compat.report(schema_dir)
    assert rep.problems == []
    assert [n for n in rep.notes if n.startswith("ParcelWeighed:")]


def test_every_released_version_is_checked(schema_dir: Path) -> None:
    """A v2 release is checked too: here v2 had a field the current schema dropped without default."""
    v2 = schema_dir / "released" / "v2"
    v2.mkdir()
    shutil.copy(schema_dir / "OrderAssigned.avsc", v2 / "OrderAssigned.avsc")
    edit(v2 / "OrderAssigned.avsc", lambda s: s["fields"].append({"name": "wave", "type": "int"}))
    problems = only_about(compat.check_compatibility(schema_dir), "OrderAssigned")
    assert len(problems) == 1 and "FORWARD" in problems[0] and "v2" in problems[0] and "'wave'" in problems[0]


def test_an_unparsable_schema_is_a_problem_not_a_crash(schema_dir: Path) -> None:
    (schema_dir / "GpsPing.avsc").write_text('{"type": "record", "name": "GpsPing", "fields": [')
    problems = only_about(compat.check_compatibility(schema_dir), "GpsPing")
    assert "not a valid Avro schema" in problems[0]


# ---- the command ------------------------------------------------------------------------------


def test_main_prints_ok_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert compat.main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith("OK") and all(line.startswith("note: ") for line in lines[:-1])


def test_main_prints_problems_and_exits_1(schema_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (schema_dir / "PodAccepted.avsc").unlink()
    assert compat.main([str(schema_dir)]) == 1
    out = capsys.readouterr().out
    assert "PodAccepted" in out and "OK" not in out
