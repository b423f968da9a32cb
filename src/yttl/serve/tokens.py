"""The server's token: made once, kept 0600 in the user config dir, traded at the login
URL for a session (``yttl.serve.sessions``); and the proof that a server holds it, for
the native host, which must not hand the token to a server that does not."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

__all__ = ["load_token", "proof", "token_path"]


def token_path(config_dir: Path) -> Path:
    return config_dir / "serve-token"


def load_token(path: Path, *, rotate: bool = False) -> str:
    """The token at ``path``; a new one when there is none, it is unreadable, or asked.
    Written with mode 0600 from the first byte, and kept so after every start."""
    if not rotate:
        try:
            token = path.read_text(encoding="ascii").strip()
            if len(token) >= 32:
                if path.stat().st_mode & 0o077:
                    path.chmod(0o600)
                return token
        except (OSError, UnicodeDecodeError):
            pass
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(token + "\n")
    os.replace(temporary, path)
    return token


def proof(token: str, nonce: str, port: int) -> str:
    """What a server holding ``token`` answers to the challenge ``nonce`` on ``port``.
    The port is in it so that a server on another port cannot relay the challenge to the
    real one and pass its answer off as its own; the token cannot be read back from it."""
    message = f"yttl serve challenge\n{port}\n{nonce}".encode()
    return hmac.new(token.encode(), message, hashlib.sha256).hexdigest()
