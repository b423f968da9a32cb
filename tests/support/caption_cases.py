"""Small caption files that reproduce what real-world tracks do, one class at a time.

Each case: its class, a file name (the extension picks the parser), the bytes, and the
text a reader must get out of it (segment texts joined by " | "), or None where the file
is truly broken and must be refused.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CaptionCase:
    kind: str
    name: str
    data: bytes
    expected: str | None


def _vtt(body: str) -> str:
    return "WEBVTT\n\n" + body


FILM_SRT = """1
00:00:01,000 --> 00:00:02,000
Sam!

2
00:00:02,500 --> 00:00:03,500
Sam!

3
00:00:04,000 --> 00:00:05,000
Thank you.

4
00:00:05,000 --> 00:00:06,000
Thank you.
You're welcome.
"""

YOUTUBE_ROLLING = _vtt("""Kind: captions
Language: en

00:00:00.000 --> 00:00:02.000 align:start position:0%
so<00:00:00.500><c> today</c><00:00:01.000><c> we</c>

00:00:02.000 --> 00:00:02.010 align:start position:0%
so today we

00:00:02.010 --> 00:00:04.000 align:start position:0%
so today we
talk<00:00:02.500><c> about</c><00:00:03.000><c> memory</c>

00:00:04.000 --> 00:00:04.010 align:start position:0%
talk about memory

00:00:04.010 --> 00:00:06.000 align:start position:0%
talk about memory
and<00:00:04.500><c> sleep</c>
""")

OLDER_ROLLING = _vtt("""00:00:00.000 --> 00:00:02.000
first line here

00:00:02.000 --> 00:00:04.000
first line here
second line now

00:00:04.000 --> 00:00:04.100
second line now

00:00:04.100 --> 00:00:06.000
second line now
third line comes

00:00:06.000 --> 00:00:06.100
third line comes

00:00:06.100 --> 00:00:08.000
third line comes
fourth and last
""")

SIMPLE = _vtt("00:00:01.000 --> 00:00:02.000\nhello there\n\n00:00:03.000 --> 00:00:04.000\n"
              "general kenobi\n")  # fmt: skip

TIMESTAMP_FORMS = _vtt("""intro-cue
01:02.500 --> 01:04.000
minutes only

00:01:05,000-->00:01:06,000 line:0
comma and no spaces

0:01:07.5 --> 0:01:08.25
short fractions

100:00:01.000 --> 100:00:02.000
past a hundred hours

NOTE a comment block
that spans lines

00:01:10.0001 --> 00:01:11.0000
long fractions
""")

MARKUP = _vtt("""00:00:01.000 --> 00:00:02.000
<v Roger Bingham>We are in New York City</v>

00:00:02.000 --> 00:00:03.000
<c.yellow.bg_blue>Styled</c> &amp; <i>italic</i> &lt;3 &nbsp;ok

00:00:03.000 --> 00:00:04.000
<ruby>漢<rt>kan</rt>字<rt>ji</rt></ruby> reading

00:00:04.000 --> 00:00:05.000
{\\an8}Sign on top
""")

ZERO_LENGTH = """1
00:00:01,000 --> 00:00:01,000
a flash

2
00:00:01,000 --> 00:00:02,000
then words

3
00:00:03,000 --> 00:00:04,000
same start one

4
00:00:03,000 --> 00:00:04,000
same start two
"""

SRV1 = ('<?xml version="1.0" encoding="utf-8" ?><transcript><text start="1.5" dur="2">'
        "hello &amp;amp; welcome</text><text start=\"4\" dur=\"1.5\">to the show</text>"
        "</transcript>")  # fmt: skip
SRV2 = ('<?xml version="1.0" encoding="utf-8" ?><timedtext><text t="1500" d="2000">'
        'hello</text><text t="4000" d="1500" w="1">to the show</text></timedtext>')  # fmt: skip
SRV3 = ('<?xml version="1.0" encoding="utf-8" ?><timedtext format="3"><head/><body>'
        '<p t="1500" d="2000" w="1"><s>hello</s><s t="300"> there</s></p>'
        '<p t="4000" d="1500"><s>to</s><s t="200"> the show</s></p></body></timedtext>')  # fmt: skip
TTML = ('<?xml version="1.0" encoding="utf-8" ?><tt xmlns="http://www.w3.org/ns/ttml" '
        'xml:lang="en"><body><div><p begin="00:00:01.500" end="00:00:03.500">hello<br/>'
        'there</p><p begin="4s" dur="1500ms"><span>to the show</span></p></div></body></tt>')  # fmt: skip
JSON3_LT = ('{"wireMagic": "pb3", "events": [{"tStartMs": 1000, "dDurationMs": 2000, '
            '"segs": [{"utf8": "x < y and y > z"}]}]}')  # fmt: skip

CASES = [
    CaptionCase(
        "dialogue said twice (film SRT)",
        "film.srt",
        FILM_SRT.encode(),
        "Sam! | Sam! | Thank you. | Thank you. You're welcome.",
    ),
    CaptionCase(
        "YouTube rolling auto-captions",
        "auto.vtt",
        YOUTUBE_ROLLING.encode(),
        "so today we | talk about memory | and sleep",
    ),
    CaptionCase(
        "older YouTube rolling layout with hold cues",
        "old.vtt",
        OLDER_ROLLING.encode(),
        "first line here | second line now | third line comes | fourth and last",
    ),
    CaptionCase(
        "UTF-32 LE with BOM", "a.vtt", SIMPLE.encode("utf-32"), "hello there | general kenobi"
    ),
    CaptionCase(
        "UTF-32 BE with BOM",
        "b.vtt",
        b"\x00\x00\xfe\xff" + SIMPLE.encode("utf-32-be"),
        "hello there | general kenobi",
    ),
    CaptionCase(
        "UTF-16 without BOM", "c.vtt", SIMPLE.encode("utf-16-le"), "hello there | general kenobi"
    ),
    CaptionCase(
        "legacy single-byte (Windows-1252)",
        "d.srt",
        "1\n00:00:01,000 --> 00:00:02,000\nCafé, señor – déjà vu\n".encode("cp1252"),
        "Café, señor – déjà vu",
    ),
    CaptionCase(
        "timestamp forms",
        "t.vtt",
        TIMESTAMP_FORMS.encode(),
        "minutes only | comma and no spaces | short fractions | long fractions | "
        "past a hundred hours",
    ),
    CaptionCase(
        "markup: voice, class, ruby, ASS, entities",
        "m.vtt",
        MARKUP.encode(),
        "We are in New York City | Styled & italic <3 ok | 漢字 reading | Sign on top",
    ),
    CaptionCase(
        "zero-length and same-start cues",
        "z.srt",
        ZERO_LENGTH.encode(),
        "a flash then words | same start one same start two",
    ),
    CaptionCase("srv1", "x.srv1", SRV1.encode(), "hello &amp; welcome | to the show"),
    CaptionCase("srv2", "x.srv2", SRV2.encode(), "hello | to the show"),
    CaptionCase("srv3", "x.srv3", SRV3.encode(), "hello there | to the show"),
    CaptionCase("ttml", "x.ttml", TTML.encode(), "hello there | to the show"),
    CaptionCase("json3 is plain text", "x.json3", JSON3_LT.encode(), "x < y and y > z"),
    CaptionCase(
        "broken: timings nobody can read",
        "bad.vtt",
        _vtt("1 --> 2\nwords without a time\n").encode(),
        None,
    ),
    CaptionCase("broken: not XML", "bad.ttml", b"<tt><body><p begin=", None),
]
