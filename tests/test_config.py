from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_yttl
from yttl.config import config_path, legacy_config_path, load_settings
from yttl.errors import ConfigError


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_precedence_defaults_file_environment_flags(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    _write(config_path(env), 'llm_provider = "groq"\nmax_concurrent_llm = 3\n'
           'sponsorblock = ["sponsor"]\nformat = ["md", "json"]\n')  # fmt: skip
    env["YTTL_MAX_CONCURRENT_LLM"] = "5"
    env["YTTL_VAD"] = "off"
    settings, origins = load_settings({"sequential": True}, environ=env)
    assert settings.llm_provider == "groq" and origins["llm_provider"].endswith("config.toml")
    assert (
        settings.max_concurrent_llm == 5
        and origins["max_concurrent_llm"] == "env YTTL_MAX_CONCURRENT_LLM"
    )
    assert settings.vad is False
    assert settings.format == ("md", "json") and settings.sponsorblock == ("sponsor",)
    assert settings.sequential is True and origins["sequential"] == "command line"
    assert settings.language == "en" and origins["language"] == "default"
    flagged, _ = load_settings({"max_concurrent_llm": 9}, environ=env)
    assert flagged.max_concurrent_llm == 9


def test_the_legacy_json_file_is_read_only_without_toml(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    _write(
        legacy_config_path(env),
        json.dumps(
            {"llm_provider": "openai", "local_whisper_model": "small.en", "sponsorblock": ["intro"]}
        ),
    )
    settings, origins = load_settings({}, environ=env)
    assert settings.local_whisper_model == "small.en" and settings.sponsorblock == ("intro",)
    assert origins["llm_provider"].endswith("yttl.json")
    _write(config_path(env), 'llm_provider = "groq"\n')
    assert load_settings({}, environ=env)[0].llm_provider == "groq"


def test_profiles_from_the_config_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.toml", '[profiles.lab]\nbase_url = "http://127.0.0.1:1/v1"\n'
                  'model = "m"\napi_key_env = "LAB_KEY"\nmax_concurrent = 2\n')  # fmt: skip
    settings, _ = load_settings({"llm_provider": "lab"}, config_file=path, environ={})
    assert settings.profiles["lab"].key_env == "LAB_KEY"
    assert settings.profiles["lab"].max_concurrent == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("llm_provider = ", "not valid"),
        ("max_concurrent_llm = 'many'", "invalid value"),
        ("max_concurrent_llm = 0", "at least 1"),
        ("format = ['pdf']", "unknown output format"),
        ("[profiles.x]\nurl = 'y'", "unknown keys"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path / "c.toml", text)
    with pytest.raises(ConfigError, match=message):
        load_settings({}, config_file=path, environ={})


def test_bad_environment_values_name_the_variable() -> None:
    with pytest.raises(ConfigError, match="YTTL_RETRY_BASE_DELAY"):
        load_settings({}, environ={"YTTL_RETRY_BASE_DELAY": "soon"})


def test_config_show_and_path_commands(tmp_path: Path, clean_env: dict[str, str]) -> None:
    path = Path(clean_env["XDG_CONFIG_HOME"]) / "yttl" / "config.toml"
    _write(path, 'llm_provider = "openai"\n[profiles.lab]\nbase_url = "http://x/v1"\n'
           'model = "m"\napi_key = "sk-secret-in-config-0123"\n')  # fmt: skip
    clean_env["YTTL_MAX_CONCURRENT_LLM"] = "7"
    shown = run_yttl(["config", "show"], clean_env)
    assert shown.returncode == 0, shown.stderr
    lines = dict(line.split(" = ", 1) for line in shown.stdout.splitlines())
    assert lines["llm_provider"] == f'"openai"  # {path}'
    assert lines["max_concurrent_llm"] == "7  # env YTTL_MAX_CONCURRENT_LLM"
    assert lines["language"] == '"en"  # default'
    assert "sk-secret-in-config" not in shown.stdout and "***" in lines["profiles"]
    where = run_yttl(["config", "path"], clean_env)
    assert where.stdout.strip() == str(path)


def test_a_broken_config_file_stops_the_cli_with_exit_2(clean_env: dict[str, str]) -> None:
    path = Path(clean_env["XDG_CONFIG_HOME"]) / "yttl" / "config.toml"
    _write(path, "max_concurrent_llm = [")
    result = run_yttl(["whatever.mp4"], clean_env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("yttl: error: config file")
