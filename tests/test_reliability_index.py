"""Index safety across processes: a rebuild killed with SIGKILL, two builders at once, corruption, model changes.

Already covered elsewhere (counted in docs/reliability.md): test_retrieve.py (missing index built on first use for the
default corpus; for another corpus the message names `python -m rag index`), test_cli.py (truncated
chroma.sqlite3 -> message naming `--rebuild`, which recovers), test_ingest.py (Ctrl-C mid-build, second builder
in one process, deleted passage collection).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.config import Settings
from rag.errors import ConfigError, IndexCorruptError, IndexMissingError
from rag.index import store
from rag.index.build import build_index
from rag.index.writer import EMBED_BATCH
from rag.search.retriever import Retriever
from tests.helpers import clean_env, serve_http

REPO = Path(__file__).resolve().parents[1]
OLD = (
    "The lighthouse keeper on Granite Island counted ships every morning before breakfast.\n\n"
    "He wrote each count in a blue notebook that he kept beside the lamp."
)
NEW = "The miller pressed forty kinds of sour apples into cider for the whole village every autumn."
# Enough passages (400) that embedding them takes a while, so the build can be caught halfway.
BIG = "\n\n".join(
    f"Harbour log {i}. The harbour master of port number {i} recorded {i * 7} cargo ships, {i * 3} ferries and "
    f"a single lighthouse tender before noon on day {i} of the season, and wrote the figures in ledger {i % 13}."
    for i in range(400)
)


def _cli(index_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_argv(*args), cwd=REPO, env=_env(index_dir), capture_output=True, text=True, timeout=300)


def _argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "rag", *args]


def _env(index_dir: Path) -> dict[str, str]:
    return clean_env(RAG_INDEX_DIR=str(index_dir))


def _last_write(index_dir: Path) -> int:
    """Chroma's write-log sequence number, read without locking (-1 while the file is busy or absent)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{index_dir / 'chroma.sqlite3'}?mode=ro", uri=True)) as db:
            return int(db.execute("SELECT COALESCE(MAX(seq_id), 0) FROM embeddings_queue").fetchone()[0])
    except sqlite3.Error:
        return -1


def _collections(index_dir: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(f"file:{index_dir / 'chroma.sqlite3'}?mode=ro", uri=True)) as db:
        return {row[0] for row in db.execute("SELECT name FROM collections")}


def _wait_for_writes(proc: subprocess.Popen[str], index_dir: Path, beyond: int, limit: float = 240.0) -> None:
    deadline = time.monotonic() + limit
    while _last_write(index_dir) <= beyond:
        assert proc.poll() is None, f"the build ended early: {proc.communicate()}"
        assert time.monotonic() < deadline, "the build wrote no passages"
        time.sleep(0.05)


