"""The one place that turns ``Settings`` into concrete pieces: providers, lanes of the
run's scheduler, the transcriber and the cache. Stages receive these, not ``Settings``."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs

from yttl.cache import ResultsCache
from yttl.config import Settings
from yttl.embed.factory import embedder_holder
from yttl.embed.indexing import EmbedderHolder
from yttl.endpoints import endpoint_for, require_key, whisper_endpoint
from yttl.llm.base import LLMProvider
from yttl.llm.openai_compat import OpenAICompatibleProvider
from yttl.resilience import BreakerOptions, RetryPolicy
from yttl.scheduler import Admission, Lane, LaneSpec, LocalAdmission, Scheduler
from yttl.sources.ytdlp import ytdlp_params
from yttl.summarize.engine import EngineOptions
from yttl.transcribe.api import ApiTranscriber
from yttl.transcribe.base import Transcriber
from yttl.transcribe.chunking import ChunkOptimizer, Hardware, probe_hardware
from yttl.transcribe.local import FasterWhisperTranscriber, SilenceOptions, WhisperModelHolder
from yttl.transcript import TranscriptOptions

if TYPE_CHECKING:
    from yttl.llm.local import LocalModelOptions
    from yttl.slides import SlideOptions

__all__ = [
    "RunComponents",
    "SharedAdmissions",
    "build_cache",
    "build_components",
    "build_lane",
    "build_llm",
    "build_transcriber",
    "engine_options",
    "lane_spec",
    "local_admission",
    "local_model_options",
    "max_concurrent_llm",
    "max_concurrent_videos",
    "transcript_options",
    "ytdlp_options",
]

LOCAL_CONCURRENCY = 2  # keeps the local worker fed: 1.07x over 1 (measured, Gemma 270M)
DEFAULT_WHISPER_UPLOADS = 4


AdmissionFactory = Callable[[str, LaneSpec, asyncio.Event], Admission]
"""Makes a lane's admission from its key and spec: in-process by default, a Ray actor's
on a cluster."""


def local_admission(key: str, spec: LaneSpec, stop: asyncio.Event) -> Admission:
    return LocalAdmission(spec, stop)


def max_concurrent_llm(
    settings: Settings, environ: Mapping[str, str] | None = None, name: str | None = None
) -> int:
    """The flag or config value, else the provider's preset default."""
    name = name or settings.llm_provider
    if settings.sequential:
        return 1
    if settings.max_concurrent_llm is not None:
        return settings.max_concurrent_llm
    if name == "local":
        return LOCAL_CONCURRENCY
    return endpoint_for(settings, name, environ).max_concurrent


def build_llm(
    settings: Settings, environ: Mapping[str, str] | None = None, name: str | None = None
) -> LLMProvider:
    """The provider for a run (``name`` overrides ``llm_provider``, for the fallback);
    a missing key is an error here, before any work starts."""
    name = name or settings.llm_provider
    if name == "local":
        from yttl.llm.local import build_local_provider

        return build_local_provider(local_model_options(settings))
    endpoint = endpoint_for(settings, name, environ)
    return OpenAICompatibleProvider(
        name=endpoint.name,
        model=endpoint.model,
        base_url=endpoint.base_url,
        api_key=require_key(endpoint, f"the {endpoint.name} provider"),
        context_tokens=endpoint.context_tokens,
        # The retry policy gives each attempt its own, growing timeout; the SDK's is only
        # a ceiling above the last attempt's, or it would cut every retry short.
        timeout=(settings.request_timeout or 120.0) * 1.5**settings.retry_max_attempts,
    )


def local_model_options(settings: Settings) -> LocalModelOptions:
    from yttl.llm.local import LocalModelOptions

    return LocalModelOptions(
        path=settings.local_model_path,
        repo=settings.local_model_repo,
        filename=settings.local_model_file,
        cache_dir=settings.cache_dir,
        context_tokens=settings.context_tokens,
        memory_limit_mb=settings.memory_limit_mb,
        instances=settings.local_llm_instances,
        threads=settings.local_llm_threads,
    )


