"""Transcription that survives Ctrl-C and failures: the real yttl command on real speech."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_yttl
from tests.support.outputs import output_of
from tests.support.videos import AUDIO
from tests.support.whisper import MODEL_DIR
from yttl.cache import ResultsCache
from yttl.models import TranscriptSegment
from yttl.transcribe.base import ChunkRecord

LECTURE = AUDIO / "lecture_gaps.opus"


@pytest.fixture(scope="module")
def lecture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first five and a half minutes of the lecture: three paragraphs and their pauses."""
    from tests.test_transcribe import _lecture_slice

    return _lecture_slice(tmp_path_factory.mktemp("audio"), 330.0)


def _command(audio: Path, out: Path, *extra: str) -> list[str]:
    return [
        str(audio),
        "--transcript-only",
        "-f",
        "txt",
        "-lwm",
        MODEL_DIR,
        "-o",
        str(out),
        "--no-open",
        "--chunk-strategy",
        "fixed",
        "--chunk-seconds",
        "60",
        *extra,
    ]


def _stop_after(
    args: list[str], env: dict[str, str], out: Path, seconds: float, twice: bool = False
) -> subprocess.CompletedProcess[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "yttl", *args],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    time.sleep(seconds)
    process.send_signal(signal.SIGINT)
    if twice:
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.mark.corpus
@pytest.mark.parametrize(("seconds", "twice"), [(5.0, False), (6.0, True)])
def test_ctrl_c_during_local_transcription_exits_130_cleanly(
    tmp_path: Path, clean_env: dict[str, str], lecture: Path, seconds: float, twice: bool
) -> None:
    """Once: the model finishes its window and stops; twice: it stops now. Either way the
    threads end before the interpreter does (no crash at exit) and what was done is kept."""
    out = tmp_path / "o"
    stopped = _stop_after(_command(lecture, out), clean_env, out, seconds, twice)
    assert stopped.returncode == 130, stopped.stderr  # not 0 with half a transcript, not -11
    assert "Traceback" not in stderr_of(stopped) and "Segmentation" not in stderr_of(stopped)
    assert "interrupted" in stopped.stderr
    written = output_of(out, lecture, "txt")  # whole, or none when no line was done yet
    assert not written.exists() or written.read_text().strip(), "an empty output was left"
    partial = written.read_text().split() if written.exists() and not twice else []
    rerun = run_yttl(_command(lecture, out, "-f", "json"), clean_env, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    whole = output_of(out, lecture, "txt").read_text().split()
    assert len(whole) > 500 and whole[: len(partial)] == partial


def stderr_of(result: subprocess.CompletedProcess[str]) -> str:
    return result.stderr + result.stdout


@pytest.mark.corpus
def test_a_rerun_takes_the_finished_chunks_and_transcribes_only_the_rest(
    tmp_path: Path, clean_env: dict[str, str], lecture: Path
) -> None:
    out = tmp_path / "o"
    first = run_yttl(
        [*_command(lecture, out), "--report-json", str(tmp_path / "r1.json")],
        clean_env,
        timeout=300,
    )
    assert first.returncode == 0, first.stderr
    reference = output_of(out, lecture, "txt").read_text()
    cache = Path(clean_env["XDG_CACHE_HOME"]) / "yttl" / "results.sqlite"
    import sqlite3

    with sqlite3.connect(cache) as db:  # forget the whole transcript and the last chunk
        db.execute("DELETE FROM transcripts")
        last = db.execute("SELECT key FROM chunks ORDER BY created DESC LIMIT 2").fetchall()
        db.executemany("DELETE FROM chunks WHERE key = ?", last)
        chunks = db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
    assert chunks >= 1
    again = run_yttl(
        [*_command(lecture, out), "--report-json", str(tmp_path / "r2.json")],
        clean_env,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr
    assert output_of(out, lecture, "txt").read_text() == reference  # the same words, resumed
    stats = json.loads((tmp_path / "r2.json").read_text())["transcription"]
    assert stats["resumed_chunks"] == chunks


def test_a_chunk_store_keeps_progress_per_audio_and_options(tmp_path: Path) -> None:
    cache = ResultsCache(tmp_path / "c.sqlite")
    record = ChunkRecord((TranscriptSegment(1.0, 2.0, "hi"),), 10.0, 5.0, covered=2.0)
    cache.chunk_store("audio-a/options-1").put(0.0, 120.0, record)
    assert cache.chunk_store("audio-a/options-1").get(0.0, 120.0) == record
    assert cache.chunk_store("audio-a/options-2").get(0.0, 120.0) is None  # other options
    assert cache.chunk_store("audio-a/options-1").get(0.0, 119.0) is None  # another cut


@pytest.mark.corpus
def test_a_transcription_api_failing_part_way_keeps_what_was_done(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """The fourth upload keeps failing: the first uploads' words, the section they cover
    and its summary are written, the rest marked (exit 3); the rerun uploads the rest."""
    from tests.support.server import LoopbackServer
    from tests.support.whisper import timed_words_upload
    from tests.test_transcribe import _lecture_slice

    lecture = _lecture_slice(tmp_path, 660.0)
    clean_env["YTTL_WHISPER_UPLOAD_LIMIT_MB"] = "0.6"  # uploads of about three minutes
    with LoopbackServer() as server:
        server.state.transcribe = timed_words_upload
        server.state.transcribe_fault = lambda call: (
            (500, {}, b'{"error": {"message": "down"}}') if call.index >= 3 else None
        )
        args = [
            str(lecture),
            "-lp",
            "openai",
            "-ou",
            server.openai_base_url,
            "-wp",
            "openai",
            "-o",
            str(tmp_path / "o"),
            "-f",
            "json",
            "-f",
            "txt",
            "--no-open",
            "--retry-base-delay",
            "0.05",
            "--max-concurrent-whisper",
            "1",
        ]
        first = run_yttl(args, clean_env, timeout=300)
        assert first.returncode == 3, first.stderr
        assert "transcription stopped" in first.stderr
        doc = json.loads(output_of(tmp_path / "o", lecture, "json").read_text())
        statuses = [s["status"] for h in doc["hours"] for s in h["sections"]]
        assert statuses[0] == "ok" and statuses[-1] == "failed"
        assert doc["failures"][0]["where"] == "transcription"
        assert any(
            "not transcribed" in (s.get("error") or "") for h in doc["hours"] for s in h["sections"]
        )
        kept = output_of(tmp_path / "o", lecture, "txt").read_text()
        assert kept.strip()
        uploads = len(server.state.transcription_calls)

        server.state.transcribe_fault = None
        rerun = run_yttl([*args, "--report-json", str(tmp_path / "r.json")], clean_env, timeout=300)
        assert rerun.returncode == 0, rerun.stderr
        stats = json.loads((tmp_path / "r.json").read_text())["transcription"]
        assert stats["resumed_chunks"] == 3  # the three done uploads are not paid for again
        chunks = json.loads((tmp_path / "r.json").read_text())["chunks"]
        assert len(server.state.transcription_calls) - uploads == chunks - 3
        assert output_of(tmp_path / "o", lecture, "txt").read_text().startswith(kept.strip()[:200])
