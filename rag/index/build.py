"""Build the index: read sources, chunk, embed, write a new Chroma build, then switch the pointer to it.

Idempotent (a content hash over documents, embedding model and chunker version: unchanged content does
no work) and atomic (a build becomes visible only when its pointer is written after every passage is
stored; a failed or interrupted build is deleted and the previous one keeps serving queries). Adding or
removing one document (`rag.index.library`) goes through the same switch, with one difference: the new
document's passages are stored without vectors ("pending", keyword-searchable at once) and
`rag.index.vectors` writes their vectors into the visible build afterwards, batch by batch. An interrupted
pass leaves every passage either pending or with its vector; the next pass (the app opening the index, a
library change, or `python -m rag index`) embeds the rest again from the stored text.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.errors import IndexBusyError, IndexCorruptError, RagError, SourceError, StoreUnavailableError
from rag.index import store, vectors
from rag.index.access import LOCK_WAIT, build_lock, current_pointer, open_for_build
from rag.index.chunking import CHUNKER_VERSION
from rag.index.sources import LibraryDoc, from_metadata, read_sources, source_id
from rag.index.writer import Progress, Stored, write_build
from rag.models.embed import model_id
from rag.types import IndexStats

__all__ = ["Progress", "build_index", "build_lock", "content_hash", "source_id", "switch_to"]

# Part of every build's identity: a build written by an older layout (no document ids) is rebuilt.
LAYOUT_VERSION = "documents-v1"


def content_hash(docs: Sequence[LibraryDoc], embed_model: str) -> str:
    digest = hashlib.sha256(f"{embed_model}\0{CHUNKER_VERSION}\0{LAYOUT_VERSION}\0".encode())
    for d in docs:
        digest.update(f"{d.doc.source}\0{d.doc.title}\0{len(d.doc.text)}\0".encode())
        digest.update(d.doc.text.encode("utf-8"))
    return digest.hexdigest()


def build_index(
    sources: Sequence[str | Path] | None = None,
    *,
    settings: Settings | None = None,
    rebuild: bool = False,
    progress: Progress | None = None,
) -> IndexStats:
    """Index `sources` (None: settings.corpus_path) as the whole library, replacing the current one.
    Unusable sources are reported in `errors`, the rest indexed."""
    settings = settings or Settings.from_env()
    started = time.perf_counter()
    report: Progress = progress or (lambda fraction, message: None)
    if sources is None:
        paths: list[str | Path] = [settings.corpus_path]
    else:
        # A lone path is a common slip for a one-element list; treat it as one.
        paths = [sources] if isinstance(sources, str | Path) else list(sources)
    if not paths:
        raise SourceError("No source files were given.")
    report(0.0, "Reading sources")
    docs, errors = read_sources(paths, settings)
    if not docs:
        raise SourceError(" ".join(errors))
    with build_lock(settings):
        client = open_for_build(settings, rebuild)
        reuse: dict[str, list[Stored]] = {}
        if sources is None:
            docs, reuse = _with_added_documents(client, settings, docs)
            reuse = {} if rebuild else reuse  # a rebuild re-embeds everything
        current = current_pointer(client, settings)
        digest = content_hash(docs, model_id(settings))
        unchanged = current is not None and current.content_hash == digest and not rebuild and _intact(client, current)
        pointer = current if current is not None and unchanged else switch_to(client, settings, docs, report, reuse)
    if unchanged:
        if pointer.pending:  # a document added BM25-first whose vectors were interrupted: finish them here
            _finish_vectors(settings, report)
            pointer = dataclasses.replace(pointer, pending=0)
        report(1.0, "Index is up to date")
        return _stats(pointer, built=False, seconds=time.perf_counter() - started, errors=errors)
    report(1.0, "Index ready")
    return _stats(pointer, built=True, seconds=time.perf_counter() - started, errors=errors)


def switch_to(
    client: Any, settings: Settings, docs: Sequence[LibraryDoc], report: Progress,
    reuse: dict[str, list[Stored]] | None = None, defer: bool = False,
) -> store.Pointer:  # fmt: skip
    """Write `docs` as a new build and make it the current one (call holding `build_lock`). With `defer`, new
    passages are stored without vectors (`rag.index.vectors` writes them); without, every passage has its
    vector when the build becomes visible, so a document still pending in `reuse` is embedded here."""
    embed_model = model_id(settings)
    fields = {"content_hash": content_hash(docs, embed_model), "embed_model": embed_model}
    if not defer and reuse:
        reuse = {doc: kept for doc, kept in reuse.items() if all(s.vector is not None for s in kept)}
    pointer = write_build(client, settings, docs, fields, report, reuse, defer)
    with store.store_errors(settings):
        store.write_pointer(client, settings, pointer)
        store.cleanup(client, settings, keep={p.collection for p in store.all_pointers(client, settings)})
    return pointer


def _with_added_documents(
    client: Any, settings: Settings, corpus: list[LibraryDoc]
) -> tuple[list[LibraryDoc], dict[str, list[Stored]]]:
    """The corpus as read now, plus the documents added to the current library since (kept with their
    vectors); a library that can't be read (a damaged store being rebuilt) contributes nothing."""
    try:
        kept, reuse = current_library(client, settings)
    except RagError:
        return corpus, {}
    names, ids = {d.doc.source for d in corpus}, {d.id for d in corpus}
    added = [d for d in kept if d.doc.source not in names and d.id not in ids]
    return corpus + added, reuse


def _finish_vectors(settings: Settings, report: Progress) -> None:
    vectors.finish(settings, counted=vectors.as_progress(report, 0.1))


def _intact(client: Any, pointer: store.Pointer) -> bool:
    """Whether the current build still has all its passages, with vectors or pending (someone may have deleted
    it)."""
    try:
        return store.count_passages(client, pointer.collection) == pointer.passages
    except Exception:
        return False


def _stats(pointer: store.Pointer, *, built: bool, seconds: float, errors: list[str]) -> IndexStats:
    return IndexStats(
        documents=pointer.documents,
        passages=pointer.passages,
        collection=pointer.collection,
        embed_model=pointer.embed_model,
        built=built,
        seconds=seconds,
        built_at=pointer.built_at,
        errors=tuple(errors),
        vectors_pending=pointer.pending,
    )


def current_library(client: Any, settings: Settings) -> tuple[list[LibraryDoc], dict[str, list[Stored]]]:
    """The documents of the current build and their stored passages by document id (empty: no index yet)."""
    pointer = current_pointer(client, settings)
    if pointer is None:
        return [], {}
    try:
        with store.store_errors(settings):
            _, records, sources = store.load_build(client, pointer.collection, vectors=True)
    except (IndexCorruptError, StoreUnavailableError):
        raise
    except Exception as err:
        raise IndexCorruptError(
            f"The current index can't be read to add to it; {store.REBUILD_HINT}."
        ) from err
    docs = [from_metadata(text, meta) for text, meta in sources]
    by_source = {d.doc.source: d.id for d in docs}
    reuse: dict[str, list[Stored]] = {d.id: [] for d in docs}
    order = sorted(range(len(records["ids"])), key=lambda i: int(records["ids"][i][1:]))
    for i in order:
        meta = records["metadatas"][i]
        doc_id = meta.get("document") or by_source[meta["source"]]
        reuse[doc_id].append(Stored(records["documents"][i], meta, records["embeddings"][i]))
    return docs, reuse
