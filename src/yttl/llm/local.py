"""Local GGUF models in-process with llama-cpp-python (the ``local`` extra).

A ``Llama`` object is not thread-safe, so each worker thread owns exactly one instance
and takes jobs from a shared queue; the engine awaits a future per job. How many
instances, and how many threads each, is decided before anything loads: from the GGUF's
own metadata (weights plus the KV cache for the context) against free memory and
``--memory-limit-mb``, and from the cores.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from yttl.errors import (
    InputError,
    MissingDependencyError,
    NetworkError,
    ProcessingError,
    ResourceError,
)
from yttl.llm.base import Completion, Message, TextSink

__all__ = [
    "DEFAULT_MODEL_FILE",
    "DEFAULT_MODEL_GB",
    "DEFAULT_MODEL_REPO",
    "LocalLlamaProvider",
    "ModelFootprint",
    "build_local_provider",
    "plan_instances",
    "read_footprint",
]

logger = logging.getLogger(__name__)

# Llama 3.2 3B Instruct at Q4_K_M: 2.0 GB, follows summarization instructions well,
# about 10 tokens a second on a 4-core laptop CPU. Bigger: -lmr/-lmf or --local-model-path.
DEFAULT_MODEL_REPO = "bartowski/Llama-3.2-3B-Instruct-GGUF"
DEFAULT_MODEL_FILE = "Llama-3.2-3B-Instruct-Q4_K_M.gguf"
DEFAULT_MODEL_GB = 2.0
DEFAULT_CONTEXT = 8192
GGUF_HINT = (
    "give a .gguf model file (such as Llama-3.2-3B-Instruct-Q4_K_M.gguf) with "
    "--local-model-path, leave it out for the default model, or use an API provider (-lp openai)"
)
COMPUTE_BUFFER_MB = 160  # llama.cpp's scratch buffers at the default batch size


@dataclass(frozen=True)
class ModelFootprint:
    """What one loaded instance costs, from the GGUF header."""

    file_mb: float
    kv_mb: float
    context_tokens: int
    train_context: int
    has_chat_template: bool

    @property
    def instance_mb(self) -> float:
        return self.file_mb + self.kv_mb + COMPUTE_BUFFER_MB


def read_footprint(path: Path, context_tokens: int | None = None) -> ModelFootprint:
    """Read the GGUF metadata (vocabulary only, no weights) and size the KV cache."""
    from llama_cpp import Llama

    try:
        probe = Llama(model_path=str(path), vocab_only=True, verbose=False)
    except (ValueError, RuntimeError) as exc:
        raise InputError(
            f"{path} is not a GGUF model llama.cpp can read: {exc}", hint=GGUF_HINT
        ) from exc
    meta: dict[str, str] = dict(probe.metadata)
    probe.close()
    arch = meta.get("general.architecture", "llama")

    def number(key: str, default: int) -> int:
        try:
            return int(meta.get(f"{arch}.{key}", default))
        except ValueError:
            return default

    train_context = number("context_length", DEFAULT_CONTEXT)
    n_ctx = min(context_tokens or DEFAULT_CONTEXT, train_context)
    layers = number("block_count", 32)
    heads = number("attention.head_count", 32)
    kv_heads = number("attention.head_count_kv", heads)
    head_dim = number("attention.key_length", number("embedding_length", 4096) // max(heads, 1))
    kv_bytes = 2 * layers * n_ctx * kv_heads * head_dim * 2  # K and V, f16
    return ModelFootprint(
        file_mb=path.stat().st_size / 2**20,
        kv_mb=kv_bytes / 2**20,
        context_tokens=n_ctx,
        train_context=train_context,
        has_chat_template="tokenizer.chat_template" in meta,
    )


@dataclass(frozen=True)
class InstancePlan:
    instances: int
    threads: int
    reason: str


def plan_instances(
    footprint: ModelFootprint,
    *,
    available_mb: float,
    cores: int,
    memory_limit_mb: int | None = None,
    instances: int | None = None,
    threads: int | None = None,
) -> InstancePlan:
    """Instances that fit the memory budget, threads that share the cores among them."""
    budget = available_mb * 0.8
    if memory_limit_mb is not None:
        budget = min(budget, memory_limit_mb)
    fits = int(budget // footprint.instance_mb)
    if fits < 1:
        raise ResourceError(
            f"the local model needs about {footprint.instance_mb:.0f} MB "
            f"({footprint.file_mb:.0f} MB of weights, {footprint.kv_mb:.0f} MB of KV cache for "
            f"{footprint.context_tokens} tokens) but only {budget:.0f} MB may be used",
            hint="pick a smaller model (-lmr/-lmf), a smaller --context-tokens, raise "
            "--memory-limit-mb, or use an API provider (-lp openai|groq|...)",
        )
    # Measured on 2 cores with Gemma 3 270M: two instances of one thread were no faster
    # than one of two (0.89x to 1.1x, within noise) and need twice the memory.
    count = instances or 1
    if count > fits:
        raise ResourceError(
            f"{count} local model instances need {count * footprint.instance_mb:.0f} MB; "
            f"{budget:.0f} MB may be used (room for {fits})",
            hint="lower --local-llm-instances or raise --memory-limit-mb",
        )
    per = threads or max(1, cores // count)
    return InstancePlan(count, per, f"{fits} fit in {budget:.0f} MB; {cores} cores")


@dataclass
class _Job:
    messages: Sequence[Message]
    max_tokens: int
    future: Future[Completion] = field(default_factory=Future)
    on_text: TextSink | None = None  # streamed: called in the worker's thread, per piece
    stop: threading.Event = field(default_factory=threading.Event)  # the reader left


_STOP = object()


class LocalLlamaProvider:
    """The ``LLMProvider`` for a GGUF file, served by a pool of single-owner workers."""

    name = "local"

    def __init__(
        self,
        model_path: Path,
        footprint: ModelFootprint,
        plan: InstancePlan,
        *,
        temperature: float = 0.2,
        seed: int = 0,
    ) -> None:
        self.model = model_path.name
        self.model_path = model_path
        self.context_tokens = footprint.context_tokens
        self.footprint = footprint
        self.plan = plan
        self._temperature = temperature
        self._seed = seed
        self._jobs: queue.Queue[Any] = queue.Queue()
        self._workers: list[threading.Thread] = []
        self._start_lock = threading.Lock()
        self._loaded_lock = threading.Lock()
        self._loaded = 0
        self._ready: Future[None] | None = None
        self.owners: dict[int, str] = {}  # id(instance) -> the one thread that used it
        self.served = 0  # jobs generated (cancelled ones are skipped, not counted)

    def _ensure_started(self) -> None:
        """Start the workers once; every caller waits until all instances have loaded."""
        with self._start_lock:
            if self._ready is None:
                self._ready = Future()
                for index in range(self.plan.instances):
                    worker = threading.Thread(
                        target=self._serve, name=f"yttl-llama-{index}", daemon=True
                    )
                    worker.start()
                    self._workers.append(worker)
            ready = self._ready
        ready.result()  # raises if an instance could not load

    def _load(self) -> Any:
        from llama_cpp import Llama

        try:
            return Llama(
                model_path=str(self.model_path),
                n_ctx=self.context_tokens,
                n_threads=self.plan.threads,
                n_threads_batch=self.plan.threads,
                seed=self._seed,
                verbose=False,
            )
        except (ValueError, RuntimeError, MemoryError) as exc:
            raise ResourceError(f"cannot load {self.model_path.name}: {exc}") from exc

    def _serve(self) -> None:
        ready = self._ready
        assert ready is not None
        try:
            llama = self._load()
        except BaseException as exc:
            with self._loaded_lock:
                if not ready.done():
                    ready.set_exception(exc)
            return
        with self._loaded_lock:
            self._loaded += 1
            if self._loaded == self.plan.instances and not ready.done():
                ready.set_result(None)
        me = threading.current_thread().name
        try:
            while True:
                job = self._jobs.get()
                if job is _STOP:
                    return
                if not job.future.set_running_or_notify_cancel():
                    continue  # cancelled while queued (Ctrl-C): skip it
                owner = self.owners.setdefault(id(llama), me)
                if owner != me:  # pragma: no cover - would be a bug in this class
                    job.future.set_exception(ProcessingError("model instance shared by threads"))
                    continue
                try:
                    self.served += 1
                    job.future.set_result(self._generate(llama, job))
                except BaseException as exc:
                    job.future.set_exception(
                        exc
                        if isinstance(exc, ProcessingError | ResourceError)
                        else ProcessingError(f"local model failed: {type(exc).__name__}: {exc}")
                    )
        finally:
            llama.close()

    def _fit(self, llama: Any, messages: Sequence[Message], max_tokens: int) -> list[Message]:
        """Make the prompt leave room for the answer. The earlier turns between the system
        text and the last message give way first, oldest first and a pair at a time; then
        the middle of the last message: its start says what it holds and its end may be
        the question (chat's budget guesses tokens; some languages take twice as many)."""
        room = self.context_tokens - max_tokens - 16

        def size(candidate: Sequence[Message]) -> tuple[int, str]:
            text = "\n".join(m.content for m in candidate)
            return len(llama.tokenize(text.encode(), add_bos=True)) + 16 * len(candidate), text

        fitted = list(messages)
        used, text = size(fitted)
        if used <= room:
            return fitted
        logger.warning(
            "a prompt of ~%d tokens does not fit the local model's %d; trimmed",
            used,
            self.context_tokens,
        )
        first = 1 if len(fitted) > 1 and fitted[0].role == "system" else 0
        while used > room and len(fitted) - first > 1:
            del fitted[first : min(first + 2, len(fitted) - 1)]
            used, text = size(fitted)
        for _ in range(4):  # the estimate by characters is close; measured again
            if used <= room:
                break
            last = fitted[-1].content
            keep = max(len(last) - int((used - room) * len(text) / max(used, 1)) - 64, 0)
            half = keep // 2
            cut = last[: keep - half] + "\n…\n" + last[len(last) - half :] if half else ""
            fitted[-1] = Message(fitted[-1].role, cut)
            used, text = size(fitted)
        return fitted

    def _generate(self, llama: Any, job: _Job) -> Completion:
        messages = self._fit(llama, job.messages, job.max_tokens)
        if job.on_text is not None:
            return self._stream(llama, job, messages)
        if self.footprint.has_chat_template:
            response = llama.create_chat_completion(
                messages=[{"role": m.role, "content": m.content} for m in messages],
                max_tokens=job.max_tokens,
                temperature=self._temperature,
            )
            text = response["choices"][0]["message"]["content"] or ""
        else:  # a GGUF without a chat template: a plain prompt it can continue
            prompt = "".join(f"### {m.role.capitalize()}:\n{m.content}\n\n" for m in messages)
            response = llama.create_completion(
                prompt=prompt + "### Assistant:\n",
                max_tokens=job.max_tokens,
                temperature=self._temperature,
                stop=["### "],
            )
            text = response["choices"][0]["text"] or ""
        usage = response.get("usage", {})
        if not text.strip():
            raise ProcessingError("the local model returned no text")
        return Completion(
            text.strip(), usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
        )

    def _stream(self, llama: Any, job: _Job, messages: Sequence[Message]) -> Completion:
        """``stream=True``: each piece to ``job.on_text`` as llama.cpp writes it; a reader
        that left stops the generation at the next piece."""
        assert job.on_text is not None
        if self.footprint.has_chat_template:
            chunks = llama.create_chat_completion(
                messages=[{"role": m.role, "content": m.content} for m in messages],
                max_tokens=job.max_tokens,
                temperature=self._temperature,
                stream=True,
            )
        else:
            prompt = "".join(f"### {m.role.capitalize()}:\n{m.content}\n\n" for m in messages)
            chunks = llama.create_completion(
                prompt=prompt + "### Assistant:\n",
                max_tokens=job.max_tokens,
                temperature=self._temperature,
                stop=["### "],
                stream=True,
            )
        pieces: list[str] = []
        for chunk in chunks:
            if job.stop.is_set():
                raise ProcessingError("the reader of the stream left")
            choice = chunk["choices"][0]
            piece = (choice.get("delta") or {}).get("content") or choice.get("text") or ""
            if piece:
                pieces.append(piece)
                job.on_text(piece)
        text = "".join(pieces)
        if not text.strip():
            raise ProcessingError("the local model returned no text")
        return Completion(text.strip(), 0, len(pieces))

    async def _run(self, job: _Job) -> Completion:
        await asyncio.to_thread(self._ensure_started)
        self._jobs.put(job)
        try:
            return await asyncio.wrap_future(job.future)
        except asyncio.CancelledError:
            job.future.cancel()  # a queued job is skipped; a running one finishes unseen
            job.stop.set()
            raise

    async def complete(self, messages: Sequence[Message], *, max_tokens: int) -> Completion:
        return await self._run(_Job(messages, max_tokens))

    async def stream(
        self, messages: Sequence[Message], *, max_tokens: int, on_text: TextSink
    ) -> Completion:
        """The answer piece by piece: the worker thread that owns the model generates with
        ``stream=True`` and hands each piece to this loop, in order, before the result."""
        loop = asyncio.get_running_loop()

        def hand_over(piece: str) -> None:  # in the worker's thread
            loop.call_soon_threadsafe(on_text, piece)

        return await self._run(_Job(messages, max_tokens, on_text=hand_over))

    async def aclose(self) -> None:
        """Unload every instance: workers finish their current job and exit."""
        for _ in self._workers:
            self._jobs.put(_STOP)
        workers, self._workers = self._workers, []
        self._ready, self._loaded = None, 0
        for worker in workers:
            await asyncio.to_thread(worker.join)


@dataclass(frozen=True)
class LocalModelOptions:
    """What the local provider is built from: the GGUF (a path, or a hub repository and
    file, downloaded once into ``cache_dir``) and the machine's share for it."""

    path: str | None = None
    repo: str | None = None
    filename: str | None = None
    cache_dir: str | None = None
    context_tokens: int | None = None
    memory_limit_mb: int | None = None
    instances: int | None = None
    threads: int | None = None


def _model_file(options: LocalModelOptions) -> Path:
    if options.path:
        path = Path(options.path).expanduser()
        if path.is_dir():
            raise InputError(f"--local-model-path {path} is a directory", hint=GGUF_HINT)
        if not path.is_file():
            raise InputError(f"no such model file: {path}", hint=GGUF_HINT)
        try:
            with path.open("rb") as handle:
                magic = handle.read(4)
        except OSError as exc:
            raise InputError(
                f"cannot read the model file {path}: {exc.strerror or exc}", hint=GGUF_HINT
            ) from exc
        if magic != b"GGUF":  # every GGUF file starts so: said before any work is paid for
            raise InputError(f"{path} is not a GGUF model file", hint=GGUF_HINT)
        return path
    repo = options.repo or DEFAULT_MODEL_REPO
    filename = options.filename or DEFAULT_MODEL_FILE
    import platformdirs
    from huggingface_hub import (
        get_hf_file_metadata,
        hf_hub_download,
        hf_hub_url,
        try_to_load_from_cache,
    )
    from huggingface_hub.errors import (
        EntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    cache = Path(options.cache_dir or platformdirs.user_cache_dir("yttl")) / "models"
    cached = try_to_load_from_cache(repo, filename, cache_dir=str(cache))
    if isinstance(cached, str):  # no network at all once it is here
        return Path(cached)
    try:
        size = get_hf_file_metadata(hf_hub_url(repo, filename)).size or 0
        logger.warning(
            "downloading the local model %s (%.1f GB), once, into %s", filename, size / 1e9, cache
        )
        return Path(hf_hub_download(repo, filename, cache_dir=str(cache)))
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as exc:
        raise InputError(
            f"the hub has no {filename} in {repo} ({type(exc).__name__})",
            hint="check -lmr and -lmf, or give a file with --local-model-path",
        ) from exc
    except Exception as exc:
        if _unreachable(exc):  # offline, DNS, refused, reset, timed out
            from urllib.parse import urlsplit

            from huggingface_hub import constants

            host = urlsplit(constants.ENDPOINT).hostname or "the model hub"
            raise NetworkError(
                f"cannot reach {host} to download the local model {filename}"
                + (f" ({DEFAULT_MODEL_GB:.1f} GB)" if filename == DEFAULT_MODEL_FILE else "")
                + "; offline?",
                hint="give a GGUF file with --local-model-path FILE, or use an API provider "
                "(-lp openai, -lp groq)",
            ) from exc
        raise NetworkError(
            f"cannot download the local model {filename} from {repo}: {type(exc).__name__}",
            hint="give a GGUF file with --local-model-path FILE, or use -lp openai",
        ) from exc


def _unreachable(exc: BaseException) -> bool:
    """Whether the hub could not be reached at all: the client's connection errors (an
    ``OSError`` somewhere in the chain, or the HTTP client's connect and timeout errors,
    named so, since that client is the hub library's, not ours) or offline mode."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    seen: BaseException | None = exc
    while seen is not None:
        name = type(seen).__name__
        if (
            isinstance(seen, OSError | LocalEntryNotFoundError)
            or name.startswith(("Connect", "Timeout"))
            or name.endswith(("Timeout", "TimeoutException"))
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def build_local_provider(options: LocalModelOptions) -> LocalLlamaProvider:
    try:
        import llama_cpp  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            "the local LLM provider needs llama-cpp-python",
            hint="pip install -e '.[local]' in yttl's checkout (on CPUs with AVX-512 set "
            "CMAKE_ARGS=-DGGML_NATIVE=OFF), or choose -lp openai|groq|chatgpt|huggingchat",
        ) from exc
    path = _model_file(options)
    footprint = read_footprint(path, options.context_tokens)
    plan = plan_instances(
        footprint,
        available_mb=psutil.virtual_memory().available / 2**20,
        cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1,
        memory_limit_mb=options.memory_limit_mb,
        instances=options.instances,
        threads=options.threads,
    )
    logger.debug(
        "local model %s: %d instance(s) x %d threads (%s)",
        path.name,
        plan.instances,
        plan.threads,
        plan.reason,
    )
    return LocalLlamaProvider(path, footprint, plan)
