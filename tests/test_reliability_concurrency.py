"""Many sessions at once, as Streamlit serves them on threads: parallel calls give the sequential results, and
questions keep being answered while the index is rebuilt with new content.

Also covered elsewhere: test_retrieve.py::test_retriever_is_shared_and_thread_safe (16 threads of retrieve).
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import rag
from rag import Answer, Settings
from rag.index.build import build_index, source_id
from tests.helpers import clean_env

REPO = Path(__file__).resolve().parents[1]
ARTICLE = (REPO / "data" / "turkey-russia-article.txt").read_text(encoding="utf-8")
QUESTIONS = [
    "Why didn't Turkey align with the West?",
    "What did Erdogan and Putin agree on in Sochi?",
    "What trade volume target did the two presidents set?",
    "Where do Turkey and Russia compete?",
    "What did the two countries launch in 2016?",
    "What did Turkey and Russia oversee in 2020?",
    "Which missile systems did Russia supply to Turkey?",
    "What is the best recipe for a pizza margherita?",  # refused: the same refusal every time
]
THREADS, CALLS = 8, 20


def _key(answer: Answer) -> tuple[Any, ...]:
    # Everything but the timings, which differ from run to run.
    return (answer.text, answer.citations, answer.passages, answer.refused, answer.standalone_question, answer.provider)


def _run_threads(count: int, work: Any) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def run(t: int) -> None:
        try:
            start.wait()  # all threads hit the pipeline at the same moment
            work(t)
        except BaseException as err:  # noqa: BLE001 - every failure is reported by the test
            errors.append(err)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return errors


def test_parallel_queries_and_retrievals_match_sequential_runs(article_settings: Settings) -> None:
    settings = dataclasses.replace(article_settings, provider="extractive")
    expected_answers = {q: _key(rag.query(q, settings=settings)) for q in QUESTIONS}
    expected_passages = {q: rag.retrieve(q, 5, settings=settings) for q in QUESTIONS}
    assert sum(not key[3] for key in expected_answers.values()) >= 6  # most are answered, with citations
    results: list[tuple[str, str, Any]] = []
    lock = threading.Lock()

    def work(t: int) -> None:
        for i in range(CALLS):
            question = QUESTIONS[(t + i) % len(QUESTIONS)]
            if (t + i) % 2:
                got: Any = ("retrieve", question, rag.retrieve(question, 5, settings=settings))
            else:
                got = ("query", question, _key(rag.query(question, settings=settings)))
            with lock:
                results.append(got)

    errors = _run_threads(THREADS, work)

    assert errors == []
    assert len(results) == THREADS * CALLS
    for kind, question, got in results:
        expected = expected_answers[question] if kind == "query" else expected_passages[question]
        assert got == expected, (kind, question)


LIGHTHOUSE = "The lighthouse keeper on Granite Island counted forty ships every morning before breakfast."


def test_questions_are_answered_while_the_index_is_rebuilt(tmp_path: Path) -> None:
    doc = tmp_path / "article.txt"
    doc.write_text(ARTICLE, encoding="utf-8")
    settings = Settings(index_dir=tmp_path / "index", corpus_path=doc, provider="extractive", collection="live")
    build_index(settings=settings)
    versions = {"old": ARTICLE, "new": LIGHTHOUSE + "\n\n" + ARTICLE}  # prepended: every offset moves
    answered = threading.Condition()
    answers: list[Answer] = []
    stop = threading.Event()
    paused_with: list[int] = []

    def ask(t: int) -> None:
        i = t
        while not stop.is_set():
            answer = rag.query(QUESTIONS[i % 7], settings=settings)
            i += 1
            with answered:
                answers.append(answer)
                answered.notify_all()

    def progress(fraction: float, message: str) -> None:
        # Halfway through embedding, hold the build until three more questions have been answered.
        if message.startswith("Embedded") and not paused_with:
            with answered:
                before = len(answers)
                answered.wait_for(lambda: len(answers) >= before + 3 or stop.is_set(), timeout=300)
                paused_with.append(len(answers) - before)

    def rebuild() -> None:
        with answered:
            answered.wait_for(lambda: len(answers) >= 3 or stop.is_set(), timeout=300)  # queries are flowing first
        doc.write_text(versions["new"], encoding="utf-8")
        stats = build_index(settings=settings, progress=progress)
        assert stats.built
        with answered:
            after = len(answers)
            answered.wait_for(lambda: len(answers) >= after + 3 or stop.is_set(), timeout=300)
        stop.set()

    def work(t: int) -> None:
        try:
            rebuild() if t == 0 else ask(t)
        finally:
            stop.set()
            with answered:  # a failed thread must not leave the others waiting for answers
                answered.notify_all()

    errors = _run_threads(4, work)

    assert errors == []
    assert paused_with and paused_with[0] >= 3  # answered while the new build was half written
    for answer in answers:
        assert not answer.refused and answer.citations
        # All citations of one answer come from one build: exact slices of the old text or of the new one.
        assert any(all(text[c.start : c.end] == c.text for c in answer.citations) for text in versions.values())
    latest = rag.query("Who counted ships on Granite Island every morning?", settings=settings)
    assert latest.citations and latest.citations[0].text.startswith("The lighthouse keeper")
    assert rag.retrieve("Granite Island", 1, settings=settings)[0].source == source_id(doc)


def test_questions_are_answered_while_another_process_rebuilds(tmp_path: Path) -> None:
    # The app keeps serving while `python -m rag index --rebuild` runs in a terminal, then follows the new build.
    doc = tmp_path / "article.txt"
    doc.write_text(ARTICLE, encoding="utf-8")
    settings = Settings(index_dir=tmp_path / "index", corpus_path=doc, provider="extractive", collection="xproc")
    build_index(settings=settings)
    expected = _key(rag.query(QUESTIONS[1], settings=settings))
    doc.write_text(LIGHTHOUSE + "\n\n" + ARTICLE, encoding="utf-8")
    env = clean_env(RAG_INDEX_DIR=str(settings.index_dir), RAG_COLLECTION="xproc", RAG_CORPUS_PATH=str(doc))
    answers: list[Answer] = []
    done = threading.Event()

    def ask(t: int) -> None:
        while not done.is_set():
            answers.append(rag.query(QUESTIONS[1], settings=settings))

    def rebuild(t: int) -> None:
        try:
            out = subprocess.run(
                [sys.executable, "-m", "rag", "index", "--rebuild"], cwd=REPO, env=env, capture_output=True,
                text=True, timeout=300,
            )  # fmt: skip
            assert out.returncode == 0 and out.stdout.startswith("index built"), out.stderr
        finally:
            done.set()

    errors = _run_threads(2, lambda t: rebuild(t) if t == 0 else ask(t))

    assert errors == [] and answers
    for answer in answers:  # old build or new one: the same passage, at its offset in that build's text
        assert not answer.refused and "agreed in Sochi" in answer.text
        assert any(all(text[c.start : c.end] == c.text for c in answer.citations) for text in (ARTICLE, doc.read_text()))
    assert _key(answers[0]) == expected
    latest = rag.query("Who counted ships on Granite Island every morning?", settings=settings)
    assert latest.citations and latest.citations[0].text == LIGHTHOUSE