def build_transcriber(
    settings: Settings,
    environ: Mapping[str, str] | None = None,
    hardware: Hardware | None = None,
    *,
    holder: WhisperModelHolder | None = None,
    scheduler: Scheduler | None = None,
    admissions: AdmissionFactory = local_admission,
) -> Transcriber:
    """faster-whisper for ``-wp local``, else an OpenAI-compatible transcription API.
    ``holder`` shares one loaded Whisper model between the videos of a batch; uploads go
    through ``scheduler``'s lane for the transcription endpoint."""
    if settings.whisper_provider == "local":
        plan = ChunkOptimizer(hardware or probe_hardware(), settings.memory_limit_mb).plan(
            settings.chunk_strategy,
            model=settings.local_whisper_model,
            chunk_seconds=settings.chunk_seconds,
            beam_size=settings.beam_size,
        )
        silence = SilenceOptions(
            settings.vad, settings.silence_threshold_db, settings.min_silence_seconds
        )
        root = Path(settings.cache_dir or platformdirs.user_cache_dir("yttl")) / "whisper"
        return FasterWhisperTranscriber(
            settings.local_whisper_model,
            plan,
            language=settings.language,
            silence=silence,
            download_root=str(root),
            holder=holder,
        )
    endpoint, model = whisper_endpoint(settings, environ)
    uploads = settings.max_concurrent_whisper or DEFAULT_WHISPER_UPLOADS
    key = f"{endpoint.name} transcription"
    lane = (scheduler or Scheduler()).lane(
        key,
        lambda stop: build_lane(
            settings,
            endpoint.name,
            uploads,
            stop,
            environ,
            timeout=settings.request_timeout or 600.0,
            key=key,
            admissions=admissions,
        ),
    )
    return ApiTranscriber(
        provider=endpoint.name,
        base_url=endpoint.base_url,
        api_key=require_key(endpoint, f"transcription with {endpoint.name}", ", or use -wp local"),
        model=model,
        language=settings.language,
        upload_limit_mb=settings.whisper_upload_limit_mb,
        max_concurrent=uploads,
        timeout=(settings.request_timeout or 600.0) * 1.5**settings.retry_max_attempts,
        silence_threshold_db=settings.silence_threshold_db,
        min_silence_seconds=settings.min_silence_seconds,
        policy=lane,
    )


def lane_spec(
    settings: Settings,
    provider: str,
    max_concurrent: int,
    environ: Mapping[str, str] | None = None,
) -> LaneSpec:
    """A provider's budgets: calls in flight, requests and tokens a minute, the breaker."""
    rpm, tpm = settings.requests_per_minute, settings.tokens_per_minute
    target = None
    if provider != "local":
        endpoint = endpoint_for(settings, provider, environ)
        rpm = rpm or endpoint.requests_per_minute
        tpm = tpm or endpoint.tokens_per_minute
        target = endpoint.base_url
    breaker = BreakerOptions(
        window=settings.breaker_window,
        min_calls=settings.breaker_min_calls,
        failure_rate=settings.breaker_failure_rate,
        cooldown=settings.breaker_cooldown,
        deadline=settings.breaker_deadline,
    )
    return LaneSpec(provider, max_concurrent, rpm, tpm, breaker, target)


def build_lane(
    settings: Settings,
    provider: str,
    max_concurrent: int,
    stop: asyncio.Event,
    environ: Mapping[str, str] | None = None,
    *,
    timeout: float | None = None,
    key: str | None = None,
    admissions: AdmissionFactory = local_admission,
) -> Lane:
    """Slots, retries, timeouts, pacing and a circuit breaker for one provider."""
    if timeout is None:
        timeout = settings.request_timeout or (None if provider == "local" else 120.0)
    spec = lane_spec(settings, provider, max_concurrent, environ)
    return Lane(
        provider,
        policy=RetryPolicy(settings.retry_max_attempts, settings.retry_base_delay, timeout=timeout),
        admission=admissions(key or provider, spec, stop),
        stop=stop,
    )


def ytdlp_options(settings: Settings) -> dict[str, object]:
    return ytdlp_params(
        cookies=settings.cookies,
        cookies_from_browser=settings.cookies_from_browser,
        extra=settings.yt_dlp_options,
    )


def transcript_options(settings: Settings) -> TranscriptOptions:
    return TranscriptOptions(
        language=settings.language,
        force_transcription=settings.force_local_transcribe,
        caption_attempts=settings.retry_max_attempts,
        ytdlp_params=ytdlp_options(settings),
        sponsorblock=settings.sponsorblock,
        sponsorblock_api=settings.sponsorblock_api,
    )


def engine_options(settings: Settings, concurrency: int) -> EngineOptions:
    return EngineOptions(
        concurrency, settings.sequential, settings.max_output_tokens, settings.overview
    )


class SharedAdmissions:
    """One admission per lane key for the whole process, whoever asks: the budgets of a
    provider outlive each run's scheduler. It never stops (a run stops its own lanes)."""

    def __init__(self, make: AdmissionFactory = local_admission) -> None:
        self._make = make
        self._stop = asyncio.Event()  # set only when the process closes
        self._admissions: dict[str, Admission] = {}

    def __call__(self, key: str, spec: LaneSpec, stop: asyncio.Event) -> Admission:
        if key not in self._admissions:
            self._admissions[key] = self._make(key, spec, self._stop)
        return self._admissions[key]

    def close(self) -> None:
        self._stop.set()


