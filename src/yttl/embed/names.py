"""Which model embeds a library, and the name its vectors carry: the policy of DESIGN §3
(one embedding model per library), in one place, known without building the model.

- The default embedder is the local model (EmbeddingGemma, on this machine), whatever
  the LLM provider: a remote embedding service is used only when the user names it
  (``embed_provider`` in the config or environment, ``--embed-provider``), so the text of
  a video summarized locally never leaves the machine unasked, and ``-lp`` never changes
  a library's model from one run to the next.
- The library records its model when it first embeds. A run, an import, ``yttl serve``
  and MCP that name no embedder use the library's model; one that names another does not
  embed, and says so in one line. Only ``yttl library reindex`` changes the model.
- A remote model known only by a library's older vectors (an earlier yttl followed the
  LLM provider) gets no video's text until a setting names it (``unconfirmed``); nor does
  the library's remote model when its provider's settings now point at another host
  than the one recorded (``moved``), unless a setting names it.
- Names: ``local:FILE.gguf`` (the file's name, however it was given: a path, or
  ``owner/repo:FILE.gguf`` on the hub), ``PROVIDER:MODEL`` for an endpoint. Presets that
  share an endpoint share a name (``chatgpt:`` is ``openai:``): same endpoint and model,
  same vectors.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from yttl.config import Settings
from yttl.library.model import EmbedModel
from yttl.llm.presets import PRESETS

__all__ = [
    "DEFAULT_LOCAL_FILE",
    "DEFAULT_OPENAI_EMBED_MODEL",
    "Choice",
    "configured",
    "embed_model_name",
    "embed_provider_name",
    "for_library",
    "local_name",
    "remote_name",
]

DEFAULT_LOCAL_FILE = "embeddinggemma-300M-Q8_0.gguf"  # yttl.embed.local_embed.DEFAULT_MODEL
DEFAULT_OPENAI_EMBED_MODEL = "text-embedding-3-small"


def embed_provider_name(settings: Settings) -> str:
    """``embed_provider`` (config, environment, flag), else the local model."""
    return settings.embed_provider or "local"


def embed_model_name(settings: Settings) -> str | None:
    """``--embed-model``, else the profile's ``embed_model``, else the provider's default
    (None: the local default)."""
    if settings.embed_model:
        return settings.embed_model
    provider = embed_provider_name(settings)
    profile = settings.profiles.get(provider)
    if profile is not None and profile.embed_model:
        return profile.embed_model
    return None if provider == "local" else DEFAULT_OPENAI_EMBED_MODEL


def local_name(spec: str | None) -> str | None:
    """The name of a local model's vectors: its file's name; None for a hub repo or a
    pattern (known once the file is found)."""
    if spec is None:
        return f"local:{DEFAULT_LOCAL_FILE}"
    repo, colon, pattern = spec.partition(":")
    file = pattern if colon and "/" in repo else spec
    if not file.endswith(".gguf") or any(c in file for c in "*?["):
        return None
    return f"local:{Path(file).name}"


def base_url_of(settings: Settings, provider: str) -> str | None:
    profile = settings.profiles.get(provider)
    if profile is not None:
        return profile.base_url
    preset = PRESETS.get(provider)
    if preset is None:
        return None
    return (settings.openai_base_url if provider == "openai" else None) or preset.base_url


def remote_name(provider: str, model: str, base_url: str | None) -> str:
    """``PROVIDER:MODEL``; a preset at its own endpoint goes by the first preset there."""
    if provider in PRESETS and base_url == PRESETS[provider].base_url:
        provider = next(p.name for p in PRESETS.values() if p.base_url == base_url)
    return f"{provider}:{model}"


def configured(settings: Settings) -> EmbedModel | None:
    """The model ``settings`` name, with its vectors' name; None when that name is known
    only once the model is found (a hub repo or pattern)."""
    provider, model = embed_provider_name(settings), embed_model_name(settings)
    if provider == "local":
        name = local_name(model)
        return EmbedModel(name, "local", model) if name else None
    base_url = base_url_of(settings, provider)
    host = urlsplit(base_url).hostname if base_url else None
    model = model or DEFAULT_OPENAI_EMBED_MODEL
    return EmbedModel(remote_name(provider, model, base_url), provider, model, host)


def named(settings: Settings) -> bool:
    """Whether the user named an embedder (config, environment or flags)."""
    return settings.embed_provider is not None or settings.embed_model is not None


@dataclass(frozen=True)
class Choice:
    """What to embed a library with: ``settings`` to build the embedder from, or None
    and ``why`` not (one line)."""

    settings: Settings | None
    why: str | None = None


def for_library(settings: Settings, recorded: EmbedModel | None, *, query: bool = False) -> Choice:
    """The embedder for a library whose model is ``recorded`` (None: not yet); ``query``:
    for a search's words, which a model known only by its vectors may embed."""
    if not settings.embed:
        return Choice(None, "embeddings are off")
    if recorded is None:
        return Choice(settings)
    remote = recorded.provider != "local"
    if not named(settings) and remote and recorded.host is None and not query:
        return Choice(None, unconfirmed(recorded))
    if not named(settings):
        own = dataclasses.replace(
            settings, embed_provider=recorded.provider, embed_model=recorded.model
        )
        now = configured(own)
        if recorded.host and now is not None and now.host != recorded.host:
            return Choice(None, moved(recorded, now))
        return Choice(own)
    wanted = configured(settings)
    if wanted is None or wanted.name == recorded.name:
        return Choice(settings)  # a hub pattern: checked once it is found
    return Choice(None, mismatch(recorded, wanted))


def unconfirmed(recorded: EmbedModel) -> str:
    """One line: a remote model known only by a library's older vectors (an earlier yttl
    chose it from the LLM provider) is not sent a video's text until the user names it."""
    switch = f"--embed-provider {recorded.provider}"
    switch += f" --embed-model {recorded.model}" if recorded.model else ""
    return (
        f"not embedded: this library's vectors were made by {recorded.name}, a remote "
        f"service no setting names (embed_provider in the config, or {switch}, keeps it; "
        "yttl library reindex --embed-provider local switches to this machine)"
    )


def moved(recorded: EmbedModel, now: EmbedModel) -> str:
    """One line: the library's model was used at one host, and its provider's settings
    now send text to another, which no setting named for this library."""
    return (
        f"not embedded: this library's model {recorded.name} was reached at "
        f"{recorded.host}, and {recorded.provider} now points at {now.host or 'this machine'} "
        f"(--embed-provider {recorded.provider}, or embed_provider in the config, sends "
        "the text there)"
    )


def mismatch(recorded: EmbedModel, other: EmbedModel) -> str:
    """One line: a configured model that is not the library's is not used."""
    switch = f"--embed-provider {other.provider}"
    switch += f" --embed-model {other.model}" if other.model else ""
    return (
        f"not embedded with {other.name}: this library's embedding model is "
        f"{recorded.name} (yttl library reindex {switch} switches the library to it)"
    )
