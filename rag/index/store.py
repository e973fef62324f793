"""Chroma access: the client (embedded or server), collections, the pointer registry, the source texts.

Layout inside Chroma, for `settings.collection` = NAME:
  * NAME-<hash>-<nonce>      passages of one build (cosine space), metadata source/start/end;
  * NAME-<hash>-<nonce>-src  the full text of each source document of that build (citations, article view);
  * NAME-<hash>-<nonce>-pending  passages whose vectors are still being written (only when a document was
                             added BM25-first, `rag.index.vectors`): text and metadata, moved into the
                             passage collection batch by batch as they are embedded;
  * NAME-registry            one pointer record per embedding model: which build is current.
A build is visible only once its pointer is written, so a half-written build is never read. Everything
lives in Chroma itself, so server mode (`chroma run`) works the same way as the embedded store.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rag.cache import SettingsCache
from rag.config import Settings
from rag.errors import IndexCorruptError, StoreUnavailableError

REBUILD_HINT = "run `python -m rag index --rebuild` to rebuild it"
LOCK_FILE = ".build.lock"
SERVER_GRACE = 3600.0  # seconds an incomplete build on a shared server is presumed still being written

_clients: SettingsCache[Any] = SettingsCache()


@dataclass(frozen=True)
class Pointer:
    """The registry record naming the current build for one embedding model."""

    collection: str
    content_hash: str
    embed_model: str
    documents: int
    passages: int
    built_at: str
    seconds: float
    pending: int = 0  # passages still without a vector (an upper bound after a crash; vectors.py corrects it)


def where(settings: Settings) -> str:
    return f"{settings.chroma_host}:{settings.chroma_port}" if settings.server_mode else str(settings.index_dir)


def get_client(settings: Settings) -> Any:
    """A Chroma client for `settings`, created once per process (Chroma itself caches embedded systems)."""
    return _clients.get(
        settings.store, lambda: _http_client(settings) if settings.server_mode else _embedded_client(settings)
    )


def _chroma_settings() -> Any:
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=True)


def _embedded_client(settings: Settings) -> Any:
    import chromadb

    settings.index_dir.mkdir(parents=True, exist_ok=True)
    try:
        return chromadb.PersistentClient(path=str(settings.index_dir), settings=_chroma_settings())
    except Exception as err:
        # Chroma caches the half-started system of a failed open; drop it so a later open starts afresh.
        _drop_system(str(settings.index_dir))
        raise IndexCorruptError(
            f"The index in {settings.index_dir} can't be opened ({_short(err)}); {REBUILD_HINT}."
        ) from None


def _http_client(settings: Settings) -> Any:
    import chromadb
    import httpx

    host, port = settings.chroma_host or "", settings.chroma_port
    # Probe first with our own timeout: Chroma's HTTP client waits forever on a silent server.
    try:
        with socket.create_connection((host, port), timeout=settings.chroma_timeout):
            pass
        httpx.get(f"http://{host}:{port}/api/v2/heartbeat", timeout=settings.chroma_timeout).raise_for_status()
        client = chromadb.HttpClient(host=host, port=port, settings=_chroma_settings())
    except Exception as err:
        raise StoreUnavailableError(
            f"The Chroma server at {host}:{port} can't be reached ({_short(err)}); start it or unset CHROMA_HOST."
        ) from None
    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(settings.chroma_timeout * 6, connect=settings.chroma_timeout)
    return client


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text[:200]


@contextlib.contextmanager
def store_errors(settings: Settings) -> Iterator[None]:
    """Turn Chroma failures into RagErrors: unreachable server, or an unreadable (corrupt) index."""
    from rag.errors import RagError

    try:
        yield
    except RagError:
        raise
    except Exception as err:
        if settings.server_mode and _is_connection_error(err):
            raise StoreUnavailableError(
                f"The Chroma server at {where(settings)} stopped answering ({_short(err)})."
            ) from None
        raise IndexCorruptError(
            f"The index in {where(settings)} can't be read ({_short(err)}); {REBUILD_HINT}."
        ) from None


def _is_connection_error(err: BaseException) -> bool:
    import httpx

    return isinstance(err, httpx.TransportError | ConnectionError | OSError)


def forget_client(settings: Settings) -> None:
    """Drop this process's client (and Chroma's cached system) for the store, so the next use re-opens it
    from disk: needed after the store was wiped and recreated, here or by another process."""

    def drop() -> None:
        _registries.clear()
        if not settings.server_mode:
            _drop_system(str(settings.index_dir))

    _clients.forget(settings.store, then=drop)


def _drop_system(path: str) -> None:
    """Forget Chroma's cached system for one path only: other stores open in this process keep working."""
    from chromadb.api.shared_system_client import SharedSystemClient

    system = SharedSystemClient._identifier_to_system.pop(path, None)
    SharedSystemClient._identifier_to_refcount.pop(path, None)
    if system is not None:
        with contextlib.suppress(Exception):
            system.stop()


