"""Index lifecycle on a real embedded Chroma store: bad sources, idempotence, atomic switch, lock, recovery."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from rag.config import Settings
from rag.errors import IndexBusyError, IndexCorruptError, ModelAuthError, SourceError
from rag.index import store
from rag.index.build import build_index, build_lock, source_id
from rag.search.retriever import Retriever, open_retriever
from tests.helpers import serve_http

FIRST = (
    "The lighthouse keeper on Granite Island counted ships every morning before breakfast.\n\n"
    "He wrote each count in a blue notebook that he kept beside the lamp."
)
SECOND = (
    "The orchard behind the mill grew forty kinds of apples, most of them sour.\n\n"
    "Every autumn the miller pressed them into cider for the whole village."
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(index_dir=tmp_path / "index", collection="testing")


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _builds(settings: Settings) -> set[str]:
    names = {c.name for c in store.get_client(settings).list_collections()}
    return {n for n in names if n != f"{settings.collection}-registry"}


def test_bad_sources_are_reported_by_name_and_the_good_one_is_indexed(tmp_path: Path, settings: Settings) -> None:
    good = _write(tmp_path / "good.txt", FIRST)
    binary = tmp_path / "binary.bin"
    binary.write_bytes(b"PK\x03\x04\x00\x00 zip-ish bytes")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    empty = _write(tmp_path / "empty.txt", " \n\n ")
    big = _write(tmp_path / "big.txt", "word " * 300)
    folder = tmp_path / "folder"
    folder.mkdir()
    missing = tmp_path / "missing.txt"
    small = dataclasses.replace(settings, max_source_bytes=1000)

    stats = build_index([good, binary, latin1, empty, big, folder, missing], settings=small)

    assert stats.built and stats.documents == 1
    assert len(stats.errors) == 6
    for path, reason in [
        (binary, "binary"),
        (latin1, "not UTF-8"),
        (empty, "empty"),
        (big, "over the limit"),
        (folder, "directory"),
        (missing, "no such file"),
    ]:
        assert any(str(path) in e and reason in e for e in stats.errors), (path, stats.errors)
    assert open_retriever(small).sources() == [source_id(good)]


def test_no_usable_source_raises_source_error(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(SourceError, match="missing.txt"):
        build_index([tmp_path / "missing.txt"], settings=settings)
    with pytest.raises(SourceError, match="No source"):
        build_index([], settings=settings)


def test_unchanged_content_does_no_work_and_rebuild_forces_it(tmp_path: Path, settings: Settings) -> None:
    doc = _write(tmp_path / "doc.txt", FIRST)
    first = build_index([doc], settings=settings)
    again = build_index([str(doc)], settings=settings)
    assert first.built and not again.built
    assert again.collection == first.collection and again.passages == first.passages
    forced = build_index([doc], settings=settings, rebuild=True)
    assert forced.built and forced.collection != first.collection
    assert _builds(settings) == {forced.collection, f"{forced.collection}-src"}


def test_changed_content_switches_and_an_open_retriever_follows(tmp_path: Path, settings: Settings) -> None:
    doc = _write(tmp_path / "doc.txt", FIRST)
    old = build_index([doc], settings=settings)
    retriever = Retriever(settings)
    assert "lighthouse" in retriever.retrieve("Who counted ships?", 1)[0].text

    _write(doc, SECOND)
    new = build_index([doc], settings=settings)

    assert new.built and new.collection != old.collection
    assert _builds(settings) == {new.collection, f"{new.collection}-src"}  # the superseded build is gone
    top = retriever.retrieve("What did the miller press?", 1)[0]
    assert "cider" in top.text and retriever.source_text(top.source) == SECOND
    assert retriever.stats.collection == new.collection


def test_interrupted_build_leaves_the_old_index_serving(tmp_path: Path, settings: Settings) -> None:
    doc = _write(tmp_path / "doc.txt", FIRST)
    old = build_index([doc], settings=settings)
    retriever = Retriever(settings)
    _write(doc, SECOND + "\n\n" + FIRST)

    def stop(fraction: float, message: str) -> None:
        if message.startswith("Embedded"):
            raise KeyboardInterrupt  # the user pressed Ctrl-C halfway through

    with pytest.raises(KeyboardInterrupt):
        build_index([doc], settings=settings, progress=stop)

    assert _builds(settings) == {old.collection, f"{old.collection}-src"}  # no half build left behind
    assert retriever.stats.collection == old.collection
    assert "lighthouse" in retriever.retrieve("Who counted ships?", 1)[0].text
    assert build_index([doc], settings=settings).built  # the next build completes


def test_second_builder_gets_index_busy(tmp_path: Path, settings: Settings) -> None:
    doc = _write(tmp_path / "doc.txt", FIRST)
    other = _write(tmp_path / "other.txt", SECOND)
    seen: list[BaseException] = []

    def meanwhile(fraction: float, message: str) -> None:
        if message.startswith("Embedded") and not seen:
            try:
                build_index([other], settings=settings)
            except IndexBusyError as err:
                seen.append(err)

    stats = build_index([doc], settings=settings, progress=meanwhile)
    assert stats.built
    assert len(seen) == 1 and "Another process is building" in str(seen[0])
    with build_lock(settings), pytest.raises(IndexBusyError, match=str(settings.index_dir)):
        build_index([other], settings=settings)


def test_progress_reports_fractions_up_to_one(tmp_path: Path, settings: Settings) -> None:
    doc = _write(tmp_path / "doc.txt", FIRST)
    steps: list[tuple[float, str]] = []
    build_index([doc], settings=settings, progress=lambda f, m: steps.append((f, m)))
    fractions = [f for f, _ in steps]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0


def test_deleted_build_is_reported_and_rebuilt(tmp_path: Path, settings: Settings) -> None:
    doc = _write(tmp_path / "doc.txt", FIRST)
    stats = build_index([doc], settings=settings)
    store.get_client(settings).delete_collection(stats.collection)

    with pytest.raises(IndexCorruptError, match="--rebuild"):
        Retriever(settings)
    recovered = build_index([doc], settings=settings)  # content unchanged, but the build is gone
    assert recovered.built
    assert "lighthouse" in Retriever(settings).retrieve("Who counted ships?", 1)[0].text


def test_each_document_gets_exact_offsets(tmp_path: Path, settings: Settings) -> None:
    a, b = _write(tmp_path / "a.txt", FIRST), _write(tmp_path / "b.txt", SECOND)
    stats = build_index([a, b, a], settings=settings)
    assert stats.documents == 2
    retriever = Retriever(settings)
    assert retriever.sources() == [source_id(a), source_id(b)]
    for question in ("ships", "apples", "notebook", "cider"):
        for p in retriever.retrieve(question, 4):
            assert retriever.source_text(p.source)[p.start : p.end] == p.text


class _Embeddings(BaseHTTPRequestHandler):
    """`POST /v1/embeddings` like OpenAI: a 64-d hashed bag of words per input (401 for a wrong key)."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.headers.get("Authorization") != "Bearer test-key":
            self._reply(401, {"error": {"message": "Incorrect API key", "type": "invalid_request_error"}})
            return
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"object": "embedding", "index": i, "embedding": _bag(t)} for i, t in enumerate(inputs)]
        self._reply(
            200,
            {"object": "list", "data": data, "model": body["model"], "usage": {"prompt_tokens": 1, "total_tokens": 1}},
        )

    def _reply(self, status: int, payload: dict[str, object]) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        pass