@dataclass
class RunComponents:
    """Everything a run is wired from, built once and shared by every video of a batch:
    the scheduler (and so the providers' budgets), the providers, one Whisper model,
    the cache."""

    settings: Settings
    scheduler: Scheduler
    cache: ResultsCache
    concurrency: int
    llm: LLMProvider | None = None
    fallback: LLMProvider | None = None
    environ: Mapping[str, str] | None = None
    hardware: Hardware | None = None
    whisper: WhisperModelHolder = field(default_factory=WhisperModelHolder)
    admissions: AdmissionFactory = local_admission
    transcribers: Callable[[], Transcriber] | None = None  # instead of building one
    embeddings: EmbedderHolder | None = None  # built when first needed, shared by every run
    slides: SlideOptions | None = None  # with --slides: how slides are found and read
    owner: bool = True  # closes the providers and the cache (a run's view does not)

    def for_run(self, stop: asyncio.Event, settings: Settings | None = None) -> RunComponents:
        """A view for one run of a long-lived process (a server's job, an MCP call): its
        own stop and settings, the same providers, Whisper model and cache, and the same
        provider budgets (slots, pacing, breaker) as every other run of the process, so
        that ten jobs pace themselves as one batch does and a breaker's memory lasts."""
        if not isinstance(self.admissions, SharedAdmissions):
            self.admissions = SharedAdmissions(self.admissions)
        slides = self.slides if settings is None else slide_options(settings)
        return dataclasses.replace(
            self,
            settings=settings or self.settings,
            slides=slides,
            scheduler=Scheduler(stop),
            owner=False,
        )

    @functools.cached_property  # built once, for every video of the run
    def transcript(self) -> TranscriptOptions:
        return transcript_options(self.settings)

    @functools.cached_property  # built once, for every video of the run
    def engine(self) -> EngineOptions:
        return engine_options(self.settings, self.concurrency)

    @functools.cached_property  # built once, for every video of the run
    def ytdlp(self) -> dict[str, object]:
        return ytdlp_options(self.settings)

    @property
    def sections(self) -> str:
        return self.settings.sections

    @property
    def summary_language(self) -> str | None:
        return self.settings.summary_language

    @property
    def transcript_only(self) -> bool:
        return self.settings.transcript_only or self.llm is None

    def lane(self, provider: LLMProvider) -> Lane:
        concurrency = self.concurrency
        if provider is self.fallback and self.settings.max_concurrent_llm is None:
            concurrency = max_concurrent_llm(self.settings, self.environ, provider.name)
        key = f"{provider.name} chat"
        return self.scheduler.lane(
            key,
            lambda stop: build_lane(
                self.settings,
                provider.name,
                concurrency,
                stop,
                self.environ,
                key=key,
                admissions=self.admissions,
            ),
        )

    def transcriber(self) -> Transcriber:
        """A transcriber for one video; every one shares the loaded model and the lane."""
        if self.transcribers is not None:
            return self.transcribers()
        return build_transcriber(
            self.settings,
            self.environ,
            self.hardware,
            holder=self.whisper,
            scheduler=self.scheduler,
            admissions=self.admissions,
        )

    async def aclose(self) -> None:
        if not self.owner:
            return
        if self.embeddings is not None:
            await self.embeddings.aclose()
        for provider in (self.llm, self.fallback):
            if provider is not None:
                await provider.aclose()
        self.cache.close()


def build_components(
    settings: Settings,
    environ: Mapping[str, str] | None = None,
    *,
    stop: asyncio.Event | None = None,
    llm: LLMProvider | None = None,
) -> RunComponents:
    """Providers first: a missing key or a bad setting fails here, before any work."""
    components = RunComponents(
        settings,
        Scheduler(stop),
        build_cache(settings),
        max_concurrent_llm(settings, environ),
        environ=environ,
        embeddings=embedder_holder(settings, environ),
    )
    try:
        components.slides = slide_options(settings)
        if not settings.transcript_only:
            components.llm = llm or build_llm(settings, environ)
            if settings.fallback_provider:
                components.fallback = build_llm(settings, environ, name=settings.fallback_provider)
    except BaseException:
        components.cache.close()
        raise
    return components


def slide_options(settings: Settings) -> SlideOptions | None:
    """With --slides, the OCR engine is found now: a missing one is said before any work."""
    if not settings.slides:
        return None
    from yttl.slides import SlideOptions, check_ocr

    return SlideOptions(check_ocr())


def build_cache(settings: Settings) -> ResultsCache:
    if not settings.cache:
        return ResultsCache(None)
    root = Path(settings.cache_dir or platformdirs.user_cache_dir("yttl"))
    return ResultsCache.open(root / "results.sqlite")


VIDEO_MEMORY_MB = 600  # audio buffers and decoding of one video being transcribed


def max_concurrent_videos(settings: Settings, videos: int, hardware: Hardware | None = None) -> int:
    """The flag, else what the machine holds: a video being transcribed locally keeps a
    core busy and some memory; resolving and captions are mostly waiting on the network."""
    if settings.max_concurrent_videos is not None:
        return max(1, min(settings.max_concurrent_videos, videos))
    hardware = hardware or probe_hardware()
    by_memory = max(1, hardware.available_mb // VIDEO_MEMORY_MB)
    return max(1, min(videos, max(2, hardware.cores), by_memory, 8))