def reset_embedded(settings: Settings) -> None:
    """Delete the embedded store (keeping the build lock file) so a rebuild can start from nothing."""
    forget_client(settings)
    if settings.index_dir.is_dir():
        for child in settings.index_dir.iterdir():
            if child.name == LOCK_FILE:
                continue
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)


# --- registry (pointer records) ------------------------------------------------------------------


# Registry collection handles by (client identity, name): read on every query, so not looked up each time.
# The client itself is kept in the entry, so a recycled id() of a dropped client can't match.
_registries: dict[tuple[int, str], tuple[Any, Any]] = {}


def _registry(client: Any, settings: Settings) -> Any:
    # The registry is read on every query (to notice a switched build): keep its handle per client.
    name = f"{settings.collection}-registry"
    cached = _registries.get((id(client), name))
    if cached is not None and cached[0] is client:
        return cached[1]
    collection = client.get_or_create_collection(name, embedding_function=None)
    _registries[(id(client), name)] = (client, collection)
    return collection


def read_pointer(client: Any, settings: Settings, embed_model: str) -> Pointer | None:
    got = _registry(client, settings).get(ids=[f"current:{embed_model}"], include=["metadatas"])
    if not got["ids"]:
        return None
    return _pointer(got["metadatas"][0])


def _pointer(meta: dict[str, Any]) -> Pointer:
    # Pointers written before `pending` existed lack it: their builds have every vector.
    return Pointer(**{name: meta[name] for name in Pointer.__dataclass_fields__ if name in meta})


def write_pointer(client: Any, settings: Settings, pointer: Pointer) -> None:
    # Upserting one record is atomic in Chroma: readers see the old build or the new one, never a mix.
    _registry(client, settings).upsert(
        ids=[f"current:{pointer.embed_model}"],
        embeddings=[[1.0]],
        metadatas=[dict(pointer.__dict__)],
    )


def all_pointers(client: Any, settings: Settings) -> list[Pointer]:
    got = _registry(client, settings).get(include=["metadatas"])
    return [_pointer(m) for m in got["metadatas"]]


# --- build collections ---------------------------------------------------------------------------


def create_build(client: Any, name: str, embed_model: str) -> tuple[Any, Any]:
    """Fresh passage and source collections for a new build."""
    meta = {"embed_model": embed_model, "created": time.time()}
    passages = client.create_collection(
        name, configuration={"hnsw": {"space": "cosine"}}, metadata=meta, embedding_function=None
    )
    sources = client.create_collection(f"{name}-src", metadata=meta, embedding_function=None)
    return passages, sources


def mark_complete(passages: Any) -> None:
    """Record in the build itself that it is whole: clean-up may then delete it once superseded."""
    passages.modify(metadata={**(passages.metadata or {}), "complete": True})


