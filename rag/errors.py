"""A tiny error hierarchy. Every message is safe to show a user: no keys, no tracebacks, no prompts."""

from __future__ import annotations


class RagError(Exception):
    """Base class: `str(err)` is a complete, user-facing sentence."""


class InputError(RagError):
    """The question, history or another argument is unusable (empty, too long, malformed)."""


class ConfigError(RagError):
    """A setting is missing or invalid (unknown provider, bad number, missing API key)."""


class SourceError(RagError):
    """A document can't be read: missing, a directory, binary, not UTF-8, empty or too large."""


class DocumentExistsError(SourceError):
    """The same document (the same text) is already in the library; nothing was added."""


class IndexError_(RagError):
    """Base for index problems. Named with a trailing underscore to avoid shadowing the builtin."""


class IndexMissingError(IndexError_):
    """No index has been built yet for these settings."""


class IndexCorruptError(IndexError_):
    """The index exists but can't be read; `python -m rag index --rebuild` recovers."""


class IndexBusyError(IndexError_):
    """Another process is building the index right now."""


class StoreUnavailableError(RagError):
    """The Chroma server can't be reached."""


class ModelError(RagError):
    """The language model or its server failed (unreachable, rejected key, timeout, bad reply)."""


class ModelAuthError(ModelError):
    """The provider rejected the API key."""
