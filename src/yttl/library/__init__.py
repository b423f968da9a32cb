"""The library: every finished run in one SQLite file, searchable; and the jobs of
``yttl serve``. ``Library`` is the store; ``yttl.library.words`` holds how text is
indexed and queried; ``yttl.library.schema`` the tables and their migrations."""

from __future__ import annotations

from yttl.library.schema import SCHEMA_VERSION
from yttl.library.store import Library
from yttl.library.words import MARK, Hit, index_words, quote_query

__all__ = ["MARK", "SCHEMA_VERSION", "Hit", "Library", "index_words", "quote_query"]
