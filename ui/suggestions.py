"""Suggested questions on the empty chat: the ones stored with the build, and, for a document that has none yet,
a background thread that makes them (`rag.suggested_questions`: minutes with a local model), so opening the chat
never waits. Each document of a build is made once per process, whatever the sessions and reruns do; the result
is stored with the build, so a restart only reads it. No Streamlit here: the app shows the buttons and reruns.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import rag
from rag import RagError, Settings

log = logging.getLogger(__name__)
SHOWN = 4  # buttons on the empty chat

Key = tuple[str, str, str]  # (store, build, document id)


class Makers:
    """The background threads making suggestions, one per document of a build; thread-safe, process-wide."""

    def __init__(self, make: Callable[[str, Settings, Any], object] | None = None) -> None:
        self._make = make or (lambda doc, settings, model: rag.suggested_questions(doc, settings=settings, model=model))
        self._lock = threading.Lock()
        self._running: dict[Key, threading.Thread] = {}
        self._finished: set[Key] = set()

    def ensure(self, key: Key, settings: Settings, model: Any) -> bool:
        """Start making the document's suggestions unless that was done already; True while they are being made."""
        with self._lock:
            if key in self._finished:
                return False
            if key not in self._running:
                thread = threading.Thread(
                    target=self._run, args=(key, settings, model), name="rag-suggest", daemon=True
                )
                self._running[key] = thread
                thread.start()
            return True

    def _run(self, key: Key, settings: Settings, model: Any) -> None:
        try:
            self._make(key[2], settings, model)
        except RagError as err:  # e.g. the document was removed meanwhile, or the model failed
            log.warning("suggested questions for %s: %s", key[2], err)
        except Exception:
            log.exception("making suggested questions failed")
        finally:
            with self._lock:
                self._running.pop(key, None)
                self._finished.add(key)  # made or failed: not tried again by this process for this build

    def busy(self, keys: Sequence[Key]) -> bool:
        with self._lock:
            return any(key in self._running for key in keys)


MAKERS = Makers()

PRIMED = 2  # documents whose whole-document prompt is read ahead, newest first


def _prime(scope: str, settings: Settings, model: Any) -> None:
    """Each short document's whole-document prompt (restored from disk when it was read before), which every
    question about it starts with; and for several documents at once, their shared overview prompt."""
    ids = scope.split("\n") if scope else None
    # The local server has one slot: while it reads a prompt in the background, a question waits. So only the
    # newest documents asked about (a new read costs 20-70 s on 2 cores; a restored one well under a second).
    newest = ids if ids is not None else [d.id for d in rag.list_documents(settings=settings)]
    primed = rag.prime_documents(newest[-PRIMED:], settings=settings, model=model)
    # One short document read whole: its overview prompt starts with the same prefix, nothing more to read.
    if ids is None or len(ids) > 1 or primed < len(newest[-PRIMED:]):
        rag.prime_overview(ids, settings=settings, model=model)


# The same once-per-key background runner reads the documents' whole text into the local model's prompt cache,
# so a first question doesn't wait for it. Key: (store, build, scope).
PRIMERS = Makers(_prime)


def prime(settings: Settings, retriever: Any, model: Any, documents: Sequence[str] | None) -> None:
    """Start reading the asked-about documents (None: all) into the local model's cache, once per process."""
    if model is None or settings.resolved_provider != "local":
        return  # only the local model keeps a prompt cache worth filling; remote ones would bill for it
    if retriever.stats.vectors_pending:
        return  # it would embed the new passages a second time, beside the background pass: started once it is done
    PRIMERS.ensure((str(settings.store), retriever.stats.collection, "\n".join(documents or ())), settings, model)


def suggestions(
    settings: Settings, retriever: Any, model: Any, documents: Sequence[str], makers: Makers | None = None
) -> tuple[list[str], list[Key]]:
    """Up to SHOWN stored questions about `documents` (the newest document's first, then taking turns), and the
    keys of the documents whose questions are still being made (started here when none are stored yet)."""
    if model is None:  # the extractive provider (or a model that failed to load) offers none
        return [], []
    makers = makers or MAKERS
    stats = retriever.stats
    build = stats.collection
    per_doc: list[list[str]] = []
    pending: list[Key] = []
    for doc in reversed(documents):
        try:
            stored = rag.suggested_questions(doc, settings=settings, make=False)
        except RagError:  # removed since the page was drawn
            continue
        key = (str(settings.store), build, doc)
        # Made once every vector is written: making them reads the documents' vectors (rag.suggest).
        if not stored and not stats.vectors_pending and makers.ensure(key, settings, model):
            pending.append(key)
        per_doc.append(stored)
    return _taking_turns(per_doc, SHOWN), pending


def _taking_turns(lists: Sequence[Sequence[str]], limit: int) -> list[str]:
    out: list[str] = []
    for round_ in range(max((len(x) for x in lists), default=0)):
        out += [x[round_] for x in lists if round_ < len(x) and x[round_] not in out]
    return out[:limit]
