"""A newcomer's first minutes and a long-lived process's last: the help is a map, errors
are one line with the exit code DESIGN §3 gives, empty and idle states speak, pipes and
Ctrl-C end quietly, and the tests never touch the user's own folders."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import platformdirs

from tests.conftest import run_yttl
from tests.support.server import LoopbackServer
from tests.support.synthetic import synthetic_video
from yttl.library import Library


def test_help_is_a_map_of_commands_and_options_with_their_defaults(
    clean_env: dict[str, str],
) -> None:
    result = run_yttl(["--help"], clean_env)
    assert result.returncode == 0
    text = result.stdout
    for command in ("search", "list", "show", "ask", "library import", "config", "mcp"):
        assert f"yttl {command}" in text, command
    assert "(default: local)" in text.split("--llm-provider", 1)[1].split("\n")[0] + text
    from yttl.cli import build_parser

    missing = [a.option_strings for a in build_parser()._actions
               if a.option_strings and not a.help]  # fmt: skip
    assert missing == []
    wrong = run_yttl(["search", "--limit", "many", "memory"], clean_env)
    assert wrong.returncode == 2 and "see yttl search --help" in wrong.stderr


def test_output_into_a_closed_pipe_ends_quietly(tmp_path: Path, clean_env: dict[str, str]) -> None:
    library = tmp_path / "library.sqlite"
    for i in range(300):
        Library(library).record_document({
            "video": {"id": f"v{i}", "title": "A talk " * 20, "url": f"https://x/{i}"},
            "hours": []})  # fmt: skip
    process = subprocess.Popen([sys.executable, "-m", "yttl", "list", "--json", "--library-path",
                                str(library)], env=clean_env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    process.stdout.read(100)  # `| head -c 100`
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=30) == 0
    assert stderr == "", stderr


def test_a_worker_thread_that_outlives_the_loop_leaves_no_traceback() -> None:
    code = textwrap.dedent("""
        import asyncio, time
        from yttl.aio import blocking
        from yttl.errors import RunInterrupted

        async def main():
            stop = asyncio.Event()
            asyncio.get_running_loop().call_later(0.1, stop.set)
            try:
                await blocking(time.sleep, 0.6, stop=stop)
            except RunInterrupted:
                print("stopped")

        asyncio.run(main())
        time.sleep(1.0)  # the abandoned thread finishes after the loop is closed
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=30)  # fmt: skip
    assert result.stdout.strip() == "stopped"
    assert "Traceback" not in result.stderr and "Event loop is closed" not in result.stderr


def test_three_ctrl_c_exit_130_with_one_line(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    info = synthetic_video(server, tmp_path, seconds=3600)
    server.state.latency = 20.0  # every call hangs: the run is stuck in the summaries
    process = subprocess.Popen(
        [sys.executable, "-m", "yttl", str(info), "-lp", "openai", "-ou", server.openai_base_url,
         "-o", str(tmp_path / "o"), "--no-open", "-f", "json"],
        env=clean_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(4)
    for _ in range(3):
        process.send_signal(signal.SIGINT)
        time.sleep(0.05)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "Error" not in stderr, stderr
    assert "interrupted" in stderr


def test_a_missing_file_is_reported_before_any_model_is_fetched(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    clean_env["HF_HUB_OFFLINE"] = "1"  # were the model fetched, this would fail otherwise
    result = run_yttl([str(tmp_path / "talk.mp4"), "--no-open"], clean_env)
    assert result.returncode == 2
    assert result.stderr.startswith("yttl: error: no such file")


def test_an_unreachable_model_hub_says_so_in_one_line(
    tmp_path: Path, clean_env: dict[str, str], server: LoopbackServer
) -> None:
    info = synthetic_video(server, tmp_path, seconds=600)
    for setting in ({"HF_HUB_OFFLINE": "1"}, {"HF_ENDPOINT": "http://127.0.0.1:9"}):
        env = {**clean_env, **setting}
        result = run_yttl([str(info), "-lmr", "someone/model", "-lmf", "m.gguf", "--no-open",
                           "-o", str(tmp_path / "o")], env)  # fmt: skip
        assert result.returncode == 1, result.stderr
        lines = result.stderr.splitlines()
        assert lines[0].startswith("yttl: error: cannot reach") and "offline?" in lines[0]
        assert "--local-model-path" in lines[1] and len(lines) == 2, result.stderr


def test_config_show_gives_real_defaults_and_never_a_secret(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    config = Path(clean_env["XDG_CONFIG_HOME"]) / "yttl" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('llm_provider = "groq"\ngroq_api_key = "gsk-very-secret-0123456789"\n')
    result = run_yttl(["config", "show"], clean_env)
    assert result.returncode == 0, result.stderr
    assert "gsk-very-secret" not in result.stdout
    lines = {line.split("=")[0].strip("# ").strip(): line for line in result.stdout.splitlines()
             if "=" in line}  # fmt: skip
    assert "set;" in lines["groq_api_key"] and "not set" in lines["hf_token"]
    assert "default: 4" in lines["max_concurrent_llm"]  # groq's preset
    assert "default: 6000" in lines["context_tokens"]


def test_yttl_mcp_says_on_stderr_that_it_serves_and_how_to_stop(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    result = subprocess.run([sys.executable, "-m", "yttl", "mcp", "--library-path",
                             str(tmp_path / "l.sqlite")], env=clean_env, input="",
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.stdout == ""  # stdout belongs to the protocol
    first = result.stderr.splitlines()[0]
    assert "serving" in first and "Ctrl-C" in first


def test_every_user_folder_is_the_tests_own(tmp_path: Path) -> None:
    from tests.conftest import REAL_USER_DIRS

    for where in (platformdirs.user_data_dir, platformdirs.user_cache_dir,
                  platformdirs.user_config_dir, platformdirs.user_state_dir):  # fmt: skip
        assert Path(where("yttl")).is_relative_to(tmp_path)
    assert all(not d.is_relative_to(tmp_path) for d in REAL_USER_DIRS)
    from yttl.config import Settings, library_path

    assert library_path(Settings()).is_relative_to(tmp_path)


def test_a_run_records_into_the_isolated_library_only(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    info = synthetic_video(server, tmp_path, seconds=400)
    result = run_yttl([str(info), "-lp", "openai", "-ou", server.openai_base_url, "--no-open",
                       "-o", str(tmp_path / "o")], clean_env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    library = Path(clean_env["XDG_DATA_HOME"]) / "yttl" / "library.sqlite"
    assert [v["id"] for v in Library(library).videos()] == ["synth"]
    assert json.loads(run_yttl(["list", "--json"], clean_env).stdout)[0]["id"] == "synth"
    assert os.environ.get("XDG_DATA_HOME", "").startswith(str(tmp_path))
