"""Scale benchmark (issue item 7): 1k/10k/100k passages in Chroma (embedded and a real `chroma run` server),
with BM25 alongside.

Embedding 100k real passages would take most of an hour on two cores, so the store gets synthetic unit
vectors and synthetic text (words of the article's own vocabulary with a Zipf-like skew, so the stemmer and
the posting lists do realistic work). The synthetic build is written through the product's own store layer
and queried through the product's own `Retriever` (real query embedding, Chroma, BM25, fusion), so the
figure is what a user with that many passages would see. The real embedding throughput is measured
separately (`bench_pipeline`) and `bench.py` projects the real 100k ingest time from both.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import Settings
from rag.evaluation.procs import Figures, chroma_server, pct, temp_dir

DIM = 384  # multilingual-e5-small, the product's embedding size
WORDS_PER_PASSAGE = 40  # close to a merged paragraph of the article
QUERY_WORDS = 6
BATCH = 2000  # below Chroma's max batch size (5461 here)
PASSAGES_PER_SOURCE = 1000  # keeps each source document (stored whole for citations) a modest size
TOP_K = 5


@dataclass(frozen=True)
class SyntheticCorpus:
    texts: list[str]
    vectors: np.ndarray  # (n, DIM) float32, unit rows
    query_texts: list[str]
    query_vectors: np.ndarray  # (q, DIM) float32, unit rows


def _unit_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    rows = rng.standard_normal((n, DIM)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def synthetic_corpus(n: int, vocabulary: Sequence[str], queries: int, seed: int = 0) -> SyntheticCorpus:
    """`n` passages and `queries` queries; the same seed gives the same corpus."""
    rng = np.random.default_rng(seed)
    words = np.asarray(vocabulary)
    # Zipf-like ranks: a few very common words, a long tail, as in real text.
    ranks = (rng.zipf(1.2, size=(n, WORDS_PER_PASSAGE)) - 1) % len(words)
    texts = [" ".join(row) + "." for row in words[ranks]]
    # Queries use mid-frequency words, like the content words of a real question.
    high = min(len(words), 400)
    q_ranks = rng.integers(min(10, high // 2), high, size=(queries, QUERY_WORDS))
    query_texts = [" ".join(row) + "?" for row in words[q_ranks]]
    return SyntheticCorpus(texts, _unit_rows(rng, n), query_texts, _unit_rows(rng, queries))


def article_vocabulary(path: Path) -> list[str]:
    """Distinct words of the article, most frequent first (the Zipf draw then favours common words)."""
    counts: dict[str, int] = {}
    for token in re.findall(r"[A-Za-z][A-Za-z'-]+", path.read_text(encoding="utf-8")):
        counts[token.lower()] = counts.get(token.lower(), 0) + 1
    return sorted(counts, key=lambda w: -counts[w])


def _sources(texts: Sequence[str]) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Join the passages into source documents; each passage's metadata points at its exact span."""
    docs: dict[str, str] = {}
    metas: list[dict[str, Any]] = []
    for first in range(0, len(texts), PASSAGES_PER_SOURCE):
        name, parts, offset = f"synthetic-{first // PASSAGES_PER_SOURCE:04d}.txt", [], 0
        for text in texts[first : first + PASSAGES_PER_SOURCE]:
            metas.append({"source": name, "start": offset, "end": offset + len(text)})
            parts.append(text)
            offset += len(text) + 2  # the blank line between paragraphs
        docs[name] = "\n\n".join(parts)
    return docs, metas


def write_synthetic_build(settings: Settings, corpus: SyntheticCorpus) -> tuple[Any, float]:
    """Store the corpus as the current build via the product's store layer; (passage collection, passages/s)."""
    from rag.index import store
    from rag.models.embed import model_id

    client, embed_model = store.get_client(settings), model_id(settings)
    name = f"{settings.collection}-synthetic{len(corpus.texts)}"
    docs, metas = _sources(corpus.texts)
    passages, sources = store.create_build(client, name, embed_model)
    store.add_sources(sources, list(docs.values()), [{"source": n, "order": i} for i, n in enumerate(docs)])
    start = time.perf_counter()
    for i in range(0, len(corpus.texts), BATCH):
        ids = [f"p{j}" for j in range(i, min(i + BATCH, len(corpus.texts)))]
        store.add_passages(
            passages, ids, corpus.vectors[i : i + BATCH], corpus.texts[i : i + BATCH], metas[i : i + BATCH]
        )
    seconds = time.perf_counter() - start
    pointer = store.Pointer(name, "synthetic", embed_model, len(docs), len(corpus.texts), "", round(seconds, 3))
    store.write_pointer(client, settings, pointer)
    return passages, len(corpus.texts) / seconds


