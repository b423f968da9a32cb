"""Embeddings in-process from a GGUF model with llama-cpp-python.

The default is EmbeddingGemma 300M (Google's, as ggml-org, the llama.cpp project, packs it
in GGUF: Q8_0, 334 MB): 100+ languages, 768 numbers a vector, among the best retrieval
scores under 500 M parameters. It is fetched once, at a pinned revision, and its sha256
is checked before it is used. Each model family wants its own query and passage prefixes
(e5 ``query: ``, EmbeddingGemma ``task: search result | query: ``, nomic
``search_query: ``); other models get the texts as they are."""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yttl.embed.base import EmbeddingKind, Vectors, normalized
from yttl.errors import InputError, MissingDependencyError, NetworkError, ProcessingError
from yttl.library.model import EmbedModel

__all__ = ["DEFAULT_MODEL", "HubModel", "LocalEmbedder", "local_model_file", "prefixes_for"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HubModel:
    """A GGUF file on the hub, pinned: where, which revision, and what it must hash to."""

    label: str
    repo: str
    file: str
    revision: str
    sha256: str
    size: int  # bytes, said before the download

    @property
    def megabytes(self) -> int:
        return round(self.size / 1e6)


DEFAULT_MODEL = HubModel(
    label="EmbeddingGemma 300M (Q8_0; Google's model, packed by ggml-org)",
    repo="ggml-org/embeddinggemma-300M-GGUF",
    file="embeddinggemma-300M-Q8_0.gguf",
    revision="0f741b5a6585bd53aeb15cd1372c56f2a0f65e12",
    sha256="b5ce9d77a3fc4b3b39ccb5643c36777911cc4eb46a66962eadfa3f5f60490d63",
    size=333_590_944,
)

PREFIXES: dict[str, dict[EmbeddingKind, str]] = {
    "embeddinggemma": {"query": "task: search result | query: ", "passage": "title: none | text: "},
    "e5": {"query": "query: ", "passage": "passage: "},
    "nomic": {"query": "search_query: ", "passage": "search_document: "},
}


def prefixes_for(file_name: str) -> dict[EmbeddingKind, str]:
    """The prefixes a model's family was trained with, by its file's name."""
    name = file_name.lower()
    for family, prefixes in PREFIXES.items():
        if family in name:
            return prefixes
    return {"query": "", "passage": ""}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _default_model(cache: Path) -> Path:
    """The default model: from yttl's cache or the user's hub cache when it is there (no
    network at all), else fetched once, announced first, and checked."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    model = DEFAULT_MODEL
    for where in (str(cache), None):  # None: the hub's own cache (HF_HUB_CACHE, HF_HOME)
        found = try_to_load_from_cache(
            model.repo, model.file, cache_dir=where, revision=model.revision
        )
        if isinstance(found, str):
            return Path(found)
    _reachable()
    logger.warning(
        "downloading the embedding model %s, %d MB, once, into %s (--no-embed, "
        "or embed_provider, to do without it)",
        model.label,
        model.megabytes,
        cache,
    )
    path = Path(
        hf_hub_download(model.repo, model.file, revision=model.revision, cache_dir=str(cache))
    )
    if _sha256(path) != model.sha256:
        _forget(path)
        raise NetworkError(
            f"the downloaded {model.file} is not the file it should be "
            f"(sha256 differs); removed it from {cache}",
            hint="run again to fetch it anew",
        )
    return path


def _forget(path: Path) -> None:
    """A file of the hub's cache gone for good: its snapshot's link and the blob it
    points to (else the hub client links the same bad blob again, not fetching it)."""
    blob = path.resolve()
    path.unlink(missing_ok=True)
    blob.unlink(missing_ok=True)


def local_model_file(spec: str | None, cache_dir: str | None) -> Path:
    """A GGUF path, ``REPO`` / ``REPO:FILE-PATTERN`` on the hub (downloaded once), or
    the default (None)."""
    if spec and Path(spec).expanduser().is_file():
        return Path(spec).expanduser()
    if spec and spec.endswith(".gguf") and "/" not in spec.split(":")[0].strip("/"):
        raise InputError(f"no such embedding model file: {spec}")
    import platformdirs

    cache = Path(cache_dir or platformdirs.user_cache_dir("yttl")) / "models"
    try:
        if spec is None:
            return _default_model(cache)
        return _hub_pattern(spec, cache)
    except (InputError, NetworkError):
        raise
    except Exception as exc:
        why = (
            "the model hub cannot be reached (offline?) and it is not in the cache"
            # no connection, no such host, HF_HUB_OFFLINE; not a hub that answered
            if isinstance(exc, OSError) and getattr(exc, "response", None) is None
            else type(exc).__name__
        )
        raise NetworkError(
            f"cannot download the embedding model {spec or DEFAULT_MODEL.repo}: {why}",
            hint="--embed-model PATH.gguf, --embed-provider openai|PROFILE, or --no-embed",
        ) from exc


def _hub_pattern(spec: str, cache: Path) -> Path:
    from huggingface_hub import constants, hf_hub_download, list_repo_files

    repo, _, pattern = spec.partition(":")
    pattern = pattern or "*Q8_0.gguf"  # the file of that quantization, whatever its name
    for where in (cache, Path(constants.HF_HUB_CACHE)):  # already here: no network at all
        found = _cached(where, repo, pattern)
        if found is not None:
            return found
    _reachable()
    names = [n for n in list_repo_files(repo) if fnmatch.fnmatch(n.lower(), pattern.lower())]
    if not names:
        raise InputError(
            f"the hub's {repo} has no file like {pattern}",
            hint="give --embed-model REPO:FILE, or a GGUF path",
        )
    logger.warning(
        "downloading the embedding model %s from %s, once, into %s", names[0], repo, cache
    )
    return Path(hf_hub_download(repo, names[0], cache_dir=str(cache)))


def _cached(cache: Path, repo: str, pattern: str) -> Path | None:
    from huggingface_hub import scan_cache_dir

    try:
        for repo_info in scan_cache_dir(cache).repos:
            if repo_info.repo_id == repo:
                for revision in repo_info.revisions:
                    for file in revision.files:
                        if fnmatch.fnmatch(file.file_name.lower(), pattern.lower()):
                            return Path(file.file_path)
    except Exception:  # no cache there, or one the scan cannot read: not found
        return None
    return None


def _reachable(seconds: float = 3.0) -> None:
    """A quick look before the hub client's retries (which take half a minute offline):
    the hub, or the proxy the environment names for it (``HTTPS_PROXY``, ``NO_PROXY``),
    as the hub client itself will connect."""
    import os
    import socket
    import urllib.request
    from urllib.parse import urlsplit

    from huggingface_hub import constants

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise OSError("HF_HUB_OFFLINE is set")
    parts = urlsplit(constants.ENDPOINT)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
        parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    with socket.create_connection((parts.hostname or "", port), timeout=seconds):
        pass


class LocalEmbedder:
    """One llama.cpp model, used from one thread at a time, off the event loop."""

    def __init__(
        self,
        path: Path,
        *,
        spec: str | None = "",
        threads: int | None = None,
        prefixes: bool | None = None,
    ) -> None:
        """``spec``: the ``--embed-model`` it was found by, to find it again for the
        library (None: the default model; "": ``path`` itself)."""
        try:
            import llama_cpp
        except ImportError as exc:
            raise MissingDependencyError(
                "local embeddings need llama-cpp-python",
                hint="pip install -e '.[local]' in yttl's checkout, or --embed-provider openai",
            ) from exc
        self.path = path
        self.name = f"local:{path.name}"
        self.identity = EmbedModel(self.name, "local", str(path) if spec == "" else spec)
        self._prefixes: dict[EmbeddingKind, str] = (
            prefixes_for(path.name) if prefixes is not False else {}
        )
        self._lock = threading.Lock()
        try:
            self._model: Any = llama_cpp.Llama(
                model_path=str(path), embedding=True, n_ctx=512, n_threads=threads, verbose=False
            )
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
        prefix = self._prefixes.get(kind, "")
        return await asyncio.to_thread(self._embed, [prefix + t for t in texts])

    async def aclose(self) -> None:
        self._model = None
