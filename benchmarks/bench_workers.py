"""How windows go through the model (issue 31), on the model alone: one batch of 8 over
both cores against two workers of one thread at batches of 4, 2 and 1; 16 windows of the
unseen speech, tiny.en int8, beam 4, each configuration in a fresh process (time and peak
RSS). ``--busy`` keeps one core busy with another process meanwhile.

    python -m benchmarks.bench_workers [--busy]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

CONFIGURATIONS = ((1, 2, 8), (2, 1, 4), (2, 1, 2), (2, 1, 1))  # workers, threads, batch

_ONE = """
import resource, sys, time
from concurrent.futures import ThreadPoolExecutor
import ctranslate2, numpy as np
from faster_whisper import WhisperModel, decode_audio
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_suppressed_tokens
from tests.support.whisper import MODEL_DIR

workers, threads, batch, path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
audio = decode_audio(path)
model = WhisperModel(MODEL_DIR, device="cpu", compute_type="int8", cpu_threads=threads,
                     num_workers=workers)
windows = [audio[(i % 7) * 480000 : (i % 7 + 1) * 480000] for i in range(16)]
tokenizer = Tokenizer(model.hf_tokenizer, False, task="transcribe", language="en")
prompt = model.get_prompt(tokenizer, [], without_timestamps=True)
suppressed = get_suppressed_tokens(tokenizer, [-1])

def run(group):
    features = np.stack([pad_or_trim(model.feature_extractor(w)[..., :-1]) for w in group])
    storage = ctranslate2.StorageView.from_array(np.ascontiguousarray(features))
    return model.model.generate(storage, [list(prompt)] * len(group), beam_size=4,
                                max_length=448, suppress_blank=True,
                                suppress_tokens=suppressed, return_scores=True)

run(windows[:1])
start = time.perf_counter()
with ThreadPoolExecutor(workers) as pool:
    list(pool.map(run, [windows[i : i + batch] for i in range(0, 16, batch)]))
seconds = time.perf_counter() - start
print(seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def main() -> None:
    from benchmarks.unseen_speech import build

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--busy", action="store_true", help="one core kept busy meanwhile")
    args = parser.parse_args()
    audio, _ = build(Path(tempfile.gettempdir()) / "yttl-bench", "licences", 24)
    spinner = None
    if args.busy:
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        for workers, threads, batch in CONFIGURATIONS:
            out = subprocess.run(
                [sys.executable, "-c", _ONE, str(workers), str(threads), str(batch), str(audio)],
                capture_output=True,
                text=True,
                check=True,
            )
            seconds, peak = map(float, out.stdout.split())
            print(
                f"{workers} worker(s) x {threads} thread(s), batches of {batch}: "
                f"{seconds:5.2f} s, peak {peak:4.0f} MB",
                flush=True,
            )
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()


if __name__ == "__main__":
    main()
