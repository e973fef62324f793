"""Opening the index for writing: the build lock and the store client a build (or the vector writer) uses.

Apart from `build.py` so that `vectors.py`, which `build.py` calls to finish pending vectors, can use them
without an import cycle.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from typing import Any

from rag.config import Settings
from rag.errors import IndexBusyError, IndexCorruptError
from rag.index import store
from rag.models.embed import model_id

LOCK_WAIT = 2.0  # seconds a builder waits for the build lock before IndexBusyError


@contextlib.contextmanager
def build_lock(settings: Settings, wait: float = LOCK_WAIT) -> Iterator[None]:
    """An exclusive file lock in index_dir, waited for up to `wait` seconds: a second builder fails fast with
    IndexBusyError. The short default wait absorbs the background vector writer's commits (`rag.index.vectors`
    holds the lock for a fraction of a second per batch), which must not make an add fail."""
    settings.index_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(settings.index_dir / store.LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise IndexBusyError(
                        f"Another process is building the index in {settings.index_dir}; try again when it has "
                        "finished."
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def current_pointer(client: Any, settings: Settings) -> store.Pointer | None:
    with store.store_errors(settings):
        return store.read_pointer(client, settings, model_id(settings))


def open_for_build(settings: Settings, rebuild: bool = False) -> Any:
    """The store client; with --rebuild, an unreadable embedded store is wiped and created afresh."""
    try:
        return _checked_client(settings)
    except IndexCorruptError:
        if settings.server_mode:
            raise
    store.forget_client(settings)  # another process may have recreated the store: re-open it from disk
    try:
        return _checked_client(settings)
    except IndexCorruptError:
        if not rebuild:
            raise
    store.reset_embedded(settings)
    return _checked_client(settings)


def _checked_client(settings: Settings) -> Any:
    client = store.get_client(settings)
    with store.store_errors(settings):
        store.all_pointers(client, settings)
    return client
