"""``yttl serve``: the library, search, questions and jobs in the browser, and the JSON
API the browser extension talks to. Local only by default, and guarded: a token traded
for a session cookie, a Host check against DNS rebinding, no unsafe request from another
site (``yttl.serve.security``)."""

from __future__ import annotations

from yttl.serve.app import build_app
from yttl.serve.server import ServeOptions, run_server

__all__ = ["ServeOptions", "build_app", "run_server"]
