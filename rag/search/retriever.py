"""Hybrid retrieval: BM25 (bm25s, English stemmer) and dense Chroma search, fused (ranking.py: min-max score
fusion by default, reciprocal rank fusion as an option), near-duplicate passages collapsed.

`open_retriever(settings)` opens an existing build (it never builds: `rag.api.open_index` decides that) and loads the embedder, the current Chroma build and a BM25 index once per
process; it is thread-safe (Streamlit serves sessions on threads) and notices when another thread or
process has switched the index to a new build.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rag.cache import SettingsCache
from rag.config import Settings
from rag.errors import IndexCorruptError, IndexMissingError, InputError
from rag.index import store
from rag.index.sources import LibraryDoc, from_metadata
from rag.models.embed import cached_passages, embed_query, get_embedder, model_id
from rag.search.ranking import DEDUPE_JACCARD, FUSIONS, Lexical, candidates, ranks, rrf_fusion, score_fusion
from rag.text import near_duplicate
from rag.types import Document, IndexStats, Passage

MAX_K = 50
_WORD = re.compile(r"\w+")
_ALLOWED_CONTROL = {"\n", "\t", "\r"}


@dataclass(frozen=True)
class Hit:
    """One retrieved passage with the evidence behind its rank (the answering code gates on these)."""

    passage: Passage
    dense: float  # cosine similarity of question and passage
    bm25: float  # BM25 score (0 when no query term matches)
    dense_rank: int | None  # 1-based rank among dense results, None if outside them
    bm25_rank: int | None  # 1-based BM25 rank among the lexical candidates, None if outside them or no term matches


@dataclass
class _Build:
    """One loaded build: everything a query needs, held in memory except the vectors."""

    name: str
    collection: Any
    ids: list[str]
    passages: list[Passage]
    words: list[frozenset[str]]
    lexical: Lexical
    texts: dict[str, str]
    stats: IndexStats
    library: dict[str, LibraryDoc]  # by document id, in library order
    doc_of: np.ndarray  # the document id of each passage (masks BM25 scores when questions go to some documents)


def _load_build(client: Any, pointer: store.Pointer) -> _Build:
    collection, records, sources = store.load_build(client, pointer.collection)
    library = {d.id: d for d in (from_metadata(text, meta) for text, meta in sources)}
    by_source = {d.doc.source: d for d in library.values()}
    order = sorted(range(len(records["ids"])), key=lambda i: int(records["ids"][i][1:]))
    ids = [records["ids"][i] for i in order]
    passages = []
    for i in order:
        meta, text = records["metadatas"][i], records["documents"][i]
        doc = library.get(meta.get("document", "")) or by_source[meta["source"]]
        passages.append(Passage(source=meta["source"], text=text, start=meta["start"], end=meta["end"],
                                document=doc.id, title=doc.doc.title, page=meta.get("page") or None))  # fmt: skip
    stats = IndexStats(
        documents=pointer.documents,
        passages=pointer.passages,
        collection=pointer.collection,
        embed_model=pointer.embed_model,
        built=False,
        seconds=pointer.seconds,
        built_at=pointer.built_at,
        vectors_pending=pointer.pending,
    )
    words = [frozenset(w.lower() for w in _WORD.findall(p.text)) for p in passages]
    texts = {d.doc.source: d.doc.text for d in library.values()}
    doc_of = np.array([p.document for p in passages], dtype=object)
    return _Build(pointer.collection, collection, ids, passages, words, Lexical([p.text for p in passages]), texts,
                  stats, library, doc_of)  # fmt: skip


class Retriever:
    """Hybrid retriever over the current build of `settings.collection`; safe to share between threads."""

    def __init__(self, settings: Settings, fusion: str = "score") -> None:
        if fusion not in FUSIONS:
            raise InputError(f"Unknown fusion {fusion!r}: choose one of {', '.join(FUSIONS)}.")
        self._fusion = fusion
        self._settings = settings
        self._embed_model = model_id(settings)
        self._embedder = get_embedder(settings)
        self._lock = threading.Lock()
        self._build: _Build | None = None
        self._current()

    def _current(self) -> _Build:
        """The current build, reloaded when the pointer has moved to a new one since the last query."""
        settings = self._settings
        with self._lock, store.store_errors(settings):
            client = store.get_client(settings)
            try:
                pointer = store.read_pointer(client, settings, self._embed_model)
            except Exception:
                # The store may have been wiped and rebuilt (`index --rebuild`) by another process, or
                # the server restarted: re-open it once before calling it corrupt or unreachable.
                store.forget_client(settings)
                client = store.get_client(settings)
                pointer = store.read_pointer(client, settings, self._embed_model)
            if pointer is None:
                raise IndexMissingError(
                    f"No index for {self._embed_model} in {store.where(settings)}: run `python -m rag index`."
                )
            if self._build is None or self._build.name != pointer.collection:
                try:
                    self._build = _load_build(client, pointer)
                except Exception as err:
                    raise IndexCorruptError(
                        f"The index build {pointer.collection} in {store.where(settings)} is missing or "
                        f"unreadable; {store.REBUILD_HINT}."
                    ) from err
            elif self._build.stats.vectors_pending != pointer.pending:
                # The same build, more of its vectors written (rag.index.vectors): dense search finds them
                # as they land; only the count changes here.
                self._build.stats = replace(self._build.stats, vectors_pending=pointer.pending)
            return self._build

    @property
    def stats(self) -> IndexStats:
        return self._current().stats

    def sources(self) -> list[str]:
        return list(self._current().texts)

    def source_text(self, source: str) -> str:
        texts = self._current().texts
        if source not in texts:
            raise InputError(f"Unknown source {source!r}; the index holds: {', '.join(texts)}.")
        return texts[source]

    def documents(self) -> list[Document]:
        """The library's documents, in the order they were added."""
        build = self._current()
        counts = Counter(p.document for p in build.passages)
        return [d.record(counts[d.id]) for d in build.library.values()]

    def scope(self) -> list[str]:
        """Ids of the documents a question is about: the whole library, in the order added."""
        return list(self._current().library)

    def _doc(self, doc_id: str) -> LibraryDoc:
        library = self._current().library
        if doc_id not in library:
            raise InputError(f"No document with id {doc_id!r} in the library.")
        return library[doc_id]

    def document_text(self, doc_id: str) -> str:
        """The extracted text that citations' start/end offsets point into."""
        return self._doc(doc_id).doc.text

    def page_starts(self, doc_id: str) -> tuple[int, ...]:
        """Where each page starts in `document_text` (empty for formats without pages)."""
        return self._doc(doc_id).doc.pages

    def document_passages(self, doc_id: str) -> tuple[list[Passage], np.ndarray]:
        """One document's passages in document order and their embeddings (one row each): the stored ones, and
        for passages still waiting for theirs, vectors embedded here (kept in memory only)."""
        self._doc(doc_id)
        build = self._current()
        chosen = [i for i, p in enumerate(build.passages) if p.document == doc_id]
        with store.store_errors(self._settings):
            found = store.vectors(build.collection, [build.ids[i] for i in chosen])
        missing = [build.ids[i] for i in chosen if build.ids[i] not in found]
        if missing:
            texts = {build.ids[i]: build.passages[i].text for i in chosen}
            found.update(zip(missing, cached_passages(self._embedder, [texts[m] for m in missing]), strict=True))
        return [build.passages[i] for i in chosen], np.array([found[build.ids[i]] for i in chosen], dtype=np.float32)

    def vectors_pending(self, documents: Sequence[str] | None = None) -> int:
        """Passages (of `documents`, None: all) that dense search can't find yet: their vectors are still being
        written, so only BM25 ranks them."""
        build = self._current()
        pending = self._pending(build)
        wanted = None if documents is None else set(documents)
        return sum(1 for idx in pending if wanted is None or build.passages[idx].document in wanted)

    def _pending(self, build: _Build) -> frozenset[int]:
        """Positions of the build's passages still without a vector (none asked for once the count is 0)."""
        if not build.stats.vectors_pending:
            return frozenset()
        with store.store_errors(self._settings):
            ids = store.pending_records(store.get_client(self._settings), build.name)["ids"]
        return frozenset(int(pid[1:]) for pid in ids)

    def retrieve(self, question: str, k: int = 5, documents: Sequence[str] | None = None) -> list[Passage]:
        return [hit.passage for hit in self.retrieve_detailed(question, k, documents)]

    def passage_vectors(self, passages: Sequence[Passage]) -> list[np.ndarray | None]:
        """The stored embedding of each passage (None for a passage not in the current build)."""
        build = self._current()
        where = {(p.source, p.start, p.end): i for i, p in enumerate(build.passages)}
        idx = [where.get((p.source, p.start, p.end)) for p in passages]
        with store.store_errors(self._settings):
            found = store.vectors(build.collection, [build.ids[i] for i in idx if i is not None])
        return [found.get(build.ids[i]) if i is not None else None for i in idx]

    def retrieve_detailed(self, question: str, k: int = 5, documents: Sequence[str] | None = None) -> list[Hit]:
        """Top-k hits by fused score (Passage.score), near-duplicates collapsed; only from `documents` if given."""
        # The question was validated at the entry point (rag.api, the CLI, the app); text is clean here.
        text = question
        vector = embed_query(self._embedder, text)
        for attempt in (1, 2):
            build = self._current()
            try:
                with store.store_errors(self._settings):
                    dense = self._dense(build, vector, k, documents)
                break
            except IndexCorruptError:
                # A rebuild elsewhere may have switched the pointer and deleted this build mid-query:
                # look at the pointer once more; a build that is really gone raises on the second try.
                if attempt == 2:
                    raise
        lexical = build.lexical.scores(text)
        if documents is not None:
            lexical = np.where(np.isin(build.doc_of, list(documents)), lexical, 0.0)
        return self._fuse(build, vector, dense, lexical, k)

    def _dense(
        self, build: _Build, vector: np.ndarray, k: int, documents: Sequence[str] | None
    ) -> dict[int, tuple[int, float]]:
        """Passage index -> (rank, cosine) for the dense candidates."""
        n = min(len(build.ids), candidates(k))
        found = store.nearest(build.collection, vector, n, documents)
        # ids are "p<position>"; cosine distance = 1 - cos
        return {int(pid[1:]): (rank, 1.0 - dist) for rank, (pid, dist) in enumerate(found, 1)}

    def _fuse(
        self, build: _Build, vector: np.ndarray, dense: dict[int, tuple[int, float]], lexical: np.ndarray, k: int
    ) -> list[Hit]:
        # Only the best BM25 matches compete, like the dense side: a common word must not drag the whole
        # corpus into the fusion of a large index.
        matched = np.flatnonzero(lexical > 0)
        if len(matched) > candidates(k):
            matched = matched[np.argpartition(-lexical[matched], candidates(k))[: candidates(k)]]
        bm25_rank = ranks(matched[np.argsort(-lexical[matched], kind="stable")])
        fuse = rrf_fusion if self._fusion == "rrf" else score_fusion
        fused = fuse(dense, lexical, bm25_rank, self._pending(build))
        chosen: list[int] = []
        for idx in sorted(fused, key=lambda i: (-fused[i], i)):
            if not any(near_duplicate(build.words[idx], build.words[j], DEDUPE_JACCARD) for j in chosen):
                chosen.append(idx)
            if len(chosen) == k:
                break
        cosines = self._cosines(build, vector, dense, chosen)
        return [
            Hit(
                passage=replace(build.passages[idx], score=round(fused[idx], 6)),
                dense=cosines[idx],
                bm25=float(lexical[idx]),
                dense_rank=dense[idx][0] if idx in dense else None,
                bm25_rank=bm25_rank.get(idx),
            )
            for idx in chosen
        ]

    def _cosines(
        self, build: _Build, vector: np.ndarray, dense: dict[int, tuple[int, float]], chosen: list[int]
    ) -> dict[int, float]:
        """Cosine of every chosen passage; those outside the dense candidates are fetched from Chroma, and one
        whose vector is still being written counts 0.0 (no dense evidence: BM25 alone ranked it)."""
        out = {idx: dense[idx][1] for idx in chosen if idx in dense}
        missing = [idx for idx in chosen if idx not in dense]
        if missing:
            with store.store_errors(self._settings):
                vectors = store.vectors(build.collection, [build.ids[i] for i in missing])
            for idx in missing:
                emb = vectors.get(build.ids[idx])
                out[idx] = float(np.dot(emb, vector)) if emb is not None else 0.0
        return out


_retrievers: SettingsCache[Retriever] = SettingsCache()


def open_retriever(settings: Settings) -> Retriever:
    """The process-wide retriever over the current build; IndexMissingError when none was built (never builds)."""
    key = (settings.store, settings.collection, settings.embedding)
    return _retrievers.get(key, lambda: Retriever(settings))
