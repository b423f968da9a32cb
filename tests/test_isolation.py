"""A batch isolates every failure: whatever one video raises, the others finish, the
index lists them all, and the exit code is the worst. On videos the tests make."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import av
import numpy as np

from tests.conftest import run_yttl
from tests.support.server import LoopbackServer
from tests.support.synthetic import caption_text, synthetic_video, unknown_model_batch
from yttl.batch import run_batch, worst_exit
from yttl.config import Settings, load_settings
from yttl.factory import build_components
from yttl.jobs import run_sources, save_video
from yttl.library import Library
from yttl.models import RunResult
from yttl.pipeline import NullObserver
from yttl.render import output_stem
from yttl.sources.playlists import BatchEntry, expand_sources


def _settings(server: LoopbackServer, tmp_path: Path, **more: Any) -> Settings:
    flags = {"llm_provider": "openai", "openai_base_url": server.openai_base_url,
             "output_dir": str(tmp_path / "out"), "format": ("json",), "open": False,
             "library_path": str(tmp_path / "library.sqlite"), "max_concurrent_videos": 4,
             **more}  # fmt: skip
    settings, _ = load_settings(flags, environ={"OPENAI_API_KEY": "sk-loopback-0123456789"})
    return settings


class _Breaks:
    """Progress of a batch, except that one video's observer raises: a bug in a stage."""

    def __init__(self, culprit: str) -> None:
        self.culprit = culprit

    def video(self, entry: BatchEntry) -> Any:
        if self.culprit in str(entry.source):

            class Bug(NullObserver):
                def phase(self, name: str) -> None:
                    raise RuntimeError(f"a bug while {name}")

            return Bug()
        return NullObserver()

    def finished(self, outcome: Any) -> None:
        pass


def test_a_batch_of_twenty_keeps_going_past_two_unwritable_videos_and_a_bug(
    server: LoopbackServer, tmp_path: Path
) -> None:
    infos = [synthetic_video(server, tmp_path, f"v{i:02d}", seconds=600) for i in range(20)]
    out = tmp_path / "out"
    out.mkdir()
    for blocked in ("v03", "v11"):  # its JSON cannot be written: a folder is in the way
        (out / f"{blocked}.json").mkdir()
    settings = _settings(server, tmp_path)
    observer = _Breaks("v07")

    run = asyncio.run(run_sources([str(p) for p in infos], settings, stop=asyncio.Event(),
                                  observe=lambda _: contextlib.nullcontext(observer)))  # fmt: skip
    statuses = {o.entry.label: o.status for o in run.outcomes}
    assert len(run.outcomes) == 20
    failed = sorted(label for label, status in statuses.items() if status == "failed")
    assert [label.split(".")[0][-3:] for label in failed] == ["v03", "v07", "v11"], statuses
    assert sum(status == "ok" for status in statuses.values()) == 17
    assert worst_exit([o.exit_code for o in run.outcomes]) == 1
    index = json.loads((out / "index.json").read_text())
    assert len(index["videos"]) == 20 and index["counts"] == {"ok": 17, "failed": 3}
    errors = {v["source"].split("/")[-1]: v["error"] for v in index["videos"] if v["error"]}
    assert "RuntimeError" in errors["v07.info.json"]["message"]
    assert "could not write" in errors["v03.info.json"]["message"]
    assert len(Library(tmp_path / "library.sqlite").videos()) == 17  # the written ones


def test_a_library_error_fails_that_video_alone(server: LoopbackServer, tmp_path: Path) -> None:
    infos = [synthetic_video(server, tmp_path, f"w{i}", seconds=400) for i in range(3)]
    settings = _settings(server, tmp_path)
    library = Library(tmp_path / "library.sqlite")

    async def write(result: RunResult) -> list[Path]:
        if result.video.id == "w1":
            raise sqlite3.OperationalError("database is locked")
        return await asyncio.to_thread(save_video, result, settings, library)

    async def main() -> list[Any]:
        entries, _ = expand_sources([str(p) for p in infos], {}, None)
        components = build_components(settings)
        try:
            return await run_batch(entries, components, max_concurrent_videos=2, write=write)
        finally:
            await components.aclose()

    outcomes = asyncio.run(main())
    assert [o.status for o in outcomes] == ["ok", "failed", "ok"]
    assert "database is locked" in outcomes[1].error.message


def test_an_unknown_model_stops_a_batch_with_exit_2_and_the_rest_not_started(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    result, index = unknown_model_batch(server, tmp_path, clean_env)
    assert result.returncode == 2, result.stderr
    assert [v["status"] for v in index["videos"]] == ["failed"] * 4
    assert "interrupted" not in result.stderr
    messages = [v["error"]["message"] for v in index["videos"]]
    assert all("'nope'" in m for m in messages)
    assert messages[-1].startswith(("not started", "stopped"))  # not "interrupted"
    # the first answers stopped the batch: each video asks 3 sections at once, and the
    # next may start when its predecessor's transcript is done, before those answers
    # are back (a loaded machine); never does every video ask (4 x 3 calls)
    assert len(server.state.calls) < 12


def _silence(path: Path, seconds: float = 30.0) -> None:
    rate = 16_000
    with av.open(str(path), "w") as container:
        stream = container.add_stream("flac", rate=rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, int(seconds * rate)), dtype=np.int16),
                                           format="s16", layout="mono")  # fmt: skip
        frame.rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)


def test_two_local_files_with_the_same_name_are_two_videos(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    media = []
    for meeting in ("monday", "tuesday"):
        folder = tmp_path / meeting
        folder.mkdir()
        _silence(folder / "zoom_0.flac")
        (folder / "zoom_0.en.vtt").write_text(caption_text(30, every=10).replace(
            "we talk about", f"on {meeting} we talk about"))  # fmt: skip
        media.append(folder / "zoom_0.flac")
    out = tmp_path / "out"
    library = tmp_path / "library.sqlite"
    result = run_yttl([*map(str, media), "-lp", "openai", "-ou", server.openai_base_url,
                       "-o", str(out), "--no-open", "-f", "json", "--library-path",
                       str(library)], clean_env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    index = json.loads((out / "index.json").read_text())
    ids = [v["id"] for v in index["videos"]]
    assert len(set(ids)) == 2 and all(i.startswith("zoom_0-") for i in ids)
    written = sorted(p.name for p in out.glob("zoom_0*.json"))
    assert len(written) == 2
    said = {json.loads((out / name).read_text())["video"]["id"]: (out / name).read_text()
            for name in written}  # fmt: skip
    assert sum("monday" in text for text in said.values()) == 1
    assert len(Library(library).videos()) == 2
    rerun = run_yttl([str(media[0]), "-lp", "openai", "-ou", server.openai_base_url, "-o",
                      str(out), "--no-open", "-f", "json", "--library-path", str(library)],
                     clean_env)  # fmt: skip
    assert rerun.returncode == 0 and sorted(p.name for p in out.glob("zoom_0*.json")) == written


def test_a_video_never_writes_over_the_batch_index() -> None:
    assert output_stem("index") != "index" and output_stem("INDEX") != "index"
    assert output_stem("vo4pMVb0R6M") == "vo4pMVb0R6M"
