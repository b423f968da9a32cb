"""Caption files as the world writes them (files the tests hold; no corpus needed)."""

from __future__ import annotations

import itertools

import pytest

from tests.support.caption_cases import CASES, CaptionCase
from yttl.errors import InputError
from yttl.sources.captions import decode_caption_bytes, parse_captions


@pytest.mark.parametrize("case", CASES, ids=[c.kind for c in CASES])
def test_real_world_caption_files_read_right(case: CaptionCase) -> None:
    text = decode_caption_bytes(case.data)
    ext = case.name.rsplit(".", 1)[1]
    if case.expected is None:
        with pytest.raises(InputError, match="malformed"):
            parse_captions(text, ext)
        return
    segments = parse_captions(text, ext)
    assert " | ".join(s.text for s in segments) == case.expected
    assert all(s.end > s.start for s in segments)  # valid in SRT and VTT as written
    assert all(a.end <= b.start for a, b in itertools.pairwise(segments))
