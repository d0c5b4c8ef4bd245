"""MILESTREAM_HUB_POLICIES: inline JSON or a file, parsed at start-up into each hub's policy; a bad
document stops the start naming the variable (and file) and the field at fault."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.settings import Settings
from schemas.events import ReattemptMode
from streams.domain.hub_policy import HubPolicies, HubPolicy, ReattemptPolicy

DOCUMENT = {"default": {"reattempt": {"max_attempts": 3}, "horizon_min": 90},
            "hubs": {"hub-2": {"reattempt": {"mode": "next_day"}, "even_workload": True, "hold_min": 15,
                               "hold_full_drops": 6}}}


def env(tmp_path: Path, policies: str | None = None) -> dict[str, str]:
    values = {"MILESTREAM_DATA_DIR": str(tmp_path)}
    if policies is not None:
        values["MILESTREAM_HUB_POLICIES"] = policies
    return values


def test_unset_means_the_default_policy_for_every_hub(tmp_path: Path) -> None:
    s = Settings.from_env(env(tmp_path))
    assert s.hub_policies == "" and s.parsed_hub_policies() == HubPolicies()
    assert s.parsed_hub_policies().of("any-hub") == HubPolicy()


def test_inline_json_gives_defaults_and_per_hub_overrides_field_by_field(tmp_path: Path) -> None:
    policies = Settings.from_env(env(tmp_path, json.dumps(DOCUMENT))).parsed_hub_policies()
    assert policies.of("hub-1") == HubPolicy(reattempt=ReattemptPolicy(max_attempts=3), horizon_min=90.0)
    hub_2 = policies.of("hub-2")
    assert (hub_2.reattempt.max_attempts, hub_2.reattempt.mode) == (3, ReattemptMode.NEXT_DAY)
    assert (hub_2.horizon_min, hub_2.even_workload) == (90.0, True)
    assert (hub_2.hold_min, hub_2.hold_full_drops, policies.of("hub-1").hold_min) == (15.0, 6, 0.0)


def test_a_path_names_a_json_file(tmp_path: Path) -> None:
    path = tmp_path / "hubs.json"
    path.write_text(json.dumps(DOCUMENT))
    s = Settings.from_env(env(tmp_path, str(path)))
    assert s.parsed_hub_policies() == Settings.from_env(env(tmp_path, json.dumps(DOCUMENT))).parsed_hub_policies()
    assert Settings.from_env(s.to_env()).parsed_hub_policies().of("hub-2").even_workload


@pytest.mark.parametrize(("document", "words"), [
    ('{"default": {"reattempt": {"max_attempts": 0}}}', "reattempt.max_attempts=0 must be >= 1"),
    ('{"default": {"reattempt": {"mode": "tomorrow"}}}', "default.reattempt.mode='tomorrow' is not one of"),
    ('{"hubs": {"hub-2": {"horizon": 30}}}', "hubs.hub-2: unknown field(s) horizon"),
    ('{"hubs": {"hub-2": {"even_workload": "yes"}}}', "hubs.hub-2.even_workload must be true or false"),
    ('{"hubs": {"hub-2": {"horizon_min": 0}}}', "horizon_min=0.0 must be > 0"),
    ('{"defaults": {}}', "unknown field(s) defaults"),
    ('{"default": {"reattempt": {"max_attempts": 2.5}}}', "max_attempts must be a whole number"),
    ('{"default": ', "is not JSON"),
    ('{"default": {"hold_min": -5}}', "hold_min=-5.0 must be finite and >= 0"),
    ('{"default": {"hold_full_drops": 2.5}}', "default.hold_full_drops must be a whole number"),
    ('{"hubs": {"hub-2": {"hold_full_drops": 0}}}', "hold_full_drops=0 must be >= 1"),
])
def test_a_bad_document_stops_the_start_naming_the_variable_and_the_field(tmp_path: Path, document: str,
                                                                          words: str) -> None:
    with pytest.raises(ValueError, match="MILESTREAM_HUB_POLICIES") as refused:
        Settings.from_env(env(tmp_path, document))
    assert words in str(refused.value)


def test_a_file_that_is_missing_or_bad_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.json"
    with pytest.raises(ValueError, match=r"MILESTREAM_HUB_POLICIES \(.*nowhere.json\): not inline JSON"):
        Settings.from_env(env(tmp_path, str(missing)))
    bad = tmp_path / "bad.json"
    bad.write_text('{"hubs": {"hub-9": {"reattempt": {"same_day_after_min": -5}}}}')
    with pytest.raises(ValueError, match=r"MILESTREAM_HUB_POLICIES \(.*bad.json\): .*same_day_after_min=-5.0"):
        Settings.from_env(env(tmp_path, str(bad)))


def test_the_setting_is_described_with_the_others(tmp_path: Path) -> None:
    rows = {var: (value, default, doc) for var, value, default, doc in
            Settings.from_env(env(tmp_path, '{"default": {}}')).describe()}
    value, default, doc = rows["MILESTREAM_HUB_POLICIES"]
    assert (value, default) == ('{"default": {}}', "")
    assert "reattempt" in doc and "same_day" in doc
