"""Setup shared by several test modules: a clean environment for the app and its subprocesses, the app under
Streamlit's AppTest, a real HTTP server on 127.0.0.1, a real `chroma run`. Fixtures built on these live in tests/conftest.py; the browser
helpers in tests/browser.py."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from rag.config import Settings
from rag.errors import StoreUnavailableError
from rag.evaluation.procs import chroma_binary, chroma_server

if TYPE_CHECKING:
    from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")
# The developer's own settings (a key, a Chroma server, another index) must never leak into a test.
PROJECT_PREFIXES = ("RAG_", "OPENAI_", "CHROMA_")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without the project's RAG_/OPENAI_/CHROMA_ variables, plus `extra`:
    the environment for a subprocess (the CLI, `streamlit run`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(PROJECT_PREFIXES)}
    env.update(extra)
    return env


def set_app_environment(monkeypatch: pytest.MonkeyPatch, index_dir: Path, **extra: str | None) -> None:
    """The environment an app test runs in: none of the developer's RAG_/OPENAI_/CHROMA_ variables, the
    extractive provider (no model) and this index directory, then `extra` (a None value leaves that variable
    unset, i.e. the default). Not read here: a test may set an invalid value on purpose."""
    for name in list(os.environ):
        if name.startswith(PROJECT_PREFIXES):
            monkeypatch.delenv(name)
    for name, value in {"RAG_PROVIDER": "extractive", "RAG_INDEX_DIR": str(index_dir), **extra}.items():
        if value is not None:
            monkeypatch.setenv(name, value)


def app_environment(monkeypatch: pytest.MonkeyPatch, index_dir: Path, **extra: str | None) -> Settings:
    """`set_app_environment`, and the Settings the app will read from it."""
    set_app_environment(monkeypatch, index_dir, **extra)
    return Settings.from_env()


def start_app(timeout: float = 120, conversation: str | None = None) -> AppTest:
    """The real app script under AppTest, run once (opened on `conversation`, as by its ?c= link, if given);
    fails the test on an exception. Set the environment first (`app_environment`, the `env` fixture)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=timeout)
    if conversation:
        at.query_params["c"] = conversation  # the ?c= link
    at.run()
    assert not at.exception, at.exception
    return at


def app_ask(at: AppTest, question: str) -> AppTest:
    """Ask `question` in the app's chat input and run; fails the test on an exception."""
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception
    return at


@contextlib.contextmanager
def serve_http(handler: Callable[..., BaseHTTPRequestHandler], path: str = "") -> Iterator[str]:
    """A real threaded HTTP server with `handler` on a free 127.0.0.1 port; yields its base URL (+ `path`).
    Teardown never waits for a handler that is still busy (some tests make them slow on purpose)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    httpd.block_on_close = False
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}{path}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextlib.contextmanager
def run_chroma(data: Path) -> Iterator[tuple[str, int]]:
    """A real `chroma run` on 127.0.0.1 over `data` (log beside it); skipped clearly when chroma is missing."""
    try:
        chroma_binary()
    except StoreUnavailableError as err:
        pytest.skip(str(err))
    with chroma_server(data, log=data.parent / f"{data.name}.log") as (host, port, _):
        yield host, port
