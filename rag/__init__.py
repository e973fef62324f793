"""Answer questions about an article with cited passages.

Public API (typed): `Settings`, `build_index`, `open_index`, `retrieve`, `query`, `query_stream`, the document
library (`add_document`, `add_text`, `list_documents`, `remove_document`, `suggested_questions`; a new
document's vectors: `embedding_status`, `resume_embedding`), the result
types and the `RagError` hierarchy. Heavy modules (models, Chroma) load lazily on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rag.config import Settings
from rag.errors import (
    ConfigError,
    DocumentExistsError,
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
from rag.types import Answer, Citation, Document, IndexStats, Passage, Timings, Turn, VectorProgress

if TYPE_CHECKING:
    from rag.answer.pipeline import AnswerStream
    from rag.api import (
        add_document,
        add_text,
        embedding_status,
        list_documents,
        open_index,
        prime_documents,
        prime_overview,
        query,
        query_stream,
        remove_document,
        resume_embedding,
        retrieve,
        suggested_questions,
    )
    from rag.index.build import build_index

# Importing `rag` stays cheap (no Chroma, no models, no LlamaIndex) until a function is first used.
_LAZY = {
    "build_index": "rag.index.build",
    "open_index": "rag.api",
    "prime_documents": "rag.api",
    "prime_overview": "rag.api",
    "retrieve": "rag.api",
    "query": "rag.api",
    "query_stream": "rag.api",
    "add_document": "rag.api",
    "add_text": "rag.api",
    "list_documents": "rag.api",
    "remove_document": "rag.api",
    "suggested_questions": "rag.api",
    "embedding_status": "rag.api",
    "resume_embedding": "rag.api",
    "AnswerStream": "rag.answer.pipeline",
}

__all__ = [
    "Answer",
    "AnswerStream",
    "Citation",
    "ConfigError",
    "Document",
    "DocumentExistsError",
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
    "VectorProgress",
    "add_document",
    "add_text",
    "prime_documents",
    "prime_overview",
    "build_index",
    "embedding_status",
    "list_documents",
    "open_index",
    "query",
    "query_stream",
    "remove_document",
    "resume_embedding",
    "retrieve",
    "suggested_questions",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
