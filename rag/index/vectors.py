"""The vectors of passages added BM25-first (`writer.write_build(defer=True)`), written batch by batch into the
current build while questions are answered from BM25 and whichever vectors are already there.

Consistency: a batch is embedded without the build lock and stored under it (`store.store_vectors`: the
vectors first, then the pending records go, then the pointer's `pending` count). An interruption loses at
most the batch being embedded and leaves a consistent index: each passage is pending or has its vector (one
caught in both counts once). Nothing is resumed by itself: the app resumes a pass whenever it opens the
index (`rag.api.resume_embedding`), `python -m rag index` and every library change finish them too,
embedding again from the stored text. A build switched meanwhile (another document added) carries the
pending passages over; the pass follows it and stores its batch wherever that build holds the same passages.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rag.config import Settings
from rag.errors import RagError
from rag.index import store
from rag.index.access import build_lock, current_pointer, open_for_build
from rag.index.writer import Progress
from rag.models.embed import embed_passages, get_embedder
from rag.types import VectorProgress

log = logging.getLogger(__name__)
Embed = Callable[[Sequence[str]], np.ndarray]  # passage texts -> (n, dim) unit vectors
# Small batches: a question's own embedding waits for the batch being embedded (the engine runs one call at a
# time), ~1 s for 16 passages on a quiet 2-core machine; larger ones gain little (docs/decisions.md).
BATCH = 16
# The build lock, waited for: a builder (adding a document, `rag index`) holds it for seconds to minutes, and
# its new build carries the pending passages along, so waiting loses nothing.
LOCK_WAIT = 24 * 3600.0


def model_embed(settings: Settings) -> Embed:
    """The settings' own embedding model (loaded on first use)."""
    return lambda texts: embed_passages(get_embedder(settings), texts)


Counted = Callable[[int, int], None]  # (passages stored by this pass so far, passages still pending)


def finish(settings: Settings, *, embed: Embed | None = None, counted: Counted | None = None,
           batch: int = BATCH, stop: threading.Event | None = None) -> int:  # fmt: skip
    """Embed and store every pending passage of the current build (following builds that replace it);
    returns how many were stored. `stop` ends the pass after the batch at hand."""
    embed = embed or model_embed(settings)
    done = 0
    while stop is None or not stop.is_set():
        todo, left = _next_batch(settings, batch)
        if counted is not None:
            counted(done, left)
        if not todo["ids"]:
            break
        vectors = np.asarray(embed(todo["documents"]), dtype=np.float32)
        stored, left = _store(settings, todo, vectors)
        done += stored
    return done


def as_progress(progress: Progress, start: float = 0.0) -> Counted:
    """A `Counted` reporting to a (fraction, message) progress callback, the fraction from `start` to 1."""

    def counted(done: int, left: int) -> None:
        share = done / (done + left) if done + left else 1.0
        progress(start + (1.0 - start) * share, f"Embedded {done} of {done + left} passages")

    return counted


def pending(settings: Settings) -> int:
    """Passages of the current build still without a vector (0 without an index)."""
    with store.store_errors(settings):
        pointer = current_pointer(store.get_client(settings), settings)
    return pointer.pending if pointer is not None else 0


def _next_batch(settings: Settings, size: int) -> tuple[dict[str, list[Any]], int]:
    """(the first `size` pending passages of the current build, how many are pending in all)."""
    empty: dict[str, list[Any]] = {"ids": [], "documents": [], "metadatas": []}
    with store.store_errors(settings):
        client = open_for_build(settings)
        pointer = current_pointer(client, settings)
        if pointer is None or pointer.pending == 0:  # the count is never below the truth: 0 is exact
            return empty, 0
        records = store.pending_records(client, pointer.collection)
    if not records["ids"]:
        _correct(settings)  # a count left high by an interruption
        return empty, 0
    order = sorted(range(len(records["ids"])), key=lambda i: int(records["ids"][i][1:]))[:size]
    return {key: [records[key][i] for i in order] for key in records}, len(records["ids"])


def _key(meta: dict[str, Any]) -> tuple[str, int, int]:
    return str(meta.get("document", "")), int(meta["start"]), int(meta["end"])