def add_passages(
    collection: Any, ids: Sequence[str], vectors: Any, texts: Sequence[str], metas: Sequence[dict[str, Any]]
) -> None:
    collection.add(ids=list(ids), embeddings=vectors, documents=list(texts), metadatas=list(metas))


def add_pending(client: Any, name: str, ids: Sequence[str], texts: Sequence[str], metas: Sequence[dict[str, Any]]) -> None:
    """Passages of build `name` that have no vector yet (a placeholder one: Chroma stores one per record)."""
    pending = client.get_or_create_collection(f"{name}-pending", embedding_function=None)
    pending.add(ids=list(ids), embeddings=[[1.0]] * len(ids), documents=list(texts), metadatas=list(metas))


def pending_records(client: Any, name: str) -> dict[str, list[Any]]:
    """The passages of build `name` still without a vector (ids, documents, metadatas), ones already moved
    into the passage collection left out (a crash between the two steps of `store_vectors` leaves both)."""
    got = _raw_pending(client, name)
    if not got["ids"]:
        return got
    done = set(client.get_collection(name, embedding_function=None).get(ids=got["ids"], include=[])["ids"])
    keep = [i for i, pid in enumerate(got["ids"]) if pid not in done]
    return {key: [got[key][i] for i in keep] for key in got}


def _raw_pending(client: Any, name: str) -> dict[str, list[Any]]:
    from chromadb.errors import NotFoundError

    try:
        pending = client.get_collection(f"{name}-pending", embedding_function=None)
    except NotFoundError:  # builds written whole (and older ones) have no pending collection
        return {"ids": [], "documents": [], "metadatas": []}
    return _get_all(pending, ["documents", "metadatas"])


def store_vectors(client: Any, name: str, ids: Sequence[str], vectors: Any, texts: Sequence[str],
                  metas: Sequence[dict[str, Any]]) -> None:  # fmt: skip
    """Move pending passages into build `name`'s passage collection with their vectors. Vectors first, then
    the pending records go: an interruption between the two leaves a passage in both, which every reader
    counts once (`pending_records`, `load_build`); its stale pending record goes with its build."""
    client.get_collection(name, embedding_function=None).upsert(
        ids=list(ids), embeddings=vectors, documents=list(texts), metadatas=list(metas)
    )
    client.get_collection(f"{name}-pending", embedding_function=None).delete(ids=list(ids))


def add_sources(collection: Any, texts: Sequence[str], metas: Sequence[dict[str, Any]]) -> None:
    """The full text of each document of a build, with its metadata (`order` keeps the library's order)."""
    collection.add(
        ids=[f"doc{i}" for i in range(len(texts))],
        embeddings=[[1.0]] * len(texts),
        documents=list(texts),
        metadatas=list(metas),
    )


def source_metadata(client: Any, name: str, doc_id: str) -> tuple[str, dict[str, Any]] | None:
    """(record id, metadata) of one document in build `name`'s `-src` collection; None when it isn't there."""
    got = client.get_collection(f"{name}-src", embedding_function=None).get(where={"id": doc_id}, include=["metadatas"])
    return (got["ids"][0], dict(got["metadatas"][0])) if got["ids"] else None


def update_source_metadata(client: Any, name: str, doc_id: str, fields: dict[str, Any]) -> bool:
    """Add or replace `fields` (str/int values) in one document's metadata in build `name`; False when the
    document isn't in that build. The other fields are kept (written back whole, whatever Chroma merges)."""
    found = source_metadata(client, name, doc_id)
    if found is None:
        return False
    record, meta = found
    client.get_collection(f"{name}-src", embedding_function=None).update(ids=[record], metadatas=[{**meta, **fields}])
    return True


_PAGE = 10_000  # SQLite allows 32,766 variables per statement: one get() of >32k records fails


def _get_all(collection: Any, include: list[str]) -> dict[str, list[Any]]:
    """Every record of a collection, fetched in pages (found by the 100k-passage benchmark)."""
    records: dict[str, list[Any]] = {"ids": [], **{key: [] for key in include}}
    while True:
        got = collection.get(include=include, limit=_PAGE, offset=len(records["ids"]))
        for key in records:
            records[key].extend(got[key] if got[key] is not None else [])
        if len(got["ids"]) < _PAGE:
            return records


