"""The core suite: every stage end to end on material the tests make themselves (speech
spoken by espeak-ng from text held here, caption files written here), so that a fresh
clone without ``../shared`` still tests resolve, captions, download, transcription,
summaries and rendering."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import av
import numpy as np
import pytest

from tests.conftest import run_yttl
from tests.support.outputs import output_of
from tests.support.server import LoopbackServer
from tests.support.whisper import MODEL_DIR, long_silences, word_error_rate

PARAGRAPHS = [
    "Memory is not a recording. Every time we remember something, we rebuild it from "
    "pieces, and each rebuilding can change it a little.",
    "Sleep helps. During deep sleep the brain replays the day and moves what matters "
    "into long term storage, which is why a good night's rest helps you learn.",
    "So if you want to remember this lecture, review it tomorrow, and then get some sleep.",
]
RATE = 16_000
ESPEAK = shutil.which("espeak-ng")


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The paragraphs spoken with five seconds of silence between them, as FLAC."""
    if ESPEAK is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    directory = tmp_path_factory.mktemp("speech")
    pieces: list[np.ndarray] = []
    for i, text in enumerate(PARAGRAPHS):
        wav = directory / f"p{i}.wav"
        subprocess.run([ESPEAK, "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True)
        with av.open(str(wav)) as container:
            resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    pieces.append(out.to_ndarray().reshape(-1))
        pieces.append(np.zeros(5 * RATE, dtype=np.int16))
    samples = np.concatenate(pieces)
    path = directory / "lecture.flac"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("flac", rate=RATE)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="s16", layout="mono")
        frame.rate = RATE
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return path


def _seconds(clock: tuple[str, ...]) -> float:
    hours, minutes, seconds, millis = map(int, clock)
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


def _llm(server: LoopbackServer) -> list[str]:
    return ["-lp", "openai", "-ou", server.openai_base_url, "--no-open"]


def test_speech_is_transcribed_locally_and_summarized(
    speech: Path, server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    out = tmp_path / "o"
    result = run_yttl([str(speech), *_llm(server), "-lwm", MODEL_DIR, "-o", str(out), "-f", "json",
                       "-f", "html", "-f", "srt"], clean_env, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = json.loads(output_of(out, speech, "json").read_text())
    assert doc["transcript"]["source"] == "local_whisper"
    said = " ".join(PARAGRAPHS)
    heard = " ".join(c.user.split("Transcript:", 1)[-1] for c in server.state.calls)
    assert word_error_rate(said, heard) < 0.35  # a synthetic voice through tiny.en
    assert doc["hours"][0]["sections"][0]["status"] == "ok"
    assert doc["stats"]["silence_skipped_seconds"] >= 8  # the pauses never reached the model
    # the paragraphs share one window of the model, but every cue stays within its speech
    cues = re.findall(r"(\d\d):(\d\d):(\d\d),(\d{3}) --> (\d\d):(\d\d):(\d\d),(\d{3})",
                      output_of(out, speech, "srt").read_text())  # fmt: skip
    times = [(_seconds(cue[:4]), _seconds(cue[4:])) for cue in cues]
    pauses = long_silences(speech, 4.0)
    assert len(pauses) >= 2 and len(times) >= 3
    for start, end in times:
        assert all(min(end, b) - max(start, a) < 1.0 for a, b in pauses), (start, end, pauses)
    assert "-->" in output_of(out, speech, "srt").read_text()
    assert 'href="file://' in output_of(out, speech, "html").read_text()


def test_a_sidecar_caption_file_is_used_instead_of_the_audio(
    speech: Path, server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    media = tmp_path / "talk.flac"
    media.write_bytes(speech.read_bytes())
    cues = [
        f"00:00:{i * 9:02d}.000 --> 00:00:{i * 9 + 8:02d}.000\n{p}\n"
        for i, p in enumerate(PARAGRAPHS)
    ]
    (tmp_path / "talk.en.vtt").write_text("WEBVTT\n\n" + "\n".join(cues))
    out = tmp_path / "o"
    result = run_yttl([str(media), *_llm(server), "-lwm", "/nonexistent-model", "-o", str(out),
                       "-f", "json", "-f", "md"], clean_env)  # fmt: skip
    assert result.returncode == 0, result.stderr  # no transcription: the model is never loaded
    doc = json.loads(output_of(out, media, "json").read_text())
    assert doc["transcript"]["source"] == "captions"
    assert "Memory is not a recording" in server.state.calls[0].user
    assert output_of(out, media, "md").read_text().startswith("# talk")


class _Files(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def site(speech: Path, tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "site"
    root.mkdir()
    (root / "lecture.flac").write_bytes(speech.read_bytes())
    server = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: _Files(*a, directory=str(root)))
    Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_url_is_resolved_and_downloaded_by_yt_dlp_then_transcribed(
    site: str, server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    out = tmp_path / "o"
    result = run_yttl([f"{site}/lecture.flac", *_llm(server), "-lwm", MODEL_DIR, "-o", str(out),
                       "-f", "json", "--report"], clean_env, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = json.loads(next(out.glob("*.json")).read_text())
    assert doc["video"]["source"] == "url" and doc["video"]["duration"] > 20
    assert doc["stats"]["phase_seconds"]["download"] > 0
    assert "sleep" in " ".join(c.user for c in server.state.calls).lower()


class _Slow(SimpleHTTPRequestHandler):
    """Answers the page after 30 s (a site that hangs), or sends the media a trickle at a
    time (a slow download)."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        import time

        if self.path.startswith("/hang"):
            time.sleep(30)
            self.send_error(504)
            return
        body = Path(self.directory, "lecture.flac").read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "audio/flac")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            for start in range(0, len(body), 4096):
                self.wfile.write(body[start : start + 4096])
                time.sleep(0.2)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client was stopped: that is the point of the test

    do_HEAD = do_GET


@pytest.mark.parametrize("phase", ["resolve", "download"])
def test_ctrl_c_while_a_url_resolves_or_downloads_stops_at_once(
    speech: Path, tmp_path: Path, clean_env: dict[str, str], phase: str
) -> None:
    import signal
    import sys
    import time

    root = tmp_path / "site"
    root.mkdir()
    (root / "lecture.flac").write_bytes(speech.read_bytes())
    server = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: _Slow(*a, directory=str(root)))
    Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/{'hang' if phase == 'resolve' else 'lecture.flac'}"
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "yttl", url, "--transcript-only", "-lwm", MODEL_DIR, "-o",
             str(tmp_path / "o"), "--no-open", "--yt-dlp-option", "socket_timeout=60"],
            env=clean_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(4)
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 130, stderr
        assert time.monotonic() - sent < 5  # not after the site or the download finishes
        assert "Traceback" not in stderr and "interrupted" in stderr
    finally:
        server.shutdown()
        server.server_close()
