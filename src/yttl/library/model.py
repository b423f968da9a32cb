"""``EmbedModel``: which embedding model made a library's vectors, as the library records
it (DESIGN §3: one model per library). Plain data: the library reads it without the
provider stack."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

__all__ = ["EmbedModel"]


@dataclass(frozen=True)
class EmbedModel:
    """``name`` is what vectors are stored under (``local:FILE.gguf``, ``openai:MODEL``,
    ``PROFILE:MODEL``); ``provider`` and ``model`` (the ``--embed-model`` given, None for
    the provider's default) build it again; ``host`` is where its texts go (None: this
    machine)."""

    name: str
    provider: str
    model: str | None = None
    host: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> EmbedModel:
        data = json.loads(text)
        return cls(str(data["name"]), str(data["provider"]), data.get("model"), data.get("host"))

    @classmethod
    def from_name(cls, name: str) -> EmbedModel:
        """A model known only by its vectors' name (a library from before the record)."""
        provider, _, model = name.partition(":")
        if provider == "local":
            from yttl.embed.names import DEFAULT_LOCAL_FILE

            return cls(name, "local", None if model == DEFAULT_LOCAL_FILE else model)
        return cls(name, provider, model or None)
