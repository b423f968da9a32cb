"""End to end: the ``yttl`` command on episodes the tests make, served from 127.0.0.1.
No corpus: a fresh clone runs every test here (DESIGN §8)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import av
import numpy as np
import pytest

from tests.conftest import run_yttl
from tests.support.outputs import output_of
from tests.support.server import LoopbackServer
from tests.support.synthetic import EPISODE, episode, episode_vtt, synthetic_video
from yttl import __version__


def _args(server: LoopbackServer, source: Path | str, out: Path, *extra: str) -> list[str]:
    return [
        str(source),
        "-lp",
        "openai",
        "-ou",
        server.openai_base_url,
        "-o",
        str(out),
        "--no-open",
        *extra,
    ]


def _assert_one_line_error(stderr: str, pattern: str) -> None:
    """The error and its hint; what the run had made may be said after (DESIGN §3)."""
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    if lines and lines[-1].startswith("yttl: wrote what was made to "):
        lines.pop()
    assert 1 <= len(lines) <= 2, stderr
    assert lines[0].startswith("yttl: error: ")
    assert pattern in stderr, stderr


def test_version() -> None:
    result = run_yttl(["--version"], env={})
    assert result.returncode == 0 and result.stdout.strip() == f"yttl {__version__}"


def test_an_episode_end_to_end_in_every_format(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    info = episode(server, tmp_path)
    out = tmp_path / "out"
    formats = [a for f in ("html", "md", "json", "txt", "srt", "vtt") for a in ("-f", f)]
    result = run_yttl(_args(server, info, out, *formats), clean_env)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        f"{EPISODE}.{ext}" for ext in sorted(("html", "md", "json", "txt", "srt", "vtt"))
    ]
    doc = json.loads((out / f"{EPISODE}.json").read_text())
    assert doc["schema"] == 1
    assert doc["video"]["id"] == EPISODE and doc["video"]["source"] == "info_json"
    assert doc["transcript"]["source"] == "captions"
    sections = doc["hours"][0]["sections"]
    assert [(s["start"], s["end"]) for s in sections] == [(0, 300), (300, 654)]
    assert sections[1]["url"] == f"https://www.youtube.com/watch?v={EPISODE}&t=300s"
    assert len(server.state.calls) == 2 + 1
    replies = {c.reply for c in server.state.calls}
    assert {s["summary"] for s in sections} <= replies and doc["hours"][0]["summary"] in replies
    assert doc["stats"]["llm_calls"] == 3
    assert server.state.file_requests == [f"{EPISODE}.json3"]  # manual en, json3 first
    assert "wrote" in result.stderr and "2/2 sections" in result.stderr
    srt = (out / f"{EPISODE}.srt").read_text()
    assert srt.startswith("1\n00:00:01,000 --> ")
    assert "Traceback" not in result.stderr


def test_sequential_and_parallel_runs_have_the_same_structure(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    info = synthetic_video(server, tmp_path, seconds=4200)  # two hours, 14 sections
    docs = []
    for mode in (["--sequential", "--no-cache"], ["--max-concurrent-llm", "6", "--no-cache"]):
        out = tmp_path / mode[0].strip("-")
        result = run_yttl(_args(server, info, out, "-f", "json", *mode), clean_env)
        assert result.returncode == 0, result.stderr
        docs.append(json.loads(next(out.glob("*.json")).read_text()))

    def shape(doc: dict) -> list:  # type: ignore[type-arg]
        return [
            (
                h["start"],
                h["end"],
                h["status"],
                [(s["start"], s["end"], s["status"], s["summary"]) for s in h["sections"]],
            )
            for h in doc["hours"]
        ]

    assert shape(docs[0]) == shape(docs[1])
    assert docs[0]["stats"]["max_in_flight"] == 1
    assert docs[1]["stats"]["max_in_flight"] == 6
    assert [len(h["sections"]) for h in docs[0]["hours"]] == [12, 2]


def test_chapters_become_sections(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    info = episode(server, tmp_path)
    chapters = json.loads(info.read_text())["chapters"]
    result = run_yttl(
        _args(server, info, tmp_path, "-f", "json", "--sections", "chapters"), clean_env
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads((tmp_path / f"{EPISODE}.json").read_text())
    assert [s["title"] for s in doc["hours"][0]["sections"]] == [c["title"] for c in chapters]
    prompts = [c.user for c in server.state.calls if "\nChapter: " in c.user]
    assert len(prompts) == len(chapters)


def test_transcript_only_makes_no_llm_call_and_needs_no_key(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    info = episode(server, tmp_path)
    clean_env.pop("OPENAI_API_KEY")
    result = run_yttl(
        _args(server, info, tmp_path / "o", "--transcript-only", "-f", "vtt"), clean_env
    )
    assert result.returncode == 0, result.stderr
    assert [p.name for p in (tmp_path / "o").iterdir()] == [f"{EPISODE}.vtt"]
    assert server.state.calls == []
    original = episode_vtt().split()
    written = (tmp_path / "o" / f"{EPISODE}.vtt").read_text().split()
    assert [w for w in written if "-->" not in w and ":" not in w] == [
        w for w in original if "-->" not in w and ":" not in w
    ]


def test_sponsorblock_segments_are_dropped(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    info = episode(server, tmp_path)
    server.state.sponsor_segments[EPISODE] = [
        {"segment": [0, 120.5], "category": "sponsor", "UUID": "a"},
        {"segment": [400, 500], "category": "intro", "UUID": "b"},
    ]
    args = _args(
        server,
        info,
        tmp_path,
        "-f",
        "txt",
        "-sb",
        "sponsor",
        "--sponsorblock-api",
        server.url,
        "--transcript-only",
    )
    result = run_yttl(args, clean_env)
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / f"{EPISODE}.txt").read_text().splitlines()
    assert lines[0].startswith("[2:")  # nothing before 120.5 s (the line at 2:00 overlaps)
    assert any(line.startswith("[7:") for line in lines)  # intro was not asked for
    request = server.state.sponsor_requests[0]
    assert EPISODE not in request and "sponsor" in request  # hash prefix only


def test_an_unreachable_sponsorblock_is_a_warning(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    info = episode(server, tmp_path)
    args = _args(
        server,
        info,
        tmp_path,
        "-f",
        "txt",
        "--transcript-only",
        "-sb",
        "sponsor",
        "--sponsorblock-api",
        "http://127.0.0.1:9",
    )
    result = run_yttl(args, clean_env)
    assert result.returncode == 0
    assert "SponsorBlock is unreachable" in result.stderr
    assert (tmp_path / f"{EPISODE}.txt").read_text().startswith("[0:01]")


def _write_tone(path: Path, seconds: float, audio: bool = True) -> None:
    with av.open(str(path), "w") as container:
        if audio:
            stream = container.add_stream("flac", rate=16000)
            stream.layout = "mono"
            samples = (np.sin(np.arange(int(seconds * 16000)) / 5) * 3000).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(samples[None, :], format="s16", layout="mono")
            frame.rate = 16000
            for packet in stream.encode(frame):
                container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)


def test_a_local_file_with_sidecar_captions(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    media = tmp_path / "My talk (final).flac"
    _write_tone(media, 660)
    (tmp_path / "My talk (final).en.vtt").write_bytes(episode_vtt().encode())
    result = run_yttl(_args(server, media, tmp_path / "o", "-f", "json", "-f", "html"), clean_env)
    assert result.returncode == 0, result.stderr
    doc = json.loads(output_of(tmp_path / "o", media, "json").read_text())
    assert output_of(tmp_path / "o", media, "json").name.startswith("My_talk_final-")
    assert doc["video"]["source"] == "file" and doc["video"]["duration"] == pytest.approx(
        660, abs=1
    )
    assert doc["hours"][0]["sections"][1]["url"].endswith("#t=300")
    assert doc["hours"][0]["sections"][1]["url"].startswith("file:///")
    html = output_of(tmp_path / "o", media, "html").read_text()
    assert "<video" in html and 'data-t="300"' in html


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.mp4", "no such file"),
        (lambda d: d, "is a directory"),
        (lambda d: _touch(d / "empty.mp4", b""), "is empty"),
        (lambda d: _touch(d / "corrupt.mp4", b"\x00\x01garbage" * 100), "cannot read"),
        (lambda d: _touch(d / "bad.info.json", b"{not json"), "not valid JSON"),
        (lambda d: _touch(d / "list.info.json", b"[1, 2]"), "not a yt-dlp info file"),
        (lambda d: _touch(d / "shape.info.json", b'{"title": "x"}'), "has no 'id'"),
        (lambda d: _touch(d / "zero.info.json", b'{"id": "x", "duration": 0}'), "duration of 0"),
        (lambda d: _touch(d / "pl.info.json", b'{"id": "x", "_type": "playlist"}'), "playlist"),
        (lambda d: "ftp://example.invalid/video", "unsupported URL scheme"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str], make, message
) -> None:  # type: ignore[no-untyped-def]
    result = run_yttl(_args(server, make(tmp_path), tmp_path / "o", "-f", "json"), clean_env)
    assert result.returncode == 2, result.stderr
    _assert_one_line_error(result.stderr, message)
    assert server.state.calls == []


def _touch(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_an_unsupported_site_is_exit_2(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    server.state.files["page.html"] = b"<html><body>no video here</body></html>"
    result = run_yttl(_args(server, f"{server.url}/files/page.html", tmp_path), clean_env)
    assert result.returncode == 2, result.stderr
    _assert_one_line_error(result.stderr, "Unsupported URL")


def test_media_without_audio_and_captions(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    media = tmp_path / "silent.mkv"
    with av.open(str(media), "w") as container:
        stream = container.add_stream("mpeg4", rate=1)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    result = run_yttl(_args(server, media, tmp_path), clean_env)
    assert result.returncode == 2
    _assert_one_line_error(result.stderr, "no audio stream")


def test_a_missing_api_key_fails_before_any_work(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    info = episode(server, tmp_path)
    result = run_yttl([str(info), "-lp", "groq", "-o", str(tmp_path / "o"), "--no-open"], clean_env)
    assert result.returncode == 2
    _assert_one_line_error(result.stderr, "GROQ_API_KEY")
    assert server.state.file_requests == [] and not (tmp_path / "o").exists()


def test_a_local_server_needs_no_key(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """The README's profile example, with no LAB_API_KEY anywhere (llama.cpp, Ollama...)."""
    info = episode(server, tmp_path)
    clean_env.pop("OPENAI_API_KEY")
    result = run_yttl(
        [
            str(info),
            "-aop",
            "lab",
            "-lp",
            "lab",
            "--lab-base-url",
            server.openai_base_url,
            "--lab-model",
            "qwen",
            "-o",
            str(tmp_path / "o"),
            "-f",
            "json",
            "--no-open",
        ],
        clean_env,
    )
    assert result.returncode == 0, result.stderr
    assert {c.model for c in server.state.calls} == {"qwen"}


