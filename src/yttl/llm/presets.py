"""The known OpenAI-compatible endpoints and their defaults: plain data, so that choosing
an endpoint (``yttl.endpoints``) never imports the SDK that calls it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PRESETS", "ProviderPreset"]


@dataclass(frozen=True)
class ProviderPreset:
    """Defaults for a known endpoint. ``context_tokens`` is the largest request to send,
    which for rate-limited free tiers is the tokens-per-minute budget, not the model's window.
    """

    name: str
    base_url: str
    model: str
    api_key_env: str
    context_tokens: int
    max_concurrent: int
    whisper_model: str = "whisper-1"
    requests_per_minute: float | None = None  # client-side pacing, when the tier is known
    tokens_per_minute: float | None = None


PRESETS: dict[str, ProviderPreset] = {
    "openai": ProviderPreset(
        "openai", "https://api.openai.com/v1", "gpt-4o-mini", "OPENAI_API_KEY", 128_000, 16
    ),
    # ChatGPT models through the official API (the original tool scraped the web app).
    "chatgpt": ProviderPreset(
        "chatgpt", "https://api.openai.com/v1", "gpt-4o", "OPENAI_API_KEY", 128_000, 8
    ),
    # Groq's free tier allows 30 requests and 6,000 tokens a minute: a request larger than
    # that is refused as "request too large", so the budget, not the window, bounds it.
    "groq": ProviderPreset(
        "groq",
        "https://api.groq.com/openai/v1",
        "llama-3.1-8b-instant",
        "GROQ_API_KEY",
        6_000,
        4,
        whisper_model="whisper-large-v3",
        requests_per_minute=30,
        tokens_per_minute=6_000,
    ),
    "huggingchat": ProviderPreset(
        "huggingchat",
        "https://router.huggingface.co/v1",
        "meta-llama/Llama-3.1-8B-Instruct",
        "HF_TOKEN",
        32_000,
        4,
    ),
}