def _bag(text: str) -> list[float]:
    vector = [0.0] * 64
    for word in text.lower().split():
        vector[sum(map(ord, word.strip(".,?"))) % 64] += 1.0
    return vector


@pytest.fixture(scope="module")
def embeddings_url() -> Iterator[str]:
    with serve_http(_Embeddings, "/v1") as url:
        yield url


def test_embedding_models_never_share_a_build(tmp_path: Path, settings: Settings, embeddings_url: str) -> None:
    doc = _write(tmp_path / "doc.txt", FIRST + "\n\n" + SECOND)
    remote = dataclasses.replace(
        settings, embed_provider="openai", openai_base_url=embeddings_url, openai_api_key="test-key", max_retries=0
    )
    local_stats = build_index([doc], settings=settings)
    remote_stats = build_index([doc], settings=remote)

    assert remote_stats.built and remote_stats.embed_model == "openai/text-embedding-3-small"
    assert remote_stats.collection != local_stats.collection
    assert not build_index([doc], settings=settings).built  # the local build is untouched and current
    # 64-d and 384-d vectors each query their own build.
    assert "cider" in Retriever(remote).retrieve("cider miller", 1)[0].text
    assert "cider" in Retriever(settings).retrieve("Who made cider?", 1)[0].text


def test_rejected_embedding_key_is_a_clear_error(tmp_path: Path, settings: Settings, embeddings_url: str) -> None:
    doc = _write(tmp_path / "doc.txt", FIRST)
    wrong = dataclasses.replace(
        settings,
        embed_provider="openai",
        openai_base_url=embeddings_url,
        openai_api_key="sk-wrong-secret",
        max_retries=0,
    )
    with pytest.raises(ModelAuthError) as err:
        build_index([doc], settings=wrong)
    assert "sk-wrong-secret" not in str(err.value)
    assert _builds(wrong) == set()  # nothing half-built left behind
