"""Settings come from MILESTREAM_* once, typed and validated, with secrets masked when shown."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from infra.settings import Settings


def env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"MILESTREAM_DATA_DIR": str(tmp_path), **{f"MILESTREAM_{k.upper()}": v for k, v in values.items()}}


def test_from_env_parses_ints_floats_and_strings(tmp_path: Path) -> None:
    s = Settings.from_env(env(tmp_path, kafka_partitions="6", otp_ttl_s="600", dispatch_time_limit_s="1.5",
                              projection_flush_s="2", kafka_bootstrap="k1:9092,k2:9092", log_level="DEBUG"))
    assert s.kafka_partitions == 6 and type(s.kafka_partitions) is int
    assert s.otp_ttl_s == 600
    assert s.dispatch_time_limit_s == 1.5 and type(s.dispatch_time_limit_s) is float
    assert s.projection_flush_s == 2.0 and type(s.projection_flush_s) is float
    assert s.kafka_bootstrap == "k1:9092,k2:9092"
    assert s.log_level == "DEBUG"
    assert s.data_dir == str(tmp_path)


def test_unset_variables_keep_their_defaults(tmp_path: Path) -> None:
    s = Settings.from_env(env(tmp_path))
    defaults = Settings(data_dir=str(tmp_path))
    assert s == defaults
    assert (s.kafka_partitions, s.otp_max_attempts, s.topic_prefix) == (3, 3, "milestream.")


def test_from_env_ignores_variables_without_the_prefix(tmp_path: Path) -> None:
    s = Settings.from_env({**env(tmp_path), "KAFKA_PARTITIONS": "9", "milestream_kafka_partitions": "9"})
    assert s.kafka_partitions == 3


def test_from_env_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MILESTREAM_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("MILESTREAM_KAFKA_HEARTBEAT_S", "0.25")
    monkeypatch.setenv("MILESTREAM_DATA_DIR", str(tmp_path))
    s = Settings.from_env()
    assert s.log_level == "WARNING" and s.kafka_heartbeat_s == 0.25


def test_overrides_win_over_the_environment(tmp_path: Path) -> None:
    s = Settings.from_env(env(tmp_path, kafka_partitions="6"), kafka_partitions=12)
    assert s.kafka_partitions == 12


@pytest.mark.parametrize(("name", "raw"), [
    ("kafka_partitions", "six"), ("kafka_partitions", "3.5"), ("otp_max_attempts", ""),
    ("dispatch_time_limit_s", "fast"), ("projection_batch_size", "1e3"),
])
def test_bad_value_is_reported_naming_the_variable(tmp_path: Path, name: str, raw: str) -> None:
    var = f"MILESTREAM_{name.upper()}"
    with pytest.raises(ValueError, match=var) as info:
        Settings.from_env(env(tmp_path, **{name: raw}))
    assert repr(raw) in str(info.value)


@pytest.mark.parametrize(("name", "raw"), [("kafka_partitions", "0"), ("otp_max_attempts", "0"), ("otp_max_attempts", "-1")])
def test_out_of_range_values_are_rejected_naming_the_variable(tmp_path: Path, name: str, raw: str) -> None:
    with pytest.raises(ValueError, match=f"MILESTREAM_{name.upper()}"):
        Settings.from_env(env(tmp_path, **{name: raw}))


@pytest.mark.parametrize("dsn", ["mysql://h:3306/db", "clickhouse://h", "localhost:8123", "chdb:/x", "HTTP//h"])
def test_invalid_clickhouse_dsn_scheme_is_rejected(tmp_path: Path, dsn: str) -> None:
    with pytest.raises(ValueError, match="MILESTREAM_CLICKHOUSE_DSN"):
        Settings.from_env(env(tmp_path, clickhouse_dsn=dsn))


@pytest.mark.parametrize(("dsn", "embedded"), [
    ("chdb:///var/lib/ch", True), ("http://u:p@ch:8123", False), ("https://ch.example.com:8443", False),
])
def test_valid_clickhouse_dsn_is_kept(tmp_path: Path, dsn: str, embedded: bool) -> None:
    s = Settings.from_env(env(tmp_path, clickhouse_dsn=dsn))
    assert s.resolved_clickhouse_dsn == dsn
    assert s.embedded_clickhouse is embedded


def test_default_clickhouse_dsn_is_embedded_under_the_data_dir(tmp_path: Path) -> None:
    s = Settings.from_env(env(tmp_path))
    assert s.clickhouse_dsn == ""
    assert s.resolved_clickhouse_dsn == f"chdb://{tmp_path.resolve() / 'clickhouse'}"
    assert s.embedded_clickhouse is True


def test_default_data_dir_follows_xdg_data_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    s = Settings.from_env({})
    assert s.data_dir == str(tmp_path / "milestream")
    assert s.resolved_clickhouse_dsn == f"chdb://{(tmp_path / 'milestream').resolve() / 'clickhouse'}"


def test_describe_masks_the_otp_key_and_the_sasl_password(tmp_path: Path) -> None:
    s = Settings.from_env(env(tmp_path, otp_key="super-secret-otp-key", kafka_sasl_password="hunter2-sasl",
                              kafka_sasl_username="alice"))
    described = {var: (value, default, doc) for var, value, default, doc in s.describe()}
    assert described["MILESTREAM_OTP_KEY"][0] == "****"
    assert described["MILESTREAM_KAFKA_SASL_PASSWORD"][0] == "****"
    assert described["MILESTREAM_KAFKA_SASL_USERNAME"][0] == "alice"
    text = repr(s.describe())
    assert "super-secret-otp-key" not in text and "hunter2-sasl" not in text


def test_describe_shows_empty_secrets_as_empty(tmp_path: Path) -> None:
    described = {var: value for var, value, _, _ in Settings.from_env(env(tmp_path)).describe()}
    assert described["MILESTREAM_OTP_KEY"] == ""


def test_describe_lists_every_setting_with_its_default_and_a_doc(tmp_path: Path) -> None:
    s = Settings.from_env(env(tmp_path, kafka_partitions="7"))
    rows = s.describe()
    assert [r[0] for r in rows] == ["MILESTREAM_" + f.name.upper() for f in dataclasses.fields(Settings)]
    by_var = {r[0]: r for r in rows}
    assert by_var["MILESTREAM_KAFKA_PARTITIONS"][1:3] == ("7", "3")
    assert all(r[3] for r in rows)


def test_to_env_round_trips_through_from_env(tmp_path: Path) -> None:
    s = Settings.from_env(env(tmp_path, kafka_partitions="5", dispatch_batch_window_s="0.75", otp_key="k",
                              clickhouse_dsn="http://ch:8123"))
    assert Settings.from_env(s.to_env()) == s


def test_settings_are_frozen(tmp_path: Path) -> None:
    s = Settings.from_env(env(tmp_path))
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.kafka_partitions = 9  # type: ignore[misc]


def test_with_otp_key_generates_a_random_key_only_when_none_is_set(tmp_path: Path) -> None:
    s = Settings.from_env(env(tmp_path))
    a, b = s.with_otp_key(), s.with_otp_key()
    assert a.otp_key and b.otp_key and a.otp_key != b.otp_key
    keyed = Settings.from_env(env(tmp_path, otp_key="fixed"))
    assert keyed.with_otp_key() is keyed


def test_topic_names_use_the_prefix(tmp_path: Path) -> None:
    assert Settings.from_env(env(tmp_path, topic_prefix="it1.")).topic("orders") == "it1.orders"
