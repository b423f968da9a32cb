"""Embeddings in-process from a GGUF model with llama-cpp-python.

The default is multilingual-e5-small (Q8_0): 94 languages, 118 M parameters (fast on two
cores), among the best retrieval scores of its size, and a BERT (XLM-R) model that
llama.cpp runs since August 2024. e5 wants its texts prefixed ``query: `` and
``passage: ``; other models get the texts as they are."""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from yttl.embed.base import EmbeddingKind, Vectors, normalized
from yttl.errors import InputError, MissingDependencyError, NetworkError, ProcessingError

__all__ = ["DEFAULT_EMBED_FILE", "DEFAULT_EMBED_REPO", "LocalEmbedder", "local_model_file"]

logger = logging.getLogger(__name__)

DEFAULT_EMBED_REPO = "TwinSunsLLC/multilingual-e5-small-gguf"
DEFAULT_EMBED_FILE = "*Q8_0.gguf"  # the file of that quantization, whatever its name
PREFIXES = {"query": "query: ", "passage": "passage: "}


def local_model_file(spec: str | None, cache_dir: str | None) -> Path:
    """A GGUF path, or ``REPO`` / ``REPO:FILE-PATTERN`` on the hub (downloaded once)."""
    if spec and Path(spec).expanduser().is_file():
        return Path(spec).expanduser()
    if spec and spec.endswith(".gguf") and "/" not in spec.split(":")[0].strip("/"):
        raise InputError(f"no such embedding model file: {spec}")
    repo, _, pattern = (spec or DEFAULT_EMBED_REPO).partition(":")
    pattern = pattern or DEFAULT_EMBED_FILE
    import platformdirs
    from huggingface_hub import hf_hub_download, list_repo_files, scan_cache_dir

    cache = Path(cache_dir or platformdirs.user_cache_dir("yttl")) / "models"
    try:  # already here: no network at all
        for repo_info in scan_cache_dir(cache).repos:
            if repo_info.repo_id == repo:
                for revision in repo_info.revisions:
                    for file in revision.files:
                        if fnmatch.fnmatch(file.file_name.lower(), pattern.lower()):
                            return Path(file.file_path)
    except Exception:
        pass
    try:
        _reachable()
        names = [n for n in list_repo_files(repo) if fnmatch.fnmatch(n.lower(), pattern.lower())]
        if not names:
            raise InputError(f"the hub's {repo} has no file like {pattern}",
                             hint="give --embed-model REPO:FILE, or a GGUF path")  # fmt: skip
        logger.warning("downloading the embedding model %s, once, into %s", names[0], cache)
        return Path(hf_hub_download(repo, names[0], cache_dir=str(cache)))
    except InputError:
        raise
    except Exception as exc:
        raise NetworkError(f"cannot download the embedding model {repo}: {type(exc).__name__}",
                           hint="give a GGUF file with --embed-model PATH, use "
                           "--embed-provider openai, or --no-embed") from exc  # fmt: skip


def _reachable(seconds: float = 3.0) -> None:
    """A quick look before the hub client's retries (which take half a minute offline)."""
    import os
    import socket
    from urllib.parse import urlsplit

    from huggingface_hub import constants

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise OSError("HF_HUB_OFFLINE is set")
    parts = urlsplit(constants.ENDPOINT)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    with socket.create_connection((parts.hostname or "", port), timeout=seconds):
        pass


class LocalEmbedder:
    """One llama.cpp model, used from one thread at a time, off the event loop."""

    def __init__(self, path: Path, *, threads: int | None = None,
                 prefixes: bool | None = None) -> None:  # fmt: skip
        try:
            import llama_cpp
        except ImportError as exc:
            raise MissingDependencyError(
                "local embeddings need llama-cpp-python",
                hint="pip install -e '.[local]' in yttl's checkout, or --embed-provider openai",
            ) from exc
        self.path = path
        self.name = f"local:{path.name}"
        self._prefixes = "e5" in path.name.lower() if prefixes is None else prefixes
        self._lock = threading.Lock()
        try:
            self._model: Any = llama_cpp.Llama(model_path=str(path), embedding=True, n_ctx=512,
                                               n_threads=threads, verbose=False)  # fmt: skip
        except Exception as exc:
            raise ProcessingError(f"cannot load the embedding model {path}: {exc}") from exc

    def _embed(self, texts: list[str]) -> Vectors:
        with self._lock:
            rows = []
            for text in texts:  # one at a time: a batch of long texts overflows the context
                vector = self._model.embed(text, truncate=True)
                if vector and isinstance(vector[0], list):  # a vector per token: mean-pool
                    import numpy as np

                    vector = np.mean(np.asarray(vector, dtype=np.float32), axis=0).tolist()
                rows.append(vector)
        return normalized(rows)

    async def embed(self, texts: Sequence[str], kind: EmbeddingKind) -> Vectors:
        prefix = PREFIXES[kind] if self._prefixes else ""
        return await asyncio.to_thread(self._embed, [prefix + t for t in texts])

    async def aclose(self) -> None:
        self._model = None
