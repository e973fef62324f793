"""Answer questions about an article with cited passages.

Public API (typed): `Settings`, `build_index`, `retrieve`, `query`, `query_stream`, the result types
and the `RagError` hierarchy. Heavy modules (models, Chroma) load lazily on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import Settings
from .errors import (
    ConfigError,
    IndexBusyError,
    IndexCorruptError,
    IndexMissingError,
    InputError,
    ModelAuthError,
    ModelError,
    RagError,
    SourceError,
    StoreUnavailableError,
)

# `retrieve` names both a submodule and the public function. Importing the submodule rebinds the package
# attribute to the module, so bind the function eagerly (cheap: Chroma and the models load on first use).
from .retrieve import retrieve
from .types import Answer, Citation, IndexStats, Passage, Timings, Turn

if TYPE_CHECKING:
    from .answer import query, query_stream
    from .ingest import build_index

_LAZY = {
    "build_index": "ingest",
    "query": "answer",
    "query_stream": "answer",
}

__all__ = [
    "Answer",
    "Citation",
    "ConfigError",
    "IndexBusyError",
    "IndexCorruptError",
    "IndexMissingError",
    "IndexStats",
    "InputError",
    "ModelAuthError",
    "ModelError",
    "Passage",
    "RagError",
    "Settings",
    "SourceError",
    "StoreUnavailableError",
    "Timings",
    "Turn",
    "build_index",
    "query",
    "query_stream",
    "retrieve",
]


def __getattr__(name: str) -> Any:
    # Importing `rag` stays cheap (no Chroma, no models) until a function is first used.
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