def _latencies(fn: Callable[[int], Any], count: int) -> list[float]:
    fn(0)  # warm-up: the first query loads the HNSW segment and allocates
    samples = []
    for i in range(count):
        start = time.perf_counter()
        fn(i)
        samples.append(time.perf_counter() - start)
    return samples


def _bm25_figures(label: str, corpus: SyntheticCorpus) -> Figures:
    """bm25s on its own (English stemmer, stopwords removed): index rate and top-k query latency."""
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    start = time.perf_counter()
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(corpus.texts, stemmer=stemmer, show_progress=False), show_progress=False)
    figures: Figures = {f"scale_{label}_bm25_index_per_s": round(len(corpus.texts) / (time.perf_counter() - start))}

    def search(i: int) -> Any:
        text = corpus.query_texts[i % len(corpus.query_texts)]
        tokens = bm25s.tokenize([text], stemmer=stemmer, return_ids=False, show_progress=False)
        return retriever.retrieve(tokens, k=TOP_K, show_progress=False, n_threads=1)

    figures.update(pct(f"scale_{label}_bm25_query", _latencies(search, len(corpus.query_texts))))
    return figures


def _store_figures(tag: str, settings: Settings, corpus: SyntheticCorpus) -> Figures:
    """Insert rate, raw vector query, retriever open time and the product's hybrid retrieve latency."""
    from rag.search.retriever import Retriever

    collection, rate = write_synthetic_build(settings, corpus)
    n = len(corpus.query_texts)
    figures: Figures = {f"{tag}_insert_per_s": round(rate, 1)}
    vector = _latencies(lambda i: collection.query(query_embeddings=[corpus.query_vectors[i % n]], n_results=TOP_K), n)
    figures.update(pct(f"{tag}_vector_query", vector))
    start = time.perf_counter()
    retriever = Retriever(settings)  # a fresh one, not the process-wide cache: its open time is a figure
    figures[f"{tag}_open_s"] = round(time.perf_counter() - start, 3)
    figures.update(
        pct(f"{tag}_retrieve", _latencies(lambda i: retriever.retrieve(corpus.query_texts[i % n], TOP_K), n))
    )
    return figures


def scale_one(n: int, vocabulary: Sequence[str], queries: int, settings: Settings) -> Figures:
    """All figures for one corpus size; keys are prefixed `scale_{label}_` (label 1k, 10k, 100k)."""
    import chromadb

    label = f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)
    corpus = synthetic_corpus(n, vocabulary, queries, seed=n)
    figures = _bm25_figures(label, corpus)
    base = dataclasses.replace(settings, collection="benchscale", chroma_host=None)
    with temp_dir("scale-embedded") as path:
        figures.update(_store_figures(f"scale_{label}_embedded", dataclasses.replace(base, index_dir=path), corpus))
        chromadb.api.shared_system_client.SharedSystemClient.clear_system_cache()  # let go of the files
    with temp_dir("scale-server") as path, chroma_server(path) as (host, port, startup):
        figures["chroma_server_start_s"] = round(startup, 3)
        server = dataclasses.replace(base, index_dir=path, chroma_host=host, chroma_port=port)
        figures.update(_store_figures(f"scale_{label}_server", server, corpus))
    # The headline figure: the product's retrieval (query embedding + Chroma server + BM25, fused).
    figures[f"scale_{label}_query_p50_ms"] = figures[f"scale_{label}_server_retrieve_p50_ms"]
    figures[f"scale_{label}_query_p95_ms"] = figures[f"scale_{label}_server_retrieve_p95_ms"]
    return figures


def run_scale(sizes: Sequence[int], settings: Settings, queries: int = 50) -> Figures:
    """Scale figures for every size (vocabulary from `settings.corpus_path`)."""
    vocabulary = article_vocabulary(settings.corpus_path)
    figures: Figures = {}
    for n in sizes:
        figures.update(scale_one(n, vocabulary, queries, settings))
    return figures
