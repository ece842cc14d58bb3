"""Settings: defaults load, nested ``__`` overrides work, and an unknown or invalid ``TICKPIPE_*``
variable stops the real ``tickpipe`` CLI at start with a message naming it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from infra.settings import ENV_PREFIX, KafkaSettings, Settings, SettingsError, load_settings

TICKPIPE = Path(sys.executable).with_name("tickpipe")


def _clean_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(ENV_PREFIX)}
    env.update(overrides)
    return env


def _run_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TICKPIPE), *args],
        check=False,
        env=_clean_env(**env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in list(os.environ):
        if key.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(key)
    return monkeypatch


@pytest.mark.parametrize(
    "name",
    [
        "TICKPIPE_KAFKA__BOOTSTRAPS",
        "TICKPIPE_NO_SUCH_THING",
        "TICKPIPE_SINK__BATCH_ROWS",
        "tickpipe_kafka__x",
    ],
)
def test_unknown_setting_stops_the_cli_at_start_naming_it(tmp_path: Path, name: str) -> None:
    # Act
    result = _run_cli(tmp_path, "settings", **{name: "1"})
    # Assert: non-zero exit, the variable named, and the command body never ran (no table printed)
    assert result.returncode != 0
    assert "unknown setting" in result.stderr and name in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TICKPIPE_KAFKA__PARTITIONS", "zero"),
        ("TICKPIPE_KAFKA__PARTITIONS", "0"),
        ("TICKPIPE_FEED__CONNECTIONS", "-1"),
        ("TICKPIPE_WAREHOUSE__PORT", "http"),
    ],
)
def test_invalid_value_stops_the_cli_at_start_naming_the_setting(
    tmp_path: Path, name: str, value: str
) -> None:
    result = _run_cli(tmp_path, "settings", **{name: value})
    assert result.returncode != 0
    assert "invalid setting" in result.stderr and name in result.stderr
    assert result.stdout == ""


def test_cli_starts_with_defaults_and_with_a_valid_nested_override(tmp_path: Path) -> None:
    assert _run_cli(tmp_path, "settings").returncode == 0
    result = _run_cli(tmp_path, "settings", "--markdown", TICKPIPE_KAFKA__PARTITIONS="8")
    assert result.returncode == 0, result.stderr
    assert "TICKPIPE_KAFKA__PARTITIONS" in result.stdout


def test_defaults_load(clean_environ: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings == Settings()
    assert settings.kafka.bootstrap == "127.0.0.1:9092"
    assert settings.kafka.schema_registry_url is None  # single-object encoding by default
    assert settings.warehouse.url == "http://127.0.0.1:8123"


def test_nested_override_changes_only_that_field(clean_environ: pytest.MonkeyPatch) -> None:
    # Arrange
    clean_environ.setenv("TICKPIPE_KAFKA__BOOTSTRAP", "10.0.0.5:9093")
    clean_environ.setenv("TICKPIPE_KAFKA__SCHEMA_REGISTRY_URL", "http://registry:8081")
    clean_environ.setenv("TICKPIPE_WAREHOUSE__PORT", "18123")
    clean_environ.setenv("TICKPIPE_LOG_LEVEL", "DEBUG")
    # Act
    settings = load_settings()
    # Assert
    assert settings.kafka.bootstrap == "10.0.0.5:9093"
    assert settings.kafka.schema_registry_url == "http://registry:8081"
    assert settings.warehouse.port == 18123
    assert settings.log_level == "DEBUG"
    assert settings.kafka.partitions == KafkaSettings().partitions
    assert settings.broker == Settings().broker


def test_load_settings_raises_settings_error_naming_the_variable(clean_environ: pytest.MonkeyPatch) -> None:
    clean_environ.setenv("TICKPIPE_SINK__BATCH_MAX_ROWS", "lots")
    with pytest.raises(SettingsError, match="TICKPIPE_SINK__BATCH_MAX_ROWS"):
        load_settings()


def test_settings_are_frozen() -> None:
    with pytest.raises(ValidationError):
        Settings().kafka.partitions = 3  # type: ignore[misc]


def test_every_setting_has_a_description() -> None:
    # sections (kafka, broker, ...) are groupings; every leaf setting needs its description
    missing = []
    for name, field in Settings.model_fields.items():
        section = field.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            missing += [f"{name}.{sub}" for sub, f in section.model_fields.items() if not f.description]
        elif not field.description:
            missing.append(name)
    assert missing == []


def test_design_names_for_clickhouse_and_registry_urls_override_the_nested_settings(
    clean_environ: pytest.MonkeyPatch,
) -> None:
    # Arrange
    clean_environ.setenv("TICKPIPE_CLICKHOUSE_URL", "http://clickhouse:8123")
    clean_environ.setenv("TICKPIPE_SCHEMA_REGISTRY_URL", "http://schema-registry:8081")
    clean_environ.setenv("TICKPIPE_WAREHOUSE__DATABASE", "archive")

    # Act
    settings = load_settings()

    # Assert
    assert settings.warehouse.url == "http://clickhouse:8123"
    assert settings.warehouse.database == "archive"
    assert settings.kafka.schema_registry_url == "http://schema-registry:8081"
    assert settings.kafka.bootstrap == KafkaSettings().bootstrap
