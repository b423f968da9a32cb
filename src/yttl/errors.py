"""The one exception tree of yttl.

Stages raise these; they never print or exit. The CLI maps them to exit codes in one
place (``yttl.exitcodes``)::

    YttlError
    ├── UsageError            bad option or option combination          (exit 2)
    │   └── ConfigError       unreadable or invalid config file         (exit 2)
    ├── InputError            bad source: URL, file, captions, info.json (exit 2)
    │   └── UnsupportedSourceError  no extractor, no audio, no duration  (exit 2)
    ├── MissingDependencyError  an optional extra is not installed      (exit 1)
    ├── ResourceError         not enough memory for the job             (exit 1)
    ├── RunInterrupted        Ctrl-C mid-run; carries what was finished (exit 130)
    └── ProviderError         a remote or local model call failed       (exit 1)
        ├── NetworkError      connect, reset, timeout
        │   └── ProviderUnreachableError  never answered well in this process (exit 1)
        ├── RateLimitError    429; carries ``retry_after``
        ├── ServerError       5xx
        │   └── ProviderStartingError  503 "Loading model" or 503 with Retry-After
        ├── AuthError         401/403 or missing key; never retried
        ├── RequestRefusedError  another 4xx: the request's fault; never retried
        │   └── ModelNotFoundError  the provider has no such model      (exit 2)
        ├── BadResponseError  not JSON, no choices
        ├── ContextLengthError  the request does not fit the model
        ├── CircuitOpenError  not attempted: the provider's breaker is open
        ├── StopRequested     not attempted: the run is stopping (Ctrl-C)
        └── ProcessingError   the model itself failed

Every ``ProviderError`` has a ``category`` string (DESIGN §7) used in the JSON
``failures`` list and the stats.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from yttl.models import RunResult

__all__ = [
    "FATAL_ERRORS",
    "AuthError",
    "BadResponseError",
    "CircuitOpenError",
    "ConfigError",
    "ContextLengthError",
    "InputError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "NetworkError",
    "ProcessingError",
    "ProviderError",
    "ProviderStartingError",
    "ProviderUnreachableError",
    "RateLimitError",
    "RequestRefusedError",
    "ResourceError",
    "RunInterrupted",
    "ServerError",
    "StopRequested",
    "UnsupportedSourceError",
    "UsageError",
    "YttlError",
]


class YttlError(Exception):
    """Root of every error yttl raises on purpose."""

    category = "processing"
    partial: RunResult | None = None
    """What the run had made when this ended it (the transcript, the sections done): the
    caller writes it, marked, before saying the error. Never lose work done (DESIGN §7)."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(YttlError):
    category = "input"


class ConfigError(UsageError):
    pass


class InputError(YttlError):
    category = "input"


class UnsupportedSourceError(InputError):
    pass


class MissingDependencyError(YttlError):
    category = "processing"


class ResourceError(YttlError):
    category = "memory"


class RunInterrupted(YttlError):
    """Ctrl-C (or cancellation) mid-run; ``partial`` holds what was finished, if anything."""

    category = "interrupted"

    def __init__(self, partial: RunResult | None = None) -> None:
        super().__init__("interrupted")
        self.partial = partial


class ProviderError(YttlError):
    category = "processing"
    attempts = 1  # how many times the call was tried before this was given up


class NetworkError(ProviderError):
    category = "network"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        hint: str | None = None,
        unreached: bool = False,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status  # the HTTP status, when there was an answer
        self.unreached = unreached  # nobody answered: refused, no such host, no route


class ProviderUnreachableError(NetworkError):
    """The provider has not once answered a call well in this process (nobody there, or
    only errors) and its probes failed too: it is down or misconfigured, and waiting the
    breaker's deadline would not help."""


class RateLimitError(ProviderError):
    category = "rate_limit"

    def __init__(
        self, message: str, *, retry_after: float | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class ServerError(ProviderError):
    category = "server"

    def __init__(self, message: str, *, status: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status  # the 5xx it answered


class ProviderStartingError(ServerError):
    """The server says it is starting (llama.cpp's 503 "Loading model", a 503 with
    ``Retry-After``): it is alive and will answer soon, so it is waited for, not given up."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = 503,
        retry_after: float | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, status=status, hint=hint)
        self.retry_after = retry_after


class AuthError(ProviderError):
    category = "auth"


class RequestRefusedError(ProviderError):
    """A 4xx other than 401/403/429: the request's fault, not the endpoint's health."""

    category = "request_refused"


class ModelNotFoundError(RequestRefusedError):
    """The provider says the model does not exist: no call of this run can succeed."""

    category = "input"


class BadResponseError(ProviderError):
    category = "bad_response"


class ContextLengthError(ProviderError):
    category = "input"


class CircuitOpenError(ProviderError):
    category = "circuit_open"


class StopRequested(ProviderError):
    category = "interrupted"


class ProcessingError(ProviderError):
    category = "processing"


FATAL_ERRORS: tuple[type[ProviderError], ...] = (
    AuthError,
    ModelNotFoundError,
    ProviderUnreachableError,
)
"""Answers after which no call of the run can succeed: they end the run (and stop a
batch) instead of failing one section after another."""
