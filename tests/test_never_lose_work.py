"""Never lose work, clear errors (a newcomer's fresh clone): a provider that cannot be
reached still gets the transcript written and recorded; a bad input is said before any
model is looked for; Ctrl-C leaves no empty output; a bad model or media file is one line
with a next step. Everything through ``python -m yttl`` as README tells a user."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_yttl
from tests.support.broken import fake_hub, refused_port
from tests.support.faults import SERVER_TROUBLE
from tests.support.server import LoopbackServer, LoopbackState
from tests.support.synthetic import synthetic_video
from tests.support.whisper import MODEL_DIR

SPOKEN = "Hello there. This is a short talk about sleep and memory. The brain replays the day."


def _speech(folder: Path, name: str = "talk") -> Path:
    """A few seconds of espeak-ng speech as MP3, made here."""
    espeak, ffmpeg = shutil.which("espeak-ng"), shutil.which("ffmpeg")
    if espeak is None or ffmpeg is None:
        pytest.fail("espeak-ng and ffmpeg are needed (apt-get install espeak-ng ffmpeg)")
    wav, mp3 = folder / f"{name}.wav", folder / f"{name}.mp3"
    subprocess.run([espeak, "-w", str(wav), SPOKEN], check=True)
    subprocess.run([ffmpeg, "-loglevel", "error", "-y", "-i", str(wav), str(mp3)], check=True)
    wav.unlink()
    return mp3


def _lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def _library_json(args: list[str], env: dict[str, str]) -> object:
    shown = run_yttl(args, env)
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def _sections(document: object) -> list[dict[str, object]]:
    assert isinstance(document, dict)
    return [s for h in document["hours"] for s in h["sections"]]


# 1. the provider cannot be reached: the transcript is written, recorded, and said


def test_an_unreachable_provider_still_writes_and_records_the_transcript(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    media = _speech(tmp_path)
    out = tmp_path / "out"
    closed = f"http://127.0.0.1:{refused_port()}/v1"
    whisper = [str(media), "-lwm", MODEL_DIR, "-o", str(out), "--no-open", "-lp", "openai"]
    formats = ["-f", "html", "-f", "json", "-f", "txt"]

    result = run_yttl([*whisper, *formats, "-ou", closed], clean_env, timeout=300)
    assert result.returncode == 1, result.stderr  # DESIGN §3: no summary was produced
    assert "Traceback" not in result.stderr
    lines = _lines(result.stderr)
    assert sum(closed in line for line in lines) == 1, lines  # one line names the URL
    assert lines[0].startswith("yttl: error: ") and closed in lines[0], lines
    (txt,) = out.glob("*.txt")
    assert "sleep" in txt.read_text().lower()  # the transcript, made at real cost
    assert "wrote what was made to" in result.stderr and str(txt) in result.stderr
    document = json.loads(next(out.glob("*.json")).read_text())
    assert document["transcript"]["segments"] >= 1
    sections = _sections(document)
    assert sections and all(s["status"] == "failed" for s in sections)  # marked, not hidden
    assert all(closed in str(s["error"]) for s in sections)
    assert {f["category"] for f in document["failures"]} == {"network"}
    video_id = document["video"]["id"]
    found = _library_json(["search", "sleep", "--json"], clean_env)
    assert [hit["video_id"] for hit in found] == [video_id]  # type: ignore[union-attr]

    with LoopbackServer() as server:  # the provider is back: summaries, exit 0
        done = run_yttl([*whisper, "-f", "json", "-ou", server.openai_base_url], clean_env)
    assert done.returncode == 0, done.stderr
    summarized = _library_json(["show", video_id, "-f", "json"], clean_env)
    assert all(s["status"] == "ok" and s["summary"] for s in _sections(summarized))

    written = next(out.glob("*.json"))
    assert all(s["status"] == "ok" for s in _sections(json.loads(written.read_text())))
    other = ["-om", "another-model", "-ou", closed]  # not in the results cache: it fails
    again = run_yttl([*whisper, "-f", "json", *other], clean_env, timeout=300)
    assert again.returncode == 1, again.stderr
    assert _library_json(["show", video_id, "-f", "json"], clean_env) == summarized  # not poorer
    assert "sleep" in txt.read_text().lower()
    # nor the summary it wrote into -o: the failed run keeps it, says so, writes the .txt
    assert all(s["status"] == "ok" for s in _sections(json.loads(written.read_text())))
    assert f"kept {written} from an earlier run" in again.stderr, again.stderr


def test_a_provider_answering_only_errors_still_writes_the_caption_transcript(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    state = LoopbackState(fault=lambda call: SERVER_TROUBLE)
    out = tmp_path / "out"
    with LoopbackServer(state) as server:
        info = synthetic_video(server, tmp_path, "captioned", seconds=600)
        result = run_yttl(
            [
                str(info),
                "-lp",
                "openai",
                "-ou",
                server.openai_base_url,
                "-o",
                str(out),
                "-f",
                "md",
                "--no-open",
                "--retry-base-delay",
                "0.05",
                "--breaker-deadline",
                "2",
            ],
            clean_env,
        )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert server.openai_base_url in _lines(result.stderr)[0], result.stderr
    assert "failed" in (out / "captioned.md").read_text().lower()  # marked as failed
    txt = out / "captioned.txt"  # Markdown has no transcript: it is written beside
    assert "At minute 9 we talk about" in txt.read_text()  # the whole of it
    assert str(txt) in result.stderr


# 2. a bad input is said at once (exit 2), before any model is looked up or fetched


@pytest.mark.parametrize(
    ("source", "said"),
    [
        ("http://exa mple.com/talk", "is not a valid URL"),
        ("notes.txt", "cannot read notes.txt as media"),
    ],
)
def test_a_bad_input_is_said_before_the_local_model_is_looked_up(
    tmp_path: Path, clean_env: dict[str, str], source: str, said: str
) -> None:
    (tmp_path / "notes.txt").write_text("my notes, not a video\n")
    with fake_hub({}, "main") as (hub, seen):
        clean_env.update(HF_ENDPOINT=hub, HF_HOME=str(tmp_path / "hf"))
        result = run_yttl(
            [source, "-o", str(tmp_path / "out"), "--no-open"], clean_env, cwd=tmp_path
        )
    assert result.returncode == 2, result.stderr
    lines = _lines(result.stderr)
    assert lines[0].startswith("yttl: error: ") and said in lines[0], lines
    assert len(lines) == 2 and "Traceback" not in result.stderr
    assert seen.requests == []  # the default model was not even looked for
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# 4. a model or media file that cannot be read: one line naming it, and what to do


def test_a_local_model_path_that_is_no_gguf_is_one_line_with_a_next_step(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    media = _speech(tmp_path)
    model = tmp_path / "model.gguf"
    model.write_text("<html>a download page saved by mistake</html>\n")
    result = run_yttl(
        [
            str(media),
            "--local-model-path",
            str(model),
            "-lwm",
            MODEL_DIR,
            "-o",
            str(tmp_path / "out"),
            "--no-open",
        ],
        clean_env,
    )
    assert result.returncode == 2, result.stderr
    lines = _lines(result.stderr)
    assert len(lines) == 2 and "Traceback" not in result.stderr, lines
    assert lines[0] == f"yttl: error: {model} is not a GGUF model file", lines
    assert "--local-model-path" in lines[1] and "-lp openai" in lines[1], lines
    verbose = run_yttl(
        [
            str(media),
            "--local-model-path",
            str(model),
            "-v",
            "--no-open",
            "-o",
            str(tmp_path / "out"),
        ],
        clean_env,
    )
    assert verbose.returncode == 2 and "Traceback" in verbose.stderr


def _cut_short(folder: Path) -> Path:
    """An Ogg file cut off after its first bytes, as an interrupted copy leaves it."""
    whole = _speech(folder, "whole")
    ogg = folder / "whole.ogg"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(whole), str(ogg)], check=True)
    cut = folder / "cut.ogg"
    cut.write_bytes(ogg.read_bytes()[:200])
    return cut


@pytest.mark.parametrize("kind", ["cut short", "empty"])
def test_a_media_file_pyav_cannot_read_is_one_line_with_a_next_step(
    tmp_path: Path, clean_env: dict[str, str], kind: str
) -> None:
    if kind == "cut short":
        media = _cut_short(tmp_path)
    else:
        media = tmp_path / "talk.mp3"
        media.write_bytes(b"")
    closed = f"http://127.0.0.1:{refused_port()}/v1"
    result = run_yttl(
        [
            str(media),
            "-lp",
            "openai",
            "-ou",
            closed,
            "-lwm",
            MODEL_DIR,
            "-o",
            str(tmp_path / "out"),
            "--no-open",
        ],
        clean_env,
    )
    assert result.returncode == 2, result.stderr
    lines = _lines(result.stderr)
    assert len(lines) == 2 and "Traceback" not in result.stderr, lines
    assert lines[0].startswith(f"yttl: error: cannot read {media} as media: "), lines
    assert "Errno" not in lines[0]  # said in words
    assert "ffprobe" in lines[1] and "media file" in lines[1], lines


# 3. Ctrl-C mid-transcription: outputs whole, or none; never an empty file


def test_ctrl_c_while_transcribing_leaves_no_empty_or_torn_output(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    media = _speech(tmp_path)
    out = tmp_path / "out"
    args = [
        str(media),
        "--transcript-only",
        "-f",
        "txt",
        "-f",
        "vtt",
        "-lwm",
        MODEL_DIR,
        "-o",
        str(out),
        "--no-open",
    ]
    process = subprocess.Popen(
        [sys.executable, "-m", "yttl", *args, "-v"],
        env=clean_env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    said = []
    for line in process.stderr:  # the event: the transcription is about to start
        said.append(line)
        if "transcribing the audio" in line:
            process.send_signal(signal.SIGINT)
            break
    said.append(process.stderr.read())
    assert process.wait(timeout=300) == 130, "".join(said)
    stderr = "".join(said)
    assert "Traceback" not in stderr
    written = sorted(out.iterdir()) if out.exists() else []
    for path in written:  # whole, or not there at all
        assert not path.name.startswith("."), written  # no temporary file left behind
        assert path.read_text().strip() not in ("", "WEBVTT"), path
    said_last = _lines(stderr)[-1]
    if written:
        assert said_last.startswith("yttl: interrupted; wrote what was finished to"), stderr
    else:
        assert said_last == "yttl: interrupted", stderr

    finished = run_yttl(args, clean_env, timeout=300)  # the same command finishes it
    assert finished.returncode == 0, finished.stderr
    (txt,) = out.glob("*.txt")
    assert "sleep" in txt.read_text().lower()
