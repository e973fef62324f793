"""Build the index: read sources, chunk, embed, write a new Chroma build, then switch the pointer to it.

Idempotent (a content hash over sources, embedding model and chunker version: unchanged content does
no work) and atomic (a build becomes visible only when its pointer is written after every passage is
stored; a failed or interrupted build is deleted and the previous one keeps serving queries).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from rag.index import store
from rag.index.chunking import CHUNKER_VERSION, chunk_text
from rag.config import PROJECT_DIR, Settings
from rag.models.embed import embed_passages, get_embedder, model_id
from rag.errors import IndexBusyError, IndexCorruptError, SourceError
from rag.types import IndexStats

Progress = Callable[[float, str], None]
EMBED_BATCH = 16


def source_id(path: Path) -> str:
    """How a document is named in passages: relative to the project when inside it, else absolute."""
    resolved = path.expanduser().resolve()
    try:
        return resolved.relative_to(PROJECT_DIR).as_posix()
    except ValueError:
        return resolved.as_posix()


def read_source(path: Path, max_bytes: int) -> str:
    """The text of one source file, or a SourceError naming the file and what is wrong with it."""
    shown = str(path).encode("utf-8", "replace").decode("utf-8")
    if shown != str(path):  # undecodable bytes in the name (surrogates) can't be stored as its source id
        raise SourceError(f"{shown}: the file name is not valid UTF-8; rename the file.")
    if not path.exists():
        raise SourceError(f"{path}: no such file.")
    if path.is_dir():
        raise SourceError(f"{path}: is a directory, not a text file.")
    if not path.is_file():  # a FIFO or device (/dev/zero) reports size 0 and would block or never end
        raise SourceError(f"{path}: is not a regular file.")
    size = path.stat().st_size
    if size > max_bytes:
        raise SourceError(f"{path}: {size:,} bytes is over the limit of {max_bytes:,} (RAG_MAX_SOURCE_BYTES).")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise SourceError(f"{path}: can't be read ({err.strerror or err}).") from None
    if b"\x00" in data:
        raise SourceError(f"{path}: looks like a binary file (it contains NUL bytes); only UTF-8 text is indexed.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SourceError(f"{path}: is not UTF-8 text; convert it to UTF-8 first.") from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise SourceError(f"{path}: is empty.")
    return text


def read_sources(paths: Sequence[str | Path], max_bytes: int) -> tuple[dict[str, str], list[str]]:
    """Readable sources by id (in the given order, duplicates once) and one message per unusable source."""
    docs: dict[str, str] = {}
    errors: list[str] = []
    for raw in paths:
        path = Path(raw)
        try:
            docs.setdefault(source_id(path), read_source(path, max_bytes))
        except SourceError as err:
            errors.append(str(err))
    return docs, errors


def content_hash(docs: dict[str, str], embed_model: str) -> str:
    digest = hashlib.sha256(f"{embed_model}\0{CHUNKER_VERSION}\0".encode())
    for name, text in docs.items():
        digest.update(f"{name}\0{len(text)}\0".encode())
        digest.update(text.encode("utf-8"))
    return digest.hexdigest()


@contextlib.contextmanager
def build_lock(settings: Settings) -> Iterator[None]:
    """An exclusive, non-blocking file lock in index_dir: a second builder fails fast with IndexBusyError."""
    settings.index_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(settings.index_dir / store.LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexBusyError(
                f"Another process is building the index in {settings.index_dir}; try again when it has finished."
            ) from None
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def build_index(
    sources: Sequence[str | Path] | None = None,
    *,
    settings: Settings | None = None,
    rebuild: bool = False,
    progress: Progress | None = None,
) -> IndexStats:
    """Index `sources` (None: settings.corpus_path). Unusable sources are reported in `errors`, the rest indexed."""
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
    docs, errors = read_sources(paths, settings.max_source_bytes)
    if not docs:
        raise SourceError(" ".join(errors))
    embed_model = model_id(settings)
    digest = content_hash(docs, embed_model)
    with build_lock(settings):
        client = _open_for_build(settings, rebuild)
        with store.store_errors(settings):
            current = store.read_pointer(client, settings, embed_model)
            if current and current.content_hash == digest and not rebuild and _intact(client, current):
                report(1.0, "Index is up to date")
                return _stats(current, built=False, seconds=time.perf_counter() - started, errors=errors)
        pointer = _write_build(client, settings, docs, digest, embed_model, report)
        with store.store_errors(settings):
            store.write_pointer(client, settings, pointer)
            store.cleanup(client, settings, keep={p.collection for p in store.all_pointers(client, settings)})
    report(1.0, "Index ready")
    return _stats(pointer, built=True, seconds=time.perf_counter() - started, errors=errors)


def _open_for_build(settings: Settings, rebuild: bool) -> object:
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


def _checked_client(settings: Settings) -> object:
    client = store.get_client(settings)
    with store.store_errors(settings):
        store.all_pointers(client, settings)
    return client


def _intact(client: object, pointer: store.Pointer) -> bool:
    """Whether the current build still has all its passages (someone may have deleted it)."""
    try:
        return store.count_passages(client, pointer.collection) == pointer.passages
    except Exception:
        return False


def _write_build(
    client: object, settings: Settings, docs: dict[str, str], digest: str, embed_model: str, report: Progress
) -> store.Pointer:
    """Chunk, embed and store every passage in a new build; delete it again if anything fails."""
    started = time.perf_counter()
    name = f"{settings.collection}-{digest[:16]}-{uuid.uuid4().hex[:8]}"
    chunks = [(src, c.start, c.end) for src, text in docs.items() for c in chunk_text(text)]
    report(0.05, "Loading the embedding model")
    embedder = get_embedder(settings)
    try:
        with store.store_errors(settings):
            passages, sources = store.create_build(client, name, embed_model)
            store.add_sources(sources, docs)
        _embed_and_store(settings, embedder, passages, docs, chunks, report)
        with store.store_errors(settings):
            store.mark_complete(passages)
    except BaseException:
        # Interrupted or failed: the half-written build must not linger (the pointer still names the old one).
        store.drop_build(client, name)
        raise
    return store.Pointer(
        collection=name,
        content_hash=digest,
        embed_model=embed_model,
        documents=len(docs),
        passages=len(chunks),
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        seconds=round(time.perf_counter() - started, 3),
    )


def _embed_and_store(
    settings: Settings,
    embedder: object,
    passages: object,
    docs: dict[str, str],
    chunks: list[tuple[str, int, int]],
    report: Progress,
) -> None:
    """Embed the chunks batch by batch into `passages` (ids "p<position>"), reporting progress."""
    for first in range(0, len(chunks), EMBED_BATCH):
        batch = chunks[first : first + EMBED_BATCH]
        texts = [docs[src][s:e] for src, s, e in batch]
        vectors = embed_passages(embedder, texts)
        metas = [{"source": src, "start": s, "end": e} for src, s, e in batch]
        ids = [f"p{first + i}" for i in range(len(batch))]
        with store.store_errors(settings):
            store.add_passages(passages, ids, vectors, texts, metas)
        done = first + len(batch)
        report(0.1 + 0.85 * done / len(chunks), f"Embedded {done} of {len(chunks)} passages")


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
    )
