"""The document library: add one document (a file, a URL, pasted text) or remove one, keeping the rest.

Each change writes a new build through the same atomic switch as `build_index`; the other documents'
passages and vectors are copied from the current build. The new document's passages go in without vectors
(BM25-first): it is keyword-searchable as soon as this returns, and `rag.index.vectors` embeds it afterwards
(`rag.api.add_document` waits for that, or leaves it to a background pass).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.errors import DocumentExistsError, IndexCorruptError, InputError, StoreUnavailableError
from rag.index import store
from rag.index.build import Progress, build_lock, current_library, open_for_build, switch_to
from rag.index.sources import LibraryDoc, from_metadata, from_text, read_one
from rag.index.writer import Stored
from rag.types import Document


def add_document(
    path_or_url: str | Path, *, settings: Settings, progress: Progress | None = None, allow_private: bool = True,
    name: str | None = None,
) -> Document:  # fmt: skip
    """Read a file or URL and add it to the library; `DocumentExistsError` if its text is already there."""
    report: Progress = progress or (lambda fraction, message: None)
    report(0.0, f"Reading {name or path_or_url}")
    new = read_one(path_or_url, settings, allow_private=allow_private)
    if name:
        new = dataclasses.replace(new, doc=dataclasses.replace(new.doc, source=" ".join(name.split())[:200]))
    return _add(new, settings, report)


def add_text(text: str, *, title: str, settings: Settings, progress: Progress | None = None) -> Document:
    """Add pasted text as a document titled `title`."""
    return _add(from_text(text, title), settings, progress or (lambda fraction, message: None))


def remove_document(doc_id: str, *, settings: Settings, progress: Progress | None = None) -> Document:
    """Remove one document; the others keep their passages. The last document can't be removed."""
    def change(docs: list[LibraryDoc]) -> tuple[list[LibraryDoc], LibraryDoc]:
        gone = next((d for d in docs if d.id == doc_id), None)
        if gone is None:
            raise InputError(f"No document with id {doc_id!r} in the library.")
        if len(docs) == 1:
            raise InputError(f"{gone.doc.title!r} is the only document; add another before removing it.")
        return [d for d in docs if d.id != doc_id], gone

    return _change(settings, progress or (lambda fraction, message: None), change)


def _add(new: LibraryDoc, settings: Settings, report: Progress) -> Document:
    def change(docs: list[LibraryDoc]) -> tuple[list[LibraryDoc], LibraryDoc]:
        same = next((d for d in docs if d.id == new.id), None)
        if same is not None:
            raise DocumentExistsError(f"{new.doc.source}: is already in the library as {same.doc.title!r}.")
        return [*docs, new], new

    return _change(settings, report, change)


def _change(
    settings: Settings, report: Progress, change: Callable[[list[LibraryDoc]], tuple[list[LibraryDoc], LibraryDoc]]
) -> Document:
    """Apply `change` to the current library under the build lock and switch to the result."""
    with build_lock(settings):
        client = open_for_build(settings)
        docs, reuse = current_library(client, settings)
        new_docs, subject = change(docs)
        pointer = switch_to(client, settings, new_docs, report, reuse, defer=True)
    report(1.0, "Index ready")
    if subject.id in reuse:  # removed (or kept): its passages were counted in the previous build
        return subject.record(len(reuse[subject.id]))
    return subject.record(pointer.passages - sum(len(reuse[d.id]) for d in new_docs if d.id in reuse))


# --- suggested questions, stored with the build -----------------------------------------------------

SUGGESTIONS = "suggestions"  # the `-src` metadata field: a JSON list of questions ("[]": made, none passed)


def stored_suggestions(settings: Settings, build: str, doc_id: str) -> list[str] | None:
    """The suggested questions stored for a document in build `build`; None when none were made for it yet
    (or that build is gone: a new build starts without suggestions)."""
    try:
        with store.store_errors(settings):
            found = store.source_metadata(store.get_client(settings), build, doc_id)
    except (IndexCorruptError, StoreUnavailableError):
        return None
    if found is None or SUGGESTIONS not in found[1]:
        return None
    try:
        questions = json.loads(found[1][SUGGESTIONS])
    except (TypeError, ValueError):
        return None
    return [q for q in questions if isinstance(q, str)] if isinstance(questions, list) else None


def store_suggestions(settings: Settings, build: str, doc_id: str, questions: list[str], made_by: str) -> bool:
    """Store a document's suggested questions in build `build` (the one they were checked against); False when
    that build was replaced meanwhile (its successor starts without them)."""
    fields = {SUGGESTIONS: json.dumps(questions, ensure_ascii=False), "suggested_by": made_by}
    try:
        with store.store_errors(settings):
            return store.update_source_metadata(store.get_client(settings), build, doc_id, fields)
    except (IndexCorruptError, StoreUnavailableError):
        return False
