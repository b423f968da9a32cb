"""A lecture made here: slides of text rendered by ffmpeg's ``drawtext`` (DejaVu Sans,
from Debian's fonts-dejavu-core), crossfades between some of them, a stretch where a
"speaker" (a box) moves about, and speech by espeak-ng that never says the words that are
only on the slides. Shared by the slides tests and ``benchmarks/bench_slides.py``."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

__all__ = [
    "BUILDS",
    "FONT",
    "LECTURE",
    "NUMBERED",
    "SlideSpec",
    "make_builds",
    "make_lecture",
    "make_sitting",
    "make_still",
    "tools_missing",
]

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
RATE = 16_000
FPS = 10
SIZE = "640x360"


@dataclass(frozen=True)
class SlideSpec:
    """A slide as the viewer sees it: from ``start`` (where its transition begins)."""

    start: float
    lines: tuple[str, str]
    only_on_slide: str  # a word on the slide that is never spoken
    speech: str  # said while it is shown


# A fades into B; then the speaker moves about; C; C fades into D; a cut to E
LECTURE = (
    SlideSpec(
        0.0,
        ("Heat Engines", "Professor Halvorsen"),
        "Halvorsen",
        "Welcome. Today we talk about heat engines and how they turn heat into work.",
    ),
    SlideSpec(
        14.0,
        ("Carnot Cycle", "Quorvex Efficiency"),
        "Quorvex",
        "An ideal engine runs through four steps, two at constant temperature.",
    ),
    SlideSpec(
        40.0,
        ("Entropy", "Brimstad Inequality"),
        "Brimstad",
        "Entropy never decreases in a closed system, whatever the engine does.",
    ),
    SlideSpec(
        53.0,
        ("Summary", "Zephyrine Theorem"),
        "Zephyrine",
        "So the best efficiency depends only on the two temperatures.",
    ),
    SlideSpec(
        67.0,
        ("Questions", "Marlowe Institute"),
        "Marlowe",
        "Thank you for listening. Please send me your questions.",
    ),
)
SPEAKER = (28.0, 40.0, "Let me step away from the slides and explain this with my hands.")
DURATION = 77.0


def tools_missing() -> str | None:
    """Why the lecture cannot be made here, or None."""
    for tool in ("ffmpeg", "espeak-ng"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not FONT.is_file():
        return f"{FONT} is missing (apt-get install fonts-dejavu-core)"
    return None


_SAME = f"format=yuv420p,settb=1/{FPS},setpts=N,setsar=1"  # what xfade and concat need


def _slide(lines: tuple[str, str], seconds: float) -> str:
    text = ",".join(
        f"drawtext=fontfile={FONT}:text='{line}':fontsize={48 - 8 * i}:fontcolor=black"
        f":x=(w-text_w)/2:y={110 + 100 * i}"
        for i, line in enumerate(lines)
    )
    return f"color=c=white:s={SIZE}:r={FPS}:d={seconds},{text},{_SAME}"


def _speaker(seconds: float) -> str:
    return (
        f"color=c=0x556677:s={SIZE}:r={FPS}:d={seconds}[bg];"
        f"color=c=0xd2a679:s=140x220:r={FPS}:d={seconds}[body];"
        "[bg][body]overlay=x='250+180*sin(2*PI*t/3)':y='90+30*sin(2*PI*t/1.3)':shortest=1,"
        f"{_SAME}"
    )


def _speech(parts: list[tuple[float, str]], seconds: float, folder: Path) -> Path:
    """Each sentence spoken from its moment, over silence, as a WAV file."""
    track = np.zeros(int(seconds * RATE), dtype=np.float32)
    for at, text in parts:
        wav = folder / "say.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(wav), text], check=True)
        with av.open(str(wav)) as container:
            resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
            pieces = [
                out.to_ndarray().reshape(-1)
                for frame in container.decode(audio=0)
                for out in resampler.resample(frame)
            ]
        said = np.concatenate(pieces)[: len(track) - int(at * RATE)]
        track[int(at * RATE) : int(at * RATE) + len(said)] += said * 0.8
    path = folder / "speech.wav"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=RATE)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(
            (np.clip(track, -1, 1) * 32767).astype(np.int16)[None, :], format="s16", layout="mono"
        )
        frame.rate = RATE
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return path


def _encode(graph: str, out: str, audio: Path, path: Path) -> None:
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-i",
            str(audio),
            "-filter_complex",
            graph,
            "-map",
            f"[{out}]",
            "-map",
            "0:a",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "20",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "48k",
            "-shortest",
            str(path),
        ],
        check=True,
    )


def make_lecture(path: Path) -> Path:
    """The lecture of ``LECTURE`` (77 s at 640x360, 10 fps) as an MP4 at ``path``."""
    a, b, c, d, e = LECTURE
    graph = ";".join(
        [
            f"{_slide(a.lines, 15)}[a]",
            f"{_slide(b.lines, 14)}[b]",
            f"[a][b]xfade=transition=fade:duration=1:offset=14,{_SAME}[ab]",
            f"{_speaker(12)}[m]",
            f"{_slide(c.lines, 14)}[c]",
            f"[ab][m][c]concat=n=3:v=1:a=0,{_SAME}[abmc]",
            f"{_slide(d.lines, 14)}[d]",
            f"[abmc][d]xfade=transition=fade:duration=1:offset=53,{_SAME}[abmcd]",
            f"{_slide(e.lines, 10)}[e]",
            "[abmcd][e]concat=n=2:v=1:a=0[lecture]",
        ]
    )
    with tempfile.TemporaryDirectory() as tmp:
        parts = [(s.start + 0.5, s.speech) for s in LECTURE] + [(SPEAKER[0] + 0.5, SPEAKER[2])]
        _encode(graph, "lecture", _speech(parts, DURATION, Path(tmp)), path)
    return path


def make_still(path: Path, *, moving: bool, seconds: float = 12.0) -> Path:
    """A talking head (the box moving all along, ``moving``) or a podcast's still picture,
    with speech, and its captions beside it (``NAME.en.vtt``: no transcription needed)."""
    if moving:
        graph = f"{_speaker(seconds)}[v]"
    else:
        graph = f"{_slide(('The Weekly Podcast', 'Episode Twelve'), seconds)}[v]"
    text = "This week we talk about gardens, the weather and the trains that run late."
    with tempfile.TemporaryDirectory() as tmp:
        _encode(graph, "v", _speech([(1.0, text)], seconds, Path(tmp)), path)
    cue = f"00:00:01.000 --> 00:00:{int(seconds) - 1:02d}.000"
    path.with_suffix(".en.vtt").write_text(f"WEBVTT\n\n{cue}\n{text}\n")
    return path


# Black first; a slide built up a line at a time; then slides of the same layout that
# differ by a line, then by one word: what a real deck does, in a few pixels each time
BUILDS = (
    (0.0, ()),
    (3.0, ("Methods", "- Ardwell sampling")),
    (9.0, ("Methods", "- Ardwell sampling", "- Bexhill weighting")),
    (15.0, ("Methods", "- Corran pruning")),
    (21.0, ("Methods", "- Dunmore pruning")),
)
BUILDS_END = 27.0
# Numbered slides of one layout: one digit apart (a fraction of a per cent of the picture)
NUMBERED = tuple((6.0 * k, ("Proof of the Lemma", f"Step {k + 3} of 9")) for k in range(4))


def make_builds(
    path: Path, deck: tuple[tuple[float, tuple[str, ...]], ...] = BUILDS, end: float = BUILDS_END
) -> Path:
    """A deck, ``BUILDS`` by default (640x360, 10 fps, silent), with its captions beside it."""
    parts, labels = [], []
    ends = [start for start, _ in deck[1:]] + [end]
    for i, ((start, lines), stop) in enumerate(zip(deck, ends, strict=True)):
        text = "".join(
            f",drawtext=fontfile={FONT}:text='{line}':fontsize={30 if j == 0 else 20}"
            f":fontcolor=black:x=40:y={30 + 50 * j}"
            for j, line in enumerate(lines)
        )
        colour = "white" if lines else "black"
        parts.append(f"color=c={colour}:s={SIZE}:r={FPS}:d={stop - start}{text},{_SAME}[s{i}]")
        labels.append(f"[s{i}]")
    graph = ";".join(parts) + ";" + "".join(labels) + f"concat=n={len(labels)}:v=1:a=0[v]"
    with tempfile.TemporaryDirectory() as tmp:
        _encode(graph, "v", _speech([], ends[-1], Path(tmp)), path)
    cue = f"00:00:01.000 --> 00:00:{int(ends[-1]) - 1:02d}.000"
    path.with_suffix(".en.vtt").write_text(f"WEBVTT\n\n{cue}\nLet us look at the methods.\n")
    return path


def make_sitting(path: Path, seconds: float = 24.0) -> Path:
    """A speaker who sits still and shifts a little every 3 s: a few pixels each time, never
    a slide (silent, 640x360)."""
    graph = (
        f"color=c=0x556677:s={SIZE}:r={FPS}:d={seconds}[bg];"
        f"color=c=0xd2a679:s=140x220:r={FPS}:d={seconds}[body];"
        f"[bg][body]overlay=x='250+2*floor(t/3)':y=90:shortest=1,{_SAME}[v]"
    )
    with tempfile.TemporaryDirectory() as tmp:
        _encode(graph, "v", _speech([], seconds, Path(tmp)), path)
    return path
