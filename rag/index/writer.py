"""Write one complete build into new Chroma collections: passages (chunked, embedded) and document texts.

A document already embedded in the previous build brings its stored passages and vectors along (adding
or removing one document re-embeds nothing else); a new one is chunked and embedded here, or, with
`defer`, stored without vectors in the build's pending collection: BM25 finds it as soon as the build is
visible, and `rag.index.vectors` writes its vectors afterwards. A passage still pending in the previous
build stays pending in the next one.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rag.config import Settings
from rag.index import store
from rag.index.chunking import chunk_text
from rag.index.sources import LibraryDoc
from rag.models.embed import embed_passages, get_embedder

Progress = Callable[[float, str], None]
EMBED_BATCH = 32  # larger batches embed faster per passage; still a dozen progress steps for a 50-page PDF


@dataclass(frozen=True)
class Stored:
    """A passage of the previous build, copied as it is: text, metadata and vector."""

    text: str
    meta: dict[str, Any]
    vector: Any  # None: still being embedded (a pending passage)


def passage_meta(doc: LibraryDoc, start: int, end: int) -> dict[str, Any]:
    # Chroma metadata can't hold None: page 0 means "no pages".
    page = doc.page(start)
    return {"source": doc.doc.source, "start": start, "end": end, "document": doc.id, "title": doc.doc.title,
            "page": page or 0}  # fmt: skip


def write_build(
    client: Any,
    settings: Settings,
    docs: Sequence[LibraryDoc],
    pointer_fields: dict[str, Any],
    report: Progress,
    reuse: Mapping[str, list[Stored]] | None = None,
    defer: bool = False,
) -> store.Pointer:
    """Store every document's passages in a new build and return its pointer; delete it again on failure.
    With `defer`, new passages are stored without vectors (the pointer counts them as `pending`)."""
    started = time.perf_counter()
    reuse = reuse or {}
    name = f"{settings.collection}-{pointer_fields['content_hash'][:16]}-{uuid.uuid4().hex[:8]}"
    try:
        with store.store_errors(settings):
            passages, sources = store.create_build(client, name, pointer_fields["embed_model"])
            store.add_sources(sources, [d.doc.text for d in docs], [d.metadata(i) for i, d in enumerate(docs)])
        if defer:
            count, pending = _write_pending(settings, client, name, passages, docs, reuse)
        else:
            count, pending = _write_passages(settings, client, name, passages, docs, reuse, report), 0
        with store.store_errors(settings):
            store.mark_complete(passages)
    except BaseException:
        # Interrupted or failed: the half-written build must not linger (the pointer still names the old one).
        store.drop_build(client, name)
        raise
    return store.Pointer(
        collection=name, documents=len(docs), passages=count, pending=pending,
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        seconds=round(time.perf_counter() - started, 3), **pointer_fields,
    )  # fmt: skip


def _write_pending(
    settings: Settings, client: Any, name: str, collection: Any, docs: Sequence[LibraryDoc],
    reuse: Mapping[str, list[Stored]],
) -> tuple[int, int]:  # fmt: skip
    """Passages in library order, the new documents' without vectors; returns (passages, pending)."""
    position, pending = 0, 0
    for doc in docs:
        if doc.id in reuse:
            stored = reuse[doc.id]
        else:
            chunks = chunk_text(doc.doc.text, breaks=doc.doc.pages)
            stored = [Stored(doc.doc.text[c.start : c.end], passage_meta(doc, c.start, c.end), None) for c in chunks]
        position = _copy(settings, client, name, collection, stored, position)
        pending += sum(1 for s in stored if s.vector is None)
    return position, pending


def _write_passages(
    settings: Settings, client: Any, name: str, collection: Any, docs: Sequence[LibraryDoc],
    reuse: Mapping[str, list[Stored]], report: Progress,
) -> int:  # fmt: skip
    """Passages of every document in library order (ids "p<position>"); returns how many."""
    todo = [(d, c.start, c.end) for d in docs if d.id not in reuse for c in chunk_text(d.doc.text, breaks=d.doc.pages)]
    position, embedded = 0, 0
    if todo:
        report(0.05, "Loading the embedding model")
    for doc in docs:
        if doc.id in reuse:
            position = _copy(settings, client, name, collection, reuse[doc.id], position)
            continue
        mine = [(s, e) for d, s, e in todo if d is doc]
        for first in range(0, len(mine), EMBED_BATCH):
            batch = mine[first : first + EMBED_BATCH]
            texts = [doc.doc.text[s:e] for s, e in batch]
            vectors = embed_passages(get_embedder(settings), texts)
            ids = [f"p{position + i}" for i in range(len(batch))]
            with store.store_errors(settings):
                store.add_passages(collection, ids, vectors, texts, [passage_meta(doc, s, e) for s, e in batch])
            position, embedded = position + len(batch), embedded + len(batch)
            report(0.1 + 0.85 * embedded / len(todo), f"Embedded {embedded} of {len(todo)} passages")
    return position


def _copy(settings: Settings, client: Any, name: str, collection: Any, stored: list[Stored], position: int) -> int:
    """Stored passages under ids from `position` on: those with a vector into the passage collection, those
    still without one into the pending collection."""
    for first in range(0, len(stored), 1000):
        batch = [(f"p{position + i}", s) for i, s in enumerate(stored[first : first + 1000])]
        done, todo = [b for b in batch if b[1].vector is not None], [b for b in batch if b[1].vector is None]
        with store.store_errors(settings):
            if done:
                store.add_passages(collection, [i for i, _ in done], [s.vector for _, s in done],
                                   [s.text for _, s in done], [s.meta for _, s in done])  # fmt: skip
            if todo:
                store.add_pending(client, name, [i for i, _ in todo], [s.text for _, s in todo],
                                  [s.meta for _, s in todo])  # fmt: skip
        position += len(batch)
    return position
