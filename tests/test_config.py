"""Configuration: YAML, environment overrides, and errors that name the key and the reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from infersight.config import ConfigError, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "infersight.yaml"
    path.write_text(text)
    return path


def test_defaults_run_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INFERSIGHT_CONFIG", raising=False)
    settings = load_settings()
    assert settings.kafka.bootstrap_servers == "localhost:9092"
    assert settings.store.url == "sqlite:///infersight.db"
    assert settings.kafka.topics.payloads == "infersight.payloads"
    assert settings.kafka.topics.detections == "infersight.detections"
    assert settings.kafka.topics.deadletter == "infersight.deadletter"


def test_yaml_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(
        tmp_path, "kafka:\n  partitions: 12\n  topics:\n    payloads: prod.payloads\ningest:\n  port: 9000\n"
    )
    monkeypatch.setenv("INFERSIGHT_INGEST__PORT", "9100")
    monkeypatch.setenv("INFERSIGHT_INGEST__AUTH_TOKENS", '["a", "b"]')
    settings = load_settings(path)
    assert settings.kafka.partitions == 12
    assert settings.kafka.topics.payloads == "prod.payloads"
    assert settings.kafka.topics.deadletter == "infersight.deadletter"
    assert settings.ingest.port == 9100
    assert [token.get_secret_value() for token in settings.ingest.auth_tokens] == ["a", "b"]


def test_config_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERSIGHT_CONFIG", str(write(tmp_path, "ingest:\n  max_body_bytes: 1024\n")))
    assert load_settings().ingest.max_body_bytes == 1024


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kafka:\n  partitons: 3\n", "kafka.partitons: unknown key"),
        ("kafka:\n  partitions: 0\n", "kafka.partitions: Input should be greater than or equal to 1"),
        ("kafka:\n  bootstrap_servers: nohost\n", "kafka.bootstrap_servers: Value error, expected host:port"),
        ("ingest:\n  port: many\n", "ingest.port: Input should be a valid integer"),
        ("- a\n- b\n", "the top level must be a mapping"),
        ("kafka: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_config_names_key_and_reason(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"infersight\.yaml") as error:
        load_settings(write(tmp_path, text))
    assert message in str(error.value)


def test_a_model_entry_may_name_its_kserve_component(tmp_path: Path) -> None:
    text = (
        "models:\n"
        "  - {namespace: prod, inferenceservice: iris}\n"
        "  - namespace: prod\n"
        "    inferenceservice: iris\n"
        "    component: transformer\n"
        "    endpoint: canary\n"
        "    redact_attributes: [metadata]\n"
    )
    every, transformer = load_settings(write(tmp_path, text)).models
    assert (every.component, every.endpoint) == (None, None)
    assert (transformer.component, transformer.endpoint) == ("transformer", "canary")
    with pytest.raises(ConfigError, match=r"models\.0\.redact_attributes: .*component cannot be redacted"):
        load_settings(
            write(
                tmp_path, "models:\n  - {namespace: a, inferenceservice: b, redact_attributes: [component]}\n"
            )
        )


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        load_settings(tmp_path / "absent.yaml")


@pytest.mark.parametrize("where", ["before the command", "after the command"])
def test_cli_prints_one_line_and_fails(tmp_path: Path, where: str) -> None:
    path = write(tmp_path, "kafka:\n  partitions: -1\n")
    option = ["--config", str(path)]
    command = ["kafka", "status"]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "infersight",
            *(option + command if where == "before the command" else command + option),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: invalid configuration in")
    assert "kafka.partitions" in lines[0]
    assert "Traceback" not in result.stderr


def test_the_configuration_may_follow_the_command() -> None:
    from infersight.cli.app import config_first

    assert config_first(["up", "--config", "a.yaml"]) == ["--config", "a.yaml", "up"]
    assert config_first(["kafka", "start", "-c", "a.yaml"]) == ["-c", "a.yaml", "kafka", "start"]
    assert config_first(["up", "--config=a.yaml"]) == ["--config=a.yaml", "up"]
    assert config_first(["replay", "--", "--config", "x"]) == ["replay", "--", "--config", "x"]
    assert config_first(["--config", "a.yaml", "up"]) == ["--config", "a.yaml", "up"]