def test_rebuild_killed_halfway_leaves_the_old_index_serving_and_a_second_builder_is_refused(tmp_path: Path) -> None:
    index_dir, doc = tmp_path / "index", tmp_path / "doc.txt"
    doc.write_text(OLD, encoding="utf-8")
    assert _cli(index_dir, "index", str(doc)).returncode == 0
    old_collections, before = _collections(index_dir), _last_write(index_dir)

    doc.write_text(BIG, encoding="utf-8")
    builder = subprocess.Popen(
        _argv("index", "--rebuild", str(doc)), cwd=REPO, env=_env(index_dir), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_for_writes(builder, index_dir, beyond=before + 2 * EMBED_BATCH)  # some batches stored, most not

        second = _cli(index_dir, "index", str(doc))  # another process (a second terminal, the app's button)
        assert second.returncode == 1 and "Traceback" not in second.stderr
        assert second.stderr.strip().splitlines() == [
            f"error: Another process is building the index in {index_dir}; try again when it has finished."
        ]
        assert builder.poll() is None, "the first build must still be running for this test to mean anything"
        os.kill(builder.pid, signal.SIGKILL)  # no cleanup code runs: the half build stays on disk
    finally:
        builder.kill()
        builder.communicate()
    assert builder.returncode == -signal.SIGKILL
    assert len(_collections(index_dir) - old_collections) == 2  # the abandoned half build (passages + sources)

    old = _cli(index_dir, "search", "Who counted ships?", "-k", "1", "--json")
    assert old.returncode == 0, old.stderr
    assert json.loads(old.stdout)[0]["text"] == OLD.split("\n\n")[0]  # the previous build still serves

    doc.write_text(NEW, encoding="utf-8")
    again = _cli(index_dir, "index", str(doc))  # the killed process's lock died with it
    assert again.returncode == 0 and again.stdout.startswith("index built: 1 documents, 1 passages"), again.stderr
    current = Retriever(Settings(index_dir=index_dir))
    assert _collections(index_dir) == {"article-registry", current.stats.collection, f"{current.stats.collection}-src"}
    assert current.retrieve("What did the miller press?", 1)[0].text == NEW


def test_truncated_database_raises_index_corrupt_error_until_rebuilt(tmp_path: Path) -> None:
    index_dir, doc = tmp_path / "index", tmp_path / "doc.txt"
    doc.write_text(OLD, encoding="utf-8")
    assert _cli(index_dir, "index", str(doc)).returncode == 0
    database = index_dir / "chroma.sqlite3"
    with database.open("r+b") as fh:
        fh.truncate(database.stat().st_size // 3)
    settings = Settings(index_dir=index_dir)

    with pytest.raises(IndexCorruptError, match="python -m rag index --rebuild"):
        Retriever(settings)
    with pytest.raises(IndexCorruptError):
        build_index([doc], settings=settings)  # without --rebuild nothing is wiped

    stats = build_index([doc], settings=settings, rebuild=True)
    assert stats.built
    assert "lighthouse" in Retriever(settings).retrieve("Who counted ships?", 1)[0].text


def test_deleted_collections_are_reported_and_cli_rebuild_recovers(tmp_path: Path) -> None:
    index_dir, doc = tmp_path / "index", tmp_path / "doc.txt"
    doc.write_text(OLD, encoding="utf-8")
    settings = Settings(index_dir=index_dir, corpus_path=doc)
    stats = build_index(settings=settings)
    client = store.get_client(settings)

    client.delete_collection(f"{stats.collection}-src")  # the source texts behind the citations
    with pytest.raises(IndexCorruptError, match=f"{stats.collection}.*--rebuild"):
        Retriever(settings)
    client.delete_collection("article-registry")  # the pointer itself: now simply no index
    with pytest.raises(IndexMissingError, match="python -m rag index"):
        Retriever(settings)

    out = _cli(index_dir, "index", "--rebuild", str(doc))
    assert out.returncode == 0 and out.stdout.startswith("index built"), out.stderr
    found = _cli(index_dir, "search", "Who counted ships?", "-k", "1")
    assert found.returncode == 0 and "lighthouse keeper" in found.stdout


# ------------------------------------------------------------------ embedding-model change


class _EmbeddingHandler(BaseHTTPRequestHandler):
    """POST /v1/embeddings: 8-dimensional letter-count vectors (float lists, or base64 as the SDK asks)."""

    protocol_version = "HTTP/1.1"
    calls: list[int] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        self.calls.append(len(texts))
        data = []
        for i, text in enumerate(texts):
            vector = np.array([text.lower().count(c) + 1 for c in "abcdefgh"], dtype=np.float32)
            encoded: Any = vector.tolist()
            if body.get("encoding_format") == "base64":
                encoded = base64.b64encode(vector.tobytes()).decode()
            data.append({"object": "embedding", "index": i, "embedding": encoded})
        payload = json.dumps({"object": "list", "data": data, "model": body["model"], "usage": {}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def embedding_server() -> Iterator[str]:
    with serve_http(_EmbeddingHandler, "/v1") as url:
        yield url


def test_embedding_model_change_never_mixes_vectors(tmp_path: Path, embedding_server: str) -> None:
    doc = tmp_path / "doc.txt"
    doc.write_text(OLD, encoding="utf-8")
    local = Settings(index_dir=tmp_path / "index", collection="models")
    remote = dataclasses.replace(
        local, embed_provider="openai", openai_base_url=embedding_server, openai_api_key="sk-fake",
        openai_embed_model="text-embedding-3-small",
    )  # fmt: skip
    with pytest.raises(ConfigError, match="RAG_OPENAI_EMBED_MODEL"):
        build_index([doc], settings=dataclasses.replace(remote, openai_embed_model="letters-8"))
    _EmbeddingHandler.calls.clear()
    first = build_index([doc], settings=local)
    assert _EmbeddingHandler.calls == []
    second = build_index([doc], settings=remote)  # same sources, same collection name, another model

    assert second.built and second.collection != first.collection and _EmbeddingHandler.calls
    client = store.get_client(local)
    pointers = {p.embed_model: p.collection for p in store.all_pointers(client, local)}
    assert pointers == {first.embed_model: first.collection, "openai/text-embedding-3-small": second.collection}
    for model, name, dim in ((first.embed_model, first.collection, 384), ("openai/text-embedding-3-small", second.collection, 8)):
        collection = client.get_collection(name, embedding_function=None)
        assert collection.metadata["embed_model"] == model
        vectors = collection.get(include=["embeddings"])["embeddings"]
        assert len(vectors) == first.passages and {len(v) for v in vectors} == {dim}

    # Each model reads only its own build; rebuilding one leaves the other in place.
    assert Retriever(local).stats.embed_model == first.embed_model
    assert Retriever(remote).retrieve("Who counted ships?", 2)
    doc.write_text(NEW, encoding="utf-8")
    third = build_index([doc], settings=local)
    pointers = {p.embed_model: p.collection for p in store.all_pointers(client, local)}
    assert pointers == {first.embed_model: third.collection, "openai/text-embedding-3-small": second.collection}
    assert Retriever(remote).stats.collection == second.collection
    assert Retriever(local).retrieve("What did the miller press?", 1)[0].text == NEW