def load_build(
    client: Any, name: str, vectors: bool = False
) -> tuple[Any, dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """(passage collection, all passage records, [(document text, metadata)] in library order) of one build;
    with `vectors`, the records carry their embeddings too (to copy them into the next build). The records
    include the passages still waiting for their vectors (after the embedded ones)."""
    collection = client.get_collection(name, embedding_function=None)
    # Pending first: a passage moved meanwhile is then read twice (kept once), never missed.
    pending = _raw_pending(client, name)
    records = _get_all(collection, ["documents", "metadatas", *(["embeddings"] if vectors else [])])
    done = set(records["ids"])
    moved = [i for i, pid in enumerate(pending["ids"]) if pid not in done]
    for key in ("ids", "documents", "metadatas"):
        records[key] += [pending[key][i] for i in moved]
    if vectors:  # a passage still without a vector carries None
        records["embeddings"] += [None] * len(moved)
    src = client.get_collection(f"{name}-src", embedding_function=None).get(include=["documents", "metadatas"])
    order = sorted(zip(src["metadatas"], src["documents"], strict=True), key=lambda md: md[0]["order"])
    return collection, records, [(doc, meta) for meta, doc in order]


def nearest(
    collection: Any, vector: np.ndarray, n: int, documents: Sequence[str] | None = None
) -> list[tuple[str, float]]:
    """(passage id, cosine distance) of the n passages nearest to `vector`, nearest first; with `documents`,
    only passages of those document ids (a metadata filter inside Chroma, so it scales on a server)."""
    where = None if documents is None else {"document": {"$in": list(documents)}}
    got = collection.query(query_embeddings=[vector], n_results=n, include=["distances"], where=where)
    return [(pid, float(dist)) for pid, dist in zip(got["ids"][0], got["distances"][0], strict=True)]


def vectors(collection: Any, ids: Sequence[str]) -> dict[str, np.ndarray]:
    """The stored embedding of each passage id."""
    got = collection.get(ids=list(ids), include=["embeddings"])
    return {pid: np.asarray(emb, dtype=np.float32) for pid, emb in zip(got["ids"], got["embeddings"], strict=True)}


def count_passages(client: Any, name: str) -> int:
    """Passages of build `name`, with a vector or still waiting for one."""
    client.get_collection(f"{name}-src", embedding_function=None)
    return int(client.get_collection(name, embedding_function=None).count()) + len(pending_records(client, name)["ids"])


def drop_build(client: Any, name: str) -> None:
    for suffix in ("", "-src", "-pending"):
        with contextlib.suppress(Exception):
            client.delete_collection(f"{name}{suffix}")


def cleanup(client: Any, settings: Settings, keep: set[str]) -> None:
    """Delete this store's builds that no pointer names (superseded or interrupted).

    In server mode another machine may be writing a build right now (the build lock is a local file), so
    an incomplete build younger than SERVER_GRACE seconds is left for a later clean-up.
    """
    prefix, registry = f"{settings.collection}-", f"{settings.collection}-registry"
    for col in client.list_collections():
        name = col if isinstance(col, str) else col.name
        base = name.removesuffix("-src").removesuffix("-pending")
        if not name.startswith(prefix) or name == registry or base in keep:
            continue
        if settings.server_mode and _in_progress(client, base):
            continue
        with contextlib.suppress(Exception):
            client.delete_collection(name)


def _in_progress(client: Any, name: str) -> bool:
    try:
        meta = client.get_collection(name, embedding_function=None).metadata or {}
    except Exception:
        return False  # its passage collection is gone: whatever is left is debris
    return not meta.get("complete") and time.time() - float(meta.get("created", 0.0)) < SERVER_GRACE
