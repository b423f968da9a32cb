from __future__ import annotations

import json
import re
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import run_yttl
from tests.support.server import LoopbackServer
from tests.support.synthetic import episode
from yttl.config import config_path, legacy_config_path, load_settings
from yttl.errors import ConfigError


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_precedence_defaults_file_environment_flags(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    _write(
        config_path(env),
        'llm_provider = "groq"\nmax_concurrent_llm = 3\n'
        'sponsorblock = ["sponsor"]\nformat = ["md", "json"]\n',
    )
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
    path = _write(
        tmp_path / "c.toml",
        '[profiles.lab]\nbase_url = "http://127.0.0.1:1/v1"\n'
        'model = "m"\napi_key_env = "LAB_KEY"\nmax_concurrent = 2\n',
    )
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
    _write(
        path,
        'llm_provider = "openai"\n[profiles.lab]\nbase_url = "http://x/v1"\n'
        'model = "m"\napi_key = "sk-secret-in-config-0123"\n',
    )
    clean_env["YTTL_MAX_CONCURRENT_LLM"] = "7"
    shown = run_yttl(["config", "show"], clean_env)
    assert shown.returncode == 0, shown.stderr
    parsed = tomllib.loads(shown.stdout)  # what it prints is TOML a config file can take
    assert parsed["llm_provider"] == "openai" and parsed["max_concurrent_llm"] == 7
    assert parsed["max_output_tokens"] == 512  # a setting about tokens, not a secret
    assert parsed["profiles"]["lab"] == {"base_url": "http://x/v1", "model": "m", "api_key": "***"}
    assert "openai_model" not in parsed and "# openai_model =" in shown.stdout  # unset
    lines = dict(line.split(" = ", 1) for line in shown.stdout.splitlines() if " = " in line)
    assert lines["llm_provider"] == f'"openai"  # {path}'
    assert lines["max_concurrent_llm"] == "7  # env YTTL_MAX_CONCURRENT_LLM"
    assert lines["language"] == '"en"  # default'
    assert "sk-secret-in-config" not in shown.stdout
    where = run_yttl(["config", "path"], clean_env)
    assert where.stdout.strip() == str(path)


def test_a_broken_config_file_stops_the_cli_with_exit_2(clean_env: dict[str, str]) -> None:
    path = Path(clean_env["XDG_CONFIG_HOME"]) / "yttl" / "config.toml"
    _write(path, "max_concurrent_llm = [")
    result = run_yttl(["whatever.mp4"], clean_env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("yttl: error: config file")


def test_a_key_from_the_config_file_never_reaches_logs_or_outputs(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    secret = "sk-config-file-secret-0123456789"
    path = Path(clean_env["XDG_CONFIG_HOME"]) / "yttl" / "config.toml"
    _write(
        path,
        f'[profiles.lab]\nbase_url = "{server.openai_base_url}"\nmodel = "m"\n'
        f'api_key = "{secret}"\n',
    )
    echo = json.dumps({"error": {"message": f"bad request from key {secret}"}}).encode()
    server.state.fault = lambda call: (400, {}, echo)  # a provider that quotes the key back
    info = episode(server, tmp_path)
    result = run_yttl(
        [
            str(info),
            "-lp",
            "lab",
            "-o",
            str(tmp_path / "o"),
            "-f",
            "json",
            "-f",
            "md",
            "--no-open",
            "-v",
        ],
        clean_env,
    )
    assert result.returncode == 1, result.stderr  # every section refused: a failure
    written = "".join(p.read_text() for p in (tmp_path / "o").iterdir())
    assert "request refused" in written and "***" in written
    assert secret not in written + result.stderr + result.stdout


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--chunk-seconds", "-5"], {}, "--chunk-seconds must be above 0, not -5.0"),
        (["--max-concurrent-llm", "0"], {}, "--max-concurrent-llm must be at least 1, not 0"),
        (["--request-timeout", "-1"], {}, "--request-timeout must be above 0"),
        ([], {"YTTL_MAX_CONCURRENT_VIDEOS": "0"}, "YTTL_MAX_CONCURRENT_VIDEOS must be at least 1"),
        ([], {"YTTL_BREAKER_FAILURE_RATE": "2"}, "YTTL_BREAKER_FAILURE_RATE must be above 0"),
    ],
)
def test_settings_out_of_range_name_where_they_came_from(
    clean_env: dict[str, str], args: list[str], env: dict[str, str], message: str
) -> None:
    clean_env.update(env)
    result = run_yttl(["whatever.mp4", *args], clean_env, timeout=30)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"yttl: error: {message}"), result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('max_concurrent = "8"', "profiles.lab.max_concurrent must be a number, not '8'"),
        ("model = 7", "profiles.lab.model must be text, not 7"),
        ("context_tokens = 0", "profiles.lab.context_tokens must be at least 1"),
    ],
)
def test_wrong_types_in_a_profile_table_are_refused(
    tmp_path: Path, table: str, message: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'[profiles.lab]\nbase_url = "http://127.0.0.1:1/v1"\n{table}\n')
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings({}, config_file=path, environ={})
    path.write_text("max_output_tokens = 0\n")
    with pytest.raises(
        ConfigError, match=re.escape(f"{path}: max_output_tokens must be at least 1")
    ):
        load_settings({}, config_file=path, environ={})


def test_the_original_tools_profiles_and_keys_are_read(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    _write(
        legacy_config_path(env),
        json.dumps(
            {
                "llm_provider": "lab",
                "openai_profile": "lab",
                "lab_model": "qwen2.5",
                "lab_base_url": "http://192.168.1.9:8080/v1",
                "lab_whisper_model": "whisper-small",
                "lab_api_key": "sk-legacy-lab-key-0123",
                "groq_api_key": "gsk-from-the-file-0123",
            }
        ),
    )
    settings, _ = load_settings({}, environ=env)
    lab = settings.profiles["lab"]
    assert (lab.model, lab.base_url, lab.whisper_model, lab.api_key) == (
        "qwen2.5",
        "http://192.168.1.9:8080/v1",
        "whisper-small",
        "sk-legacy-lab-key-0123",
    )
    from yttl.endpoints import llm_endpoint

    assert llm_endpoint(settings, environ={}).api_key == "sk-legacy-lab-key-0123"
    groq = llm_endpoint(replace(settings, llm_provider="groq"), environ={})
    assert groq.api_key == "gsk-from-the-file-0123"  # a preset's key from the config file
    assert (
        llm_endpoint(
            replace(settings, llm_provider="groq"), environ={"GROQ_API_KEY": "gsk-env"}
        ).api_key
        == "gsk-env"
    )
