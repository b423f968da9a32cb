"""Caption files read right, by class (issue 11): the cases of
``tests/support/caption_cases.py`` through whichever ``yttl`` is on the path.

    python -m benchmarks.bench_captions [--json PATH]
    PYTHONPATH=OLD_CHECKOUT/src:. python -m benchmarks.bench_captions   # an older parser
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

from tests.support.caption_cases import CASES

from yttl.errors import InputError
from yttl.sources.captions import decode_caption_bytes, parse_captions


def read_right(data: bytes, ext: str, expected: str | None) -> bool:
    try:
        segments = parse_captions(decode_caption_bytes(data), ext)
    except InputError:
        return expected is None
    if expected is None:
        return False
    ordered = all(a.end <= b.start for a, b in itertools.pairwise(segments))
    valid = all(s.end > s.start for s in segments)
    return " | ".join(s.text for s in segments) == expected and ordered and valid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = {case.kind: read_right(case.data, case.name.rsplit(".", 1)[1], case.expected)
               for case in CASES}  # fmt: skip
    for kind, ok in results.items():
        print(f"{'right' if ok else 'WRONG':<6} {kind}")
    print(f"{sum(results.values())}/{len(results)} read right")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