def test_an_unknown_model_stops_at_the_first_answer_with_one_line(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    body = json.dumps(
        {
            "error": {
                "message": "The model `gpt-4o-mimi` does not exist",
                "type": "invalid_request_error",
                "code": "model_not_found",
            }
        }
    )
    server.state.fault = lambda call: (404, {}, body.encode())
    info = synthetic_video(server, tmp_path, seconds=7200)
    result = run_yttl(
        _args(server, info, tmp_path / "o", "-om", "gpt-4o-mimi", "-f", "json"), clean_env
    )
    assert result.returncode == 2, result.stderr
    _assert_one_line_error(result.stderr, "gpt-4o-mimi")
    assert "has no model 'gpt-4o-mimi'" in result.stderr
    prompts = [c.user for c in server.state.calls]
    assert len(prompts) <= 16 and len(set(prompts)) == len(prompts)  # nothing retried


def test_a_refused_key_is_exit_1_without_traceback(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    info = episode(server, tmp_path)
    server.state.api_key = "the-right-key"
    result = run_yttl(_args(server, info, tmp_path / "o", "-f", "json"), clean_env)
    assert result.returncode == 1
    _assert_one_line_error(result.stderr, "API key was refused")
    assert clean_env["OPENAI_API_KEY"] not in result.stderr + result.stdout


def test_failed_sections_give_exit_3_and_are_marked(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    info = episode(server, tmp_path)
    server.state.fault = lambda call: (500, {}, b"{}") if "about sleep" in call.user else None
    result = run_yttl(
        _args(server, info, tmp_path, "-f", "json", "-f", "md", "-f", "html"), clean_env
    )
    assert result.returncode == 3, result.stderr
    assert "1/2 sections" in result.stderr and "1 failed (server)" in result.stderr
    doc = json.loads((tmp_path / f"{EPISODE}.json").read_text())
    assert [s["status"] for s in doc["hours"][0]["sections"]] == ["ok", "failed"]
    assert doc["failures"][0]["where"] == "section 1.2"
    assert doc["hours"][0]["missing_sections"] == ["1.2"]
    assert "Failed:" in (tmp_path / f"{EPISODE}.md").read_text()
    assert 'class="failed"' in (tmp_path / f"{EPISODE}.html").read_text()


def test_several_sources_keep_going_and_report_the_worst(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    good = episode(server, tmp_path)
    args = _args(server, tmp_path / "nope.mp4", tmp_path / "o", "-f", "json")
    result = run_yttl([*args, str(good)], clean_env)
    assert result.returncode == 2
    assert (tmp_path / "o" / f"{EPISODE}.json").exists()


def test_unknown_option_is_exit_2(clean_env: dict[str, str]) -> None:
    result = run_yttl(["--bogus", "x"], clean_env)
    assert result.returncode == 2
    _assert_one_line_error(result.stderr, "unrecognized arguments")


def test_a_profile_added_on_the_command_line(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    info = episode(server, tmp_path)
    clean_env["LOCALAI_API_KEY"] = "sk-localai-0123456789"
    server.state.api_key = "sk-localai-0123456789"
    args = [
        str(info),
        "-aop",
        "localai",
        "-lp",
        "localai",
        "--localai-model",
        "tiny",
        "--localai-base-url",
        server.openai_base_url,
        "-o",
        str(tmp_path),
        "-f",
        "json",
        "--no-open",
    ]
    result = run_yttl(args, clean_env)
    assert result.returncode == 0, result.stderr
    assert {c.model for c in server.state.calls} == {"tiny"}


def test_a_video_without_sponsor_segments_is_left_whole(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    info = episode(server, tmp_path)
    server.state.sponsor_segments["someOtherId"] = [{"segment": [0, 500], "category": "sponsor"}]
    args = _args(
        server,
        info,
        tmp_path,
        "-f",
        "txt",
        "--transcript-only",
        "-sb",
        "sponsor",
        "--sponsorblock-api",
        server.url,
    )
    result = run_yttl(args, clean_env)
    assert result.returncode == 0 and "SponsorBlock" not in result.stderr
    assert len(server.state.sponsor_requests) == 1
    assert (tmp_path / f"{EPISODE}.txt").read_text().startswith("[0:01]")


def test_ytdlp_pass_through_options() -> None:
    from yttl.sources.ytdlp import ytdlp_params

    params = ytdlp_params(
        cookies="c.txt",
        cookies_from_browser="firefox:work",
        extra={"socket_timeout": 30, "proxy": "socks5://127.0.0.1:1"},
    )
    assert params["cookiefile"] == "c.txt"
    assert params["cookiesfrombrowser"] == ("firefox", "work", None, None)
    assert params["socket_timeout"] == 30 and params["proxy"] == "socks5://127.0.0.1:1"
    assert "cookiefile" not in ytdlp_params()


def test_yt_dlp_option_values_are_parsed_as_json_when_they_are(clean_env: dict[str, str]) -> None:
    from yttl.cli.arguments import build_parser, flags_of

    ns = build_parser().parse_intermixed_args(
        ["x", "--yt-dlp-option", "socket_timeout=30", "--yt-dlp-option", "format=bestaudio"]
    )
    flags = flags_of(ns, [])
    assert flags["yt_dlp_options"] == {"socket_timeout": 30, "format": "bestaudio"}
    result = run_yttl(["x", "--yt-dlp-option", "novalue"], clean_env)
    assert result.returncode == 2 and "KEY=VALUE" in result.stderr


@pytest.mark.parametrize(
    ("ext", "body", "message"),
    [
        ("json3", b"{not json", "malformed json3 captions"),
        ("json3", b'{"events": {"a": 1}}', "malformed json3 captions"),
        ("vtt", b"00:00:01.000 --> 00:00:02.000\nno header\n", "malformed vtt captions"),
    ],
)
def test_malformed_caption_tracks_are_exit_2(
    server: LoopbackServer,
    tmp_path: Path,
    clean_env: dict[str, str],
    ext: str,
    body: bytes,
    message: str,
) -> None:
    info = episode(server, tmp_path)
    doc = json.loads(info.read_text())
    doc["subtitles"] = {"en": [{"ext": ext, "url": f"{server.url}/files/broken.{ext}"}]}
    doc["webpage_url"] = doc["original_url"] = ""  # no audio to fall back on
    info.write_text(json.dumps(doc))
    server.state.files[f"broken.{ext}"] = body
    result = run_yttl(_args(server, info, tmp_path / "o"), clean_env)
    assert result.returncode == 2
    _assert_one_line_error(result.stderr, message)
    assert server.state.calls == []


@pytest.mark.parametrize(
    ("ext", "body", "expected"),
    [
        (
            "srt",
            "1\n00:00:01,000 --> 00:00:04,000\n<i>Caf\xe9</i> &amp; <b>cr\xe8me</b>\n",
            "Café & crème",
        ),  # markup, entities and cp1252 bytes
        (
            "vtt",
            "WEBVTT\n\n00:00:01.000 --> 00:00:09.000\n" + "word " * 30_000 + "\n",
            "word word",
        ),  # one enormous line: split to fit the model, not a crash
    ],
)
def test_odd_but_valid_captions_are_read(
    server: LoopbackServer,
    tmp_path: Path,
    clean_env: dict[str, str],
    ext: str,
    body: str,
    expected: str,
) -> None:
    info = episode(server, tmp_path)
    doc = json.loads(info.read_text())
    doc["subtitles"] = {"en": [{"ext": ext, "url": f"{server.url}/files/odd.{ext}"}]}
    info.write_text(json.dumps(doc))
    server.state.files[f"odd.{ext}"] = body.encode("cp1252")
    result = run_yttl(
        _args(server, info, tmp_path / "o", "-f", "txt", "-f", "json", "--context-tokens", "8000"),
        clean_env,
    )
    assert result.returncode == 0, result.stderr
    assert expected in (tmp_path / "o" / f"{EPISODE}.txt").read_text()
    assert server.state.calls and all(len(c.user) < 8000 * 4 for c in server.state.calls)


def test_an_invalid_url_is_exit_2(clean_env: dict[str, str], tmp_path: Path) -> None:
    result = run_yttl(["https://", "-lp", "openai", "-o", str(tmp_path), "--no-open"], clean_env)
    assert result.returncode == 2
    _assert_one_line_error(result.stderr, "not a valid URL")


def test_an_info_file_without_duration_takes_it_from_the_captions(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    info = episode(server, tmp_path)
    doc = json.loads(info.read_text())
    doc.pop("duration")
    info.write_text(json.dumps(doc))
    result = run_yttl(_args(server, info, tmp_path / "o", "-f", "json", "-f", "txt"), clean_env)
    assert result.returncode == 0, result.stderr
    out = json.loads((tmp_path / "o" / f"{EPISODE}.json").read_text())
    assert 640 < out["video"]["duration"] <= 660 and out["transcript"]["segments"] > 100
    assert len((tmp_path / "o" / f"{EPISODE}.txt").read_text().splitlines()) > 100


def test_an_unwritable_output_folder_is_found_before_any_call(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    info = episode(server, tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run_yttl(_args(server, info, blocker / "out"), clean_env)
    assert result.returncode == 2
    _assert_one_line_error(result.stderr, "cannot write to the output folder")
    assert not server.state.calls and not server.state.file_requests


def test_outputs_get_the_users_umask_and_markdown_links_stay_links(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    import stat

    info_path = episode(server, tmp_path)
    info = json.loads(info_path.read_text())
    info["webpage_url"] = "https://example.org/watch?v=a b>c"  # a space and a > in the URL
    info["extractor_key"] = "Generic"
    info_path.write_text(json.dumps(info))
    out = tmp_path / "o"
    result = run_yttl(_args(server, info_path, out, "-f", "md", "-f", "html"), clean_env)
    assert result.returncode == 0, result.stderr
    umask = os.umask(0o022)
    os.umask(umask)
    for path in (out / f"{EPISODE}.md", out / f"{EPISODE}.html"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600
    markdown = (out / f"{EPISODE}.md").read_text()
    assert "<https://example.org/watch?v=a%20b%3Ec>" in markdown
    assert "a b>c" not in markdown


def test_unreadable_captions_fall_back_to_transcription_in_one_line(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    from tests.support.speech import ESPEAK, RATE, say, write_opus
    from tests.support.whisper import MODEL_DIR

    if ESPEAK is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    media = tmp_path / "speech.opus"
    spoken = say("Ask not what your country can do for you.", "en-us", 150, tmp_path)
    write_opus(np.concatenate([np.zeros(RATE // 2, np.float32), spoken]), media)
    (tmp_path / "speech.en.vtt").write_text("WEBVTT\n\n1 --> 2\nwords without a time\n")
    out = tmp_path / "o"
    result = run_yttl(
        [
            str(media),
            "--transcript-only",
            "-f",
            "txt",
            "-lwm",
            MODEL_DIR,
            "-o",
            str(out),
            "--no-open",
        ],
        clean_env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "transcribing the audio" in line]
    assert len(warnings) == 1 and "malformed vtt captions" in warnings[0]
    assert "what your country" in output_of(out, media, "txt").read_text().lower()


@pytest.mark.parametrize("broken", ["corrupt", "unwritable"])
def test_a_broken_cache_is_set_aside_with_a_warning_not_fatal(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str], broken: str
) -> None:
    info = episode(server, tmp_path)
    cache = tmp_path / "cache"
    if broken == "corrupt":
        cache.mkdir()
        (cache / "results.sqlite").write_bytes(b"this is not a database" * 200)
    else:
        cache.write_text("a file where the cache folder should be")
    result = run_yttl(
        _args(server, info, tmp_path / "o", "-f", "json", "--cache-dir", str(cache)), clean_env
    )
    assert result.returncode == 0, result.stderr
    warning = [line for line in result.stderr.splitlines() if "results cache" in line]
    assert len(warning) == 1 and "Traceback" not in result.stderr
    if broken == "corrupt":
        assert "set aside" in warning[0]
        assert any(p.name.startswith("results.sqlite.corrupt-") for p in cache.iterdir())
        assert (cache / "results.sqlite").stat().st_size > 0  # a fresh one, in use
    else:
        assert "running without it" in warning[0]


def test_help_is_grouped_and_a_captions_run_shows_no_audio_progress() -> None:
    from io import StringIO

    from rich.console import Console

    from yttl.cli import build_parser
    from yttl.cli.display import BatchDisplay
    from yttl.sources.playlists import BatchEntry

    text = build_parser().format_help()
    for group in (
        "input:",
        "summarization:",
        "transcription:",
        "resilience:",
        "performance and batches:",
        "output:",
    ):
        assert f"\n{group}\n" in text
    screen = StringIO()
    console = Console(file=screen, force_terminal=True, width=120)
    with BatchDisplay(console, True, 1) as display:
        line = display.video(BatchEntry("x", "A talk from captions"))
        for phase in ("resolve", "captions", "summarize"):
            line.phase(phase)
        line.progress("total", 26)
        line.progress("done", 13)
        display.progress.refresh()
        shown = screen.getvalue()
    assert "A talk from captions: summarizing" in shown and "13/26" in shown
    assert "transcribed" not in shown and "audio" not in shown