def _store(settings: Settings, todo: dict[str, list[Any]], vectors: np.ndarray) -> tuple[int, int]:
    """Store the batch's vectors into the current build, under the build lock; (stored, still pending)."""
    mine = {_key(m): v for m, v in zip(todo["metadatas"], vectors, strict=True)}
    with build_lock(settings, wait=LOCK_WAIT), store.store_errors(settings):
        client = store.get_client(settings)
        pointer = current_pointer(client, settings)
        if pointer is None:
            return 0, 0
        records = store.pending_records(client, pointer.collection)
        hits = [i for i, m in enumerate(records["metadatas"]) if _key(m) in mine]
        if hits:
            ids, texts, metas = ([records[key][i] for i in hits] for key in ("ids", "documents", "metadatas"))
            store.store_vectors(client, pointer.collection, ids, np.stack([mine[_key(m)] for m in metas]), texts, metas)
        left = len(records["ids"]) - len(hits)
        store.write_pointer(client, settings, dataclasses.replace(pointer, pending=left))
    return len(hits), left


def _correct(settings: Settings) -> None:
    """Set the pointer's pending count to the truth (the pending records), under the build lock."""
    with build_lock(settings, wait=LOCK_WAIT), store.store_errors(settings):
        client = store.get_client(settings)
        pointer = current_pointer(client, settings)
        if pointer is not None:
            left = len(store.pending_records(client, pointer.collection)["ids"])
            store.write_pointer(client, settings, dataclasses.replace(pointer, pending=left))


# --- the background pass, one per store and embedding model in this process ---------------------------------


class _Job:
    """One background pass: runs `finish` until no passage is pending, then ends."""

    def __init__(self, settings: Settings, embed: Embed) -> None:
        self.settings, self.embed = settings, embed
        self.progress = VectorProgress(done=0, total=0, running=True)
        self.earlier = 0  # passages stored by the earlier rounds of this pass
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="rag-vectors", daemon=True)

    def _counted(self, done: int, left: int) -> None:
        done += self.earlier
        self.progress = VectorProgress(done=done, total=done + left, running=True)

    def _run(self) -> None:
        error = ""
        while True:
            try:
                self.earlier += finish(self.settings, embed=self.embed, counted=self._counted, stop=self.stop)
            except RagError as err:
                error = str(err)
            except Exception:  # noqa: BLE001 - a background failure is reported on the page, never raised into it
                log.exception("writing pending vectors failed")
                error = "Writing the vectors stopped on an unexpected error (the server log has the details)."
            with JOBS.lock:
                # Checked under the registry's lock: an add that committed before calling `start` is seen
                # here, or `start` sees that this pass has ended and starts another.
                if error or self.stop.is_set() or _quiet_pending(self.settings) == 0:
                    done = self.progress.done
                    self.progress = VectorProgress(done, max(done, self.progress.total), running=False, error=error)
                    return


def _quiet_pending(settings: Settings) -> int:
    try:
        return pending(settings)
    except RagError:
        return 0


class _Jobs:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.jobs: dict[Any, _Job] = {}

    def start(self, settings: Settings, embed: Embed | None = None) -> VectorProgress:
        """Start a background pass over the pending passages, or join the one running (which picks up
        passages added since)."""
        key = (settings.store, settings.collection, settings.embedding)
        with self.lock:
            job = self.jobs.get(key)
            if job is None or not job.progress.running:  # set False under this lock, as the pass ends
                job = _Job(settings, embed or model_embed(settings))
                self.jobs[key] = job
                job.thread.start()
            return job.progress

    def status(self, settings: Settings) -> VectorProgress | None:
        """The latest pass's progress in this process (None: none was started)."""
        job = self.jobs.get((settings.store, settings.collection, settings.embedding))
        return job.progress if job is not None else None

    def stop(self, settings: Settings, timeout: float | None = None) -> None:
        """Ask the running pass to end after its batch and wait for it (the app never needs this; a test or a
        script shutting down cleanly does)."""
        job = self.jobs.get((settings.store, settings.collection, settings.embedding))
        if job is not None:
            job.stop.set()
            job.thread.join(timeout)


JOBS = _Jobs()
