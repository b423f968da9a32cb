"""Audio through the whole pipeline: fallback to whisper, download, streamed summaries."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_yttl
from tests.support.outputs import output_of
from tests.support.server import LoopbackServer
from tests.support.videos import AUDIO, load_info
from tests.support.whisper import MODEL_DIR, transcribe_upload, word_error_rate
from tests.test_transcribe import _lecture_slice
from yttl.config import Settings
from yttl.factory import build_transcriber
from yttl.models import TranscriptSegment
from yttl.pipeline import process_video
from yttl.transcribe.chunking import Hardware

pytestmark = pytest.mark.corpus  # every test here reads ../shared/data


def test_a_media_file_without_captions_is_transcribed_locally(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    media = tmp_path / "jfk.flac"
    media.write_bytes((AUDIO / "jfk.flac").read_bytes())
    args = [str(media), "-lp", "openai", "-ou", server.openai_base_url, "-lwm", MODEL_DIR,
            "-o", str(tmp_path / "o"), "-f", "json", "-f", "txt", "--no-open"]  # fmt: skip
    result = run_yttl(args, clean_env)
    assert result.returncode == 0, result.stderr
    doc = json.loads(output_of(tmp_path / "o", media, "json").read_text())
    assert doc["transcript"]["source"] == "local_whisper"
    stats = doc["stats"]
    assert stats["audio_seconds"] == pytest.approx(11.0, abs=0.1)
    assert 0 < stats["speech_seconds"] <= stats["audio_seconds"]
    assert stats["transcription"]["compute_type"] == "int8"
    text = output_of(tmp_path / "o", media, "txt").read_text()
    assert word_error_rate((AUDIO / "jfk.txt").read_text(), text.split("]", 1)[1]) <= 0.15
    assert (
        len(server.state.calls) == 1 and "ask not what your country" in server.state.calls[0].user
    )


def test_a_failed_caption_download_falls_back_to_downloaded_audio(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    server.state.files["jfk.flac"] = (AUDIO / "jfk.flac").read_bytes()
    info = load_info("vo4pMVb0R6M")
    info.update(id="jfkspeech", duration=None, chapters=None, extractor_key="Generic",
                webpage_url=f"{server.url}/files/jfk.flac", automatic_captions={},
                subtitles={"en": [{"ext": "json3", "url": f"{server.url}/files/missing.json3"}]})  # fmt: skip
    path = tmp_path / "jfk.info.json"
    path.write_text(json.dumps(info))
    args = [str(path), "-lp", "openai", "-ou", server.openai_base_url, "-lwm", MODEL_DIR,
            "-o", str(tmp_path), "-f", "json", "--no-open"]  # fmt: skip
    result = run_yttl(args, clean_env)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "falling back" in line]
    assert len(warnings) == 1 and "HTTP 404" in warnings[0]
    doc = json.loads((tmp_path / "jfkspeech.json").read_text())
    assert doc["transcript"]["source"] == "local_whisper"
    assert doc["video"]["duration"] == pytest.approx(11.0, abs=0.1)  # measured from the audio
    assert doc["stats"]["phase_seconds"]["download"] > 0
    assert server.state.file_requests == ["missing.json3", "jfk.flac"] or \
        server.state.file_requests[0] == "missing.json3"  # fmt: skip


def test_the_api_whisper_provider_end_to_end(server: LoopbackServer, tmp_path: Path,
                                             clean_env: dict[str, str]) -> None:  # fmt: skip
    server.state.transcribe = transcribe_upload
    media = tmp_path / "jfk.flac"
    media.write_bytes((AUDIO / "jfk.flac").read_bytes())
    args = [str(media), "-lp", "openai", "-ou", server.openai_base_url, "-wp", "openai",
            "-o", str(tmp_path / "o"), "-f", "json", "--no-open"]  # fmt: skip
    result = run_yttl(args, clean_env)
    assert result.returncode == 0, result.stderr
    doc = json.loads(output_of(tmp_path / "o", media, "json").read_text())
    assert doc["transcript"]["source"] == "api_whisper"
    assert [c.model for c in server.state.transcription_calls] == ["whisper-1"]
    assert "ask not what your country" in server.state.calls[0].user


def test_api_uploads_are_retried_and_paced_by_the_scheduler(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """A 429 and a 503 on the upload are retried like chat calls, not the end of the run."""
    server.state.transcribe = transcribe_upload
    faults = iter([(429, {"Retry-After": "0.2"}, b'{"error": {"message": "slow down"}}'),
                   (503, {}, b'{"error": {"message": "busy"}}')])  # fmt: skip
    server.state.transcribe_fault = lambda call: next(faults, None)
    media = tmp_path / "jfk.flac"
    media.write_bytes((AUDIO / "jfk.flac").read_bytes())
    args = [str(media), "-lp", "openai", "-ou", server.openai_base_url, "-wp", "openai",
            "-o", str(tmp_path / "o"), "-f", "json", "--no-open", "--retry-base-delay", "0.05"]  # fmt: skip
    result = run_yttl(args, clean_env)
    assert result.returncode == 0, result.stderr
    calls = server.state.transcription_calls
    assert [c.status for c in calls] == [429, 503, 200]
    assert calls[1].start - calls[0].start >= 0.2  # Retry-After honoured
    doc = json.loads(output_of(tmp_path / "o", media, "json").read_text())
    assert doc["transcript"]["source"] == "api_whisper" and doc["transcript"]["segments"] >= 1


class _TimedTranscriber:
    """Wraps a real transcriber and notes when its last segment came out."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.name = inner.name  # type: ignore[attr-defined]
        self.stats = inner.stats  # type: ignore[attr-defined]
        self.finished = 0.0

    async def transcribe(
        self, audio: Path, chunks: object = None
    ) -> AsyncIterator[TranscriptSegment]:
        async for segment in self.inner.transcribe(audio, chunks):  # type: ignore[attr-defined]
            yield segment
        self.finished = time.perf_counter()


def test_summaries_start_while_transcription_runs(server: LoopbackServer, tmp_path: Path) -> None:
    audio = _lecture_slice(tmp_path, 660)  # three sections
    server.state.latency = 0.2
    settings = Settings(llm_provider="openai", openai_base_url=server.openai_base_url,
                        local_whisper_model=MODEL_DIR, chunk_strategy="fixed",
                        chunk_seconds=120)  # fmt: skip
    environ = {"OPENAI_API_KEY": "sk-test"}
    transcriber = _TimedTranscriber(build_transcriber(settings, environ, Hardware(8000, 6000, 2)))
    result = asyncio.run(process_video(str(audio), settings, transcriber=transcriber,  # type: ignore[arg-type]
                                       environ=environ))  # fmt: skip
    sections = [c for c in server.state.calls if "Transcript:\n" in c.user]
    assert len(sections) == 3 and result.transcript.source == "local_whisper"
    first = min(c.start for c in sections)
    assert first < transcriber.finished - 2  # section 1 was summarized mid-transcription
    last_call_end = max(c.end for c in server.state.calls)
    assert last_call_end - transcriber.finished < 3 * 0.2 + 1.0
    assert np.isclose(result.video.duration, 660, atol=0.1)
