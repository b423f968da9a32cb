"""The library commands start fast (issue 24): ``yttl list``, ``show`` and ``search`` (by
words, when the library has no vectors) import neither the provider stack (the openai SDK,
httpx), numpy, nor the media and model stacks. Each command runs in a fresh interpreter, as
a user starts it, and says at its end which of those modules it had loaded.

How long they take as a whole process is a benchmark (``python -m benchmarks start``), not
a test; what makes them slow, importing what they do not need, is tested here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.library import talks_library

HEAVY = ("openai", "httpx", "numpy", "av", "faster_whisper", "ctranslate2", "yt_dlp", "logging",
         "llama_cpp", "jinja2", "tenacity", "psutil", "starlette", "mcp", "rich",
         "yttl.models")  # fmt: skip
# rich draws the tables on a terminal; into a pipe or a file the commands print plain rows
PROBE = """
import json, sys
from yttl.cli import main
code = main(json.loads(sys.argv[1]))
sys.stderr.write("\\nLOADED " + json.dumps(
    {"code": code, "modules": sorted(m for m in HEAVY if m in sys.modules)}) + "\\n")
"""


def _run(args: list[str], env: dict[str, str]) -> tuple[list[str], str]:
    """The heavy modules the command loaded, and what it printed."""
    script = f"HEAVY = {json.dumps(HEAVY)}\n{PROBE}"
    done = subprocess.run([sys.executable, "-c", script, json.dumps(args)], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    line = next(x for x in done.stderr.splitlines() if x.startswith("LOADED "))
    found = json.loads(line.removeprefix("LOADED "))
    assert found["code"] == 0, done.stderr
    assert done.stdout.strip(), f"{args} printed nothing"
    return list(found["modules"]), done.stdout


@pytest.fixture
def library(tmp_path: Path) -> Path:
    path = tmp_path / "library.sqlite"
    talks_library(path, videos=3, sections=4)
    return path


@pytest.mark.parametrize(
    "command",
    [["list", "--json"], ["show", "talk0001", "-f", "json"], ["search", "sleep", "--json"],
     ["list"], ["search", "sleep"], ["show", "talk0001"]],
    ids=" ".join,
)  # fmt: skip
def test_library_commands_import_no_provider_numpy_or_media_stack(
    command: list[str], library: Path, clean_env: dict[str, str]
) -> None:
    env = dict(clean_env)
    env.pop("YTTL_EMBED")  # as a user has it: embeddings on, the default embedder configured
    loaded, _ = _run([*command, "--library-path", str(library)], env)
    assert loaded == []


def test_into_a_pipe_list_and_search_print_one_tab_separated_line_a_row(
    library: Path, clean_env: dict[str, str]
) -> None:
    listed = _run(["list", "--library-path", str(library)], clean_env)[1].splitlines()
    assert sorted(line.split("\t")[0] for line in listed) == ["talk0000", "talk0001", "talk0002"]
    assert all(line.split("\t")[1:4] == [f"Talk {int(line[4:8])}", "20:00", "4"] for line in listed)
    found = _run(["search", "sleep", "--library-path", str(library)], clean_env)[1].splitlines()
    rows = [line.split("\t") for line in found]
    assert len(rows) == 10 and all(len(row) == 5 for row in rows)  # --limit's default
    for video_id, at, url, title, snippet in rows:  # the id first, the long snippet last
        assert title == f"Talk {int(video_id[4:])}" and "**sleep**" in snippet
        assert url.endswith(f"v={video_id}&t={int(at.split(':')[0]) * 60}s")


def test_a_configured_endpoint_embedder_is_not_imported_while_the_library_has_no_vectors(
    library: Path, clean_env: dict[str, str]
) -> None:
    """An embedder named in the config file does not cost a search of a library with no
    vectors its import: the search goes by words and says so."""
    config = Path(clean_env["XDG_CONFIG_HOME"]) / "yttl" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('embed_provider = "e5"\n\n[profiles.e5]\n'
                      'base_url = "http://127.0.0.1:9/v1"\nembed_model = "e5-small"\n')  # fmt: skip
    env = dict(clean_env)
    env.pop("YTTL_EMBED")
    assert _run(["search", "sleep", "--json", "--library-path", str(library)], env)[0] == []
