"""Bad input through the API, the CLI and the UI: each gives a RagError with a clear message, never a crash.

Cases already covered elsewhere (and counted in docs/reliability.md):
test_answer.py::test_bad_input_raises_input_error (empty, blank, oversized, NUL, non-text, malformed history),
test_retrieve.py::test_bad_questions_are_refused_with_a_clear_message, test_ingest.py::test_bad_sources_...
(missing, directory, binary, not UTF-8, empty, huge sources beside a good one), test_cli.py (blank and oversized
questions, a missing path), test_app.py (control characters, blank and oversized questions, RAG_TOP_K=many).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import rag
from rag import ConfigError, InputError, Settings, SourceError, Turn
from rag.index.build import build_index, source_id
from tests.helpers import clean_env, set_app_environment, start_app

REPO = Path(__file__).resolve().parents[1]
GOOD = "The lighthouse keeper on Granite Island counted ships every morning before breakfast."
ON_TOPIC = "What did Erdogan and Putin agree on in Sochi?"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # No index exists here: input checks must fail before anything is opened or built.
    return Settings(provider="extractive", index_dir=tmp_path / "index")


# ------------------------------------------------------------------------------------------ API: questions


@pytest.mark.parametrize(
    ("question", "message"),
    [
        ("Why\x1b[31m red?", "control characters"),  # a terminal escape sequence
        ("delete\x7f me", "control characters"),
        ("form\x0cfeed", "control characters"),
        ("caf\udce9 in Sochi?", "not valid Unicode"),  # undecodable bytes from argv (surrogateescape)
        ("\u00a0 \u3000\u2029", "empty"),  # only no-break, ideographic and paragraph-separator spaces
        (b"What about Sochi?", "must be text"),
        (None, "must be text"),
    ],
    ids=["escape", "del", "formfeed", "surrogate", "unicode-blank", "bytes", "none"],
)
def test_bad_questions_raise_input_error_in_query_and_retrieve(question: object, message: str, settings: Settings) -> None:
    with pytest.raises(InputError, match=message):
        rag.query(question, settings=settings)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=message):
        rag.retrieve(question, settings=settings)  # type: ignore[arg-type]
    assert not settings.index_dir.exists()  # rejected before any index was opened or built


def test_question_length_limit_is_exact(article_settings: Settings) -> None:
    settings = dataclasses.replace(article_settings, provider="extractive", max_question_chars=60)
    at_limit = ON_TOPIC.ljust(60, "?")
    assert rag.query(at_limit, settings=settings).citations  # the limit itself is allowed
    with pytest.raises(InputError, match="limit is 60"):
        rag.query(at_limit + "?", settings=settings)
    assert rag.query(f"  \n{ON_TOPIC}\t ", settings=settings).standalone_question == ON_TOPIC


@pytest.mark.parametrize(
    ("history", "message"),
    [
        (None, "must be a list"),
        ([Turn("q", "a")] * 51, "limit is 50"),
        ([Turn("q", "a" * 20_001)], "too long"),
        ([Turn("q" * 2001, "a")], "too long"),
        ([Turn("q", b"bytes")], "must hold text"),  # type: ignore[arg-type]
        ([("q", "a")], "is not a Turn"),
        ({"q": "a"}, "must be a list"),
    ],
    ids=["none", "too-many", "long-answer", "long-question", "bytes", "tuple", "dict"],
)
def test_malformed_history_raises_input_error(history: object, message: str, settings: Settings) -> None:
    with pytest.raises(InputError, match=message):
        rag.query(ON_TOPIC, history=history, settings=settings)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------- API: sources


@pytest.mark.timeout(90)  # without the regular-file check, reading the FIFO would block forever
def test_special_files_and_bad_names_are_skipped_and_the_good_source_indexed(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text(GOOD, encoding="utf-8")
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)  # reading it would block forever
    bad_name = Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9.txt"))  # a Latin-1 file name
    bad_name.write_text(GOOD + " Twice.", encoding="utf-8")
    utf16 = tmp_path / "utf16.txt"
    utf16.write_text(GOOD, encoding="utf-16")
    bom_only = tmp_path / "bom.txt"
    bom_only.write_bytes(b"\xef\xbb\xbf \n")
    settings = Settings(index_dir=tmp_path / "index", collection="inputs")

    stats = build_index([fifo, good, Path("/dev/zero"), bad_name, utf16, bom_only], settings=settings)

    assert stats.built and stats.documents == 1
    reasons = ["not a regular file", "not a regular file", "not valid UTF-8", "binary", "empty"]
    assert len(stats.errors) == len(reasons)
    for error, reason in zip(stats.errors, reasons, strict=True):
        assert reason in error
    assert "caf?.txt" in stats.errors[2]  # the name is shown, its undecodable byte replaced
    passages = rag.retrieve("Who counted ships?", 1, settings=settings)
    assert passages[0].source == source_id(good) and passages[0].text == GOOD


def test_no_usable_source_names_every_problem(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(SourceError) as info:
        build_index([folder, Path("/dev/null"), tmp_path / "gone.txt"], settings=Settings(index_dir=tmp_path / "i"))
    assert all(str(p) in str(info.value) for p in (folder, "/dev/null", tmp_path / "gone.txt"))


# ----------------------------------------------------------------------------------------- API: settings


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RAG_TOP_K", "abc"),
        ("RAG_TOP_K", "0"),
        ("RAG_TOP_K", "-3"),
        ("RAG_TOP_K", "51"),
        ("RAG_TOP_K", "4.5"),
        ("RAG_PROVIDER", "bogus"),
        ("RAG_PROVIDER", "OpenAI "),  # case and spaces are not guessed at
        ("RAG_EMBED_PROVIDER", "bert"),
        ("RAG_TEMPERATURE", "hot"),
        ("RAG_TEMPERATURE", "nan"),
        ("RAG_TEMPERATURE", "5"),
        ("RAG_FALLBACK_EXTRACTIVE", "maybe"),
        ("RAG_COLLECTION", "my index!"),
        ("RAG_REQUEST_TIMEOUT", "0"),
        ("RAG_MAX_RETRIES", "-1"),
        ("CHROMA_PORT", "http"),
        ("RAG_MAX_QUESTION_CHARS", "0"),
    ],
)
def test_bad_setting_values_raise_config_error(name: str, value: str) -> None:
    variable = name if name.startswith("RAG_") else f"RAG_{name}"
    with pytest.raises(ConfigError) as info:
        Settings.from_env({name: value})
    assert variable in str(info.value) or name in str(info.value)


def test_unknown_provider_in_code_and_blank_variables() -> None:
    with pytest.raises(ConfigError, match="Unknown provider 'gpt'"):
        Settings(provider="gpt")
    assert Settings.from_env({"RAG_TOP_K": "  ", "RAG_PROVIDER": ""}).top_k == Settings().top_k  # blank = default


# ------------------------------------------------------------------------------------------------- CLI


def _cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = clean_env(**{"RAG_INDEX_DIR": str(tmp_path / "index"), "RAG_PROVIDER": "extractive", **env})
    argv = [os.fsencode(a) for a in (sys.executable, "-m", "rag", *args)]
    return subprocess.run(argv, cwd=REPO, env=base, capture_output=True, text=True, timeout=300)


def _one_error_line(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr + out.stdout
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("ask", ""), {}, "empty"),
        (("ask", " \t "), {}, "empty"),
        (("ask", "x" * 3000), {}, "limit is 2,000"),
        (("search", "Why\x1b[31m red?"), {}, "control characters"),
        (("search", os.fsdecode(b"caf\xe9 Sochi")), {}, "not valid Unicode"),  # NUL can't be in argv at all
        (("search", "Sochi", "-k", "0"), {}, "k must be"),
        (("ask", ON_TOPIC), {"RAG_TOP_K": "abc"}, "RAG_TOP_K"),
        (("ask", ON_TOPIC), {"RAG_TOP_K": "0"}, "RAG_TOP_K"),
        (("ask", ON_TOPIC), {"RAG_PROVIDER": "bogus"}, "Unknown provider"),
        (("index", "/dev/null"), {}, "not a regular file"),
    ],
    ids=["empty", "blank", "oversized", "escape", "not-utf8", "k0", "topk-abc", "topk-0", "provider", "device"],
)
def test_cli_bad_input_is_one_line_without_traceback(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    line = _one_error_line(_cli(tmp_path, *args, **env))
    assert message in line
    assert not (tmp_path / "index").exists() or args[0] == "index"  # rejected before any index was built


def test_cli_unknown_provider_flag_is_a_usage_error(tmp_path: Path) -> None:
    out = _cli(tmp_path, "ask", ON_TOPIC, "--provider", "bogus")
    assert out.returncode == 2 and "invalid choice: 'bogus'" in out.stderr and "Traceback" not in out.stderr


def test_cli_index_skips_bad_sources_and_indexes_the_good_one(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text(GOOD, encoding="utf-8")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    bad_name = os.fsdecode(bytes(tmp_path) + b"/caf\xe9.txt")
    Path(bad_name).write_text(GOOD, encoding="utf-8")

    out = _cli(tmp_path, "index", str(binary), bad_name, str(good))

    assert out.returncode == 0 and out.stdout.startswith("index built: 1 documents"), out.stderr
    skipped = out.stderr.strip().splitlines()
    assert len(skipped) == 2 and "Traceback" not in out.stderr
    assert "binary" in skipped[0] and "not valid UTF-8" in skipped[1]
    found = _cli(tmp_path, "search", "Who counted ships?", "-k", "1")
    assert found.returncode == 0 and "lighthouse keeper" in found.stdout


# -------------------------------------------------------------------------------------------------- UI


def _app(monkeypatch: pytest.MonkeyPatch, index_dir: Path, **env: str) -> AppTest:
    set_app_environment(monkeypatch, index_dir, **env)
    return start_app(90)


@pytest.mark.parametrize(
    ("name", "value"), [("RAG_TOP_K", "0"), ("RAG_TOP_K", "abc"), ("RAG_PROVIDER", "bogus"), ("RAG_TEMPERATURE", "9")]
)
def test_ui_bad_setting_is_one_error_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, value: str
) -> None:
    at = _app(monkeypatch, tmp_path / "index", **{name: value})
    assert len(at.error) == 1 and name in at.error[0].value
    assert "Traceback" not in at.error[0].value
    assert not (tmp_path / "index").exists()


@pytest.mark.parametrize("kind", ["missing", "directory", "binary"])
def test_ui_unusable_corpus_is_an_error_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kind: str) -> None:
    corpus = tmp_path / "corpus.txt"
    if kind == "directory":
        corpus.mkdir()
    elif kind == "binary":
        corpus.write_bytes(b"\x00\x01\x02 not text")
    at = _app(monkeypatch, tmp_path / "index", RAG_CORPUS_PATH=str(corpus))
    assert len(at.error) == 1 and str(corpus) in at.error[0].value
    assert "Traceback" not in at.error[0].value


def test_ui_empty_and_bad_questions_keep_the_chat_usable(monkeypatch: pytest.MonkeyPatch, article_settings: Settings) -> None:
    at = _app(monkeypatch, article_settings.index_dir)
    at.chat_input[0].set_value("").run()  # an empty submit does nothing
    assert not at.exception and at.session_state["messages"] == [] and not at.error
    at.chat_input[0].set_value("form\x0cfeed and delete\x7f").run()
    assert not at.exception and len(at.error) == 1 and "control characters" in at.error[0].value
    at.chat_input[0].set_value(ON_TOPIC).run()
    assert not at.exception
    assert at.session_state["messages"][-1]["answer"].citations
