"""Settings come from MILESTREAM_* once, typed and validated, with secrets masked when shown."""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

import pytest

from infra.settings import Settings

OTP_KEY = "5e" * 32  # 32 bytes as hex: the form MILESTREAM_OTP_KEY takes


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
    s = Settings.from_env(env(tmp_path, otp_key=OTP_KEY, kafka_sasl_password="hunter2-sasl",
                              kafka_sasl_username="alice"))
    described = {var: (value, default, doc) for var, value, default, doc in s.describe()}
    assert described["MILESTREAM_OTP_KEY"][0] == "****"
    assert described["MILESTREAM_KAFKA_SASL_PASSWORD"][0] == "****"
    assert described["MILESTREAM_KAFKA_SASL_USERNAME"][0] == "alice"
    text = repr(s.describe())
    assert OTP_KEY not in text and "hunter2-sasl" not in text


def test_every_url_setting_is_shown_with_its_password_masked(tmp_path: Path) -> None:
    s = Settings.from_env(env(tmp_path, clickhouse_dsn="https://reporter:ch-pass-1@ch.example:8443/db",
                              schema_registry_url="https://regkey:reg-pass-2@registry.example",
                              kafka_bootstrap="broker.example:9093"))
    shown = "\n".join(f"{var}={value} ({default})" for var, value, default, _ in s.describe())
    shown += s.display("resolved_clickhouse_dsn") + repr(s)
    assert "ch-pass-1" not in shown and "reg-pass-2" not in shown
    assert "https://reporter:****@ch.example:8443/db" in shown
    assert "https://regkey:****@registry.example" in shown
    assert s.display("kafka_bootstrap") == "broker.example:9093"


def test_repr_of_settings_masks_secrets(tmp_path: Path) -> None:
    s = Settings.from_env(env(tmp_path, otp_key=OTP_KEY, kafka_sasl_password="hunter2-sasl"))
    assert OTP_KEY not in repr(s) and "hunter2-sasl" not in repr(s) and "kafka_sasl_password='****'" in repr(s)


def test_a_bad_clickhouse_dsn_is_reported_without_its_password(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="MILESTREAM_CLICKHOUSE_DSN") as info:
        Settings.from_env(env(tmp_path, clickhouse_dsn="tcp://u:tcp-pass-3@ch.example:9000"))
    assert "tcp-pass-3" not in str(info.value)


@pytest.mark.parametrize("key", ["super-secret-otp-key", "ab" * 16, "not base64 at all!"])
def test_a_weak_otp_key_is_refused_at_start_naming_the_variable(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="MILESTREAM_OTP_KEY") as info:
        Settings.from_env(env(tmp_path, otp_key=key))
    assert "secrets.token_hex(32)" in str(info.value) and key not in str(info.value)


def test_require_otp_key_names_the_variable_and_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="MILESTREAM_OTP_KEY is not set") as info:
        Settings.from_env(env(tmp_path)).require_otp_key()
    assert 'python -c "import secrets; print(secrets.token_hex(32))"' in str(info.value)
    keyed = Settings.from_env(env(tmp_path, otp_key=OTP_KEY))
    assert keyed.require_otp_key() is keyed


def test_registry_timeout_must_stay_below_the_session_timeout(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="MILESTREAM_SCHEMA_REGISTRY_TIMEOUT_S"):
        Settings.from_env(env(tmp_path, schema_registry_url="http://registry.example", schema_registry_timeout_s="6",
                              kafka_session_timeout_s="6"))
    assert Settings.from_env(env(tmp_path, kafka_session_timeout_s="1.5")).kafka_session_timeout_s == 1.5  # no registry
    s = Settings.from_env(env(tmp_path, schema_registry_url="http://u:p@registry.example", schema_registry_timeout_s="1.5",
                              schema_registry_miss_ttl_s="30"))
    client = s.registry_client()
    assert (client.timeout_s, client.miss_ttl_s) == (1.5, 30.0)
    assert "p@" not in client.url
    assert Settings.from_env(env(tmp_path)).registry_client() is None


def test_make_data_dir_is_private_to_the_owner_even_if_it_existed_open(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "logs").mkdir(parents=True, mode=0o755)
    data.chmod(0o755)
    Settings.from_env(env(data)).make_data_dir()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "logs").stat().st_mode) == 0o700
    fresh = tmp_path / "fresh" / "milestream"
    Settings.from_env(env(fresh)).make_data_dir()
    assert stat.S_IMODE(fresh.stat().st_mode) == stat.S_IMODE((fresh / "logs").stat().st_mode) == 0o700


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
    s = Settings.from_env(env(tmp_path, kafka_partitions="5", dispatch_batch_window_s="0.75", otp_key=OTP_KEY,
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
    assert len(bytes.fromhex(a.otp_key)) == 32
    keyed = Settings.from_env(env(tmp_path, otp_key=OTP_KEY))
    assert keyed.with_otp_key() is keyed


def test_topic_names_use_the_prefix(tmp_path: Path) -> None:
    assert Settings.from_env(env(tmp_path, topic_prefix="it1.")).topic("orders") == "it1.orders"
