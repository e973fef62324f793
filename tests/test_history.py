"""ui.history on real SQLite files: round trips, order, rename/delete, damaged and locked files, 1,000
conversations, and a child process killed with SIGKILL while it writes."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rag import Answer, Citation, Passage, Timings
from ui.history import History, HistoryUnavailable
from ui.session import Conversations

ROOT = Path(__file__).resolve().parents[1]
ANSWER = Answer(
    text="Turkey balanced between both sides [1], and kept talking to Moscow [2].",
    citations=[
        Citation(1, "article.txt", "Turkey balanced", 10, 25, document="d1", title="The article", page=None),
        Citation(2, "report.pdf", "talks with Moscow", 400, 417, document="d2", title="A report", page=3),
    ],
    passages=[Passage("article.txt", "Turkey balanced between", 10, 33, 0.8, "d1", "The article")],
    standalone_question="Why didn't Turkey align with the West?",
    provider="extractive",
    model="quotes",
    timings=Timings(retrieve=0.12, first_token=None, total=0.5),
)


def _exchange(question: str, answer: Answer | None = None, error: str | None = None) -> list[dict]:
    reply: dict = {"role": "assistant", "question": question}
    reply.update({"answer": answer} if error is None else {"error": error})
    return [{"role": "user", "content": question}, reply]


def _sql(path: Path, statement: str) -> Any:
    """The first value `statement` gives on its own connection to the history file (as another process sees it)."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute(statement).fetchone()[0]


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    h = History(tmp_path / "history.sqlite3")
    yield h
    h.close()


def test_an_answer_with_citations_round_trips(history: History, tmp_path: Path) -> None:
    history.append("conv-a", _exchange("Why?", ANSWER))
    history.append("conv-a", _exchange("Too long?", error="The question is too long."))
    reopened = History(tmp_path / "history.sqlite3")  # another connection, as after a restart
    messages = reopened.load("conv-a")
    assert messages == [*_exchange("Why?", ANSWER), *_exchange("Too long?", error="The question is too long.")]
    assert messages is not None and messages[1]["answer"].citations[1].page == 3  # real objects, not dicts
    assert reopened.load("no-such-conversation") is None
    assert [(s.title, s.messages) for s in reopened.list()] == [("Why?", 4)]


def test_listed_newest_first_titled_by_the_first_question(history: History) -> None:
    for name in ("one", "two", "three"):
        history.append(name, _exchange(f"First question of {name}\n  spread over lines?", ANSWER))
    assert [s.id for s in history.list()] == ["three", "two", "one"]
    history.append("one", _exchange("A follow-up", ANSWER))  # a new answer moves it to the top
    listed = history.list()
    assert [s.id for s in listed] == ["one", "three", "two"]
    assert listed[0].title == "First question of one spread over lines?" and listed[0].messages == 4
    assert [s.id for s in history.list(limit=2)] == ["one", "three"]


def test_rename_and_delete(history: History) -> None:
    history.append("a", _exchange("Question a", ANSWER))
    history.append("b", _exchange("Question b", ANSWER))
    history.rename("a", "  Turkey and the West  ")
    assert {s.id: s.title for s in history.list()} == {"a": "Turkey and the West", "b": "Question b"}
    history.delete("a")
    assert [s.id for s in history.list()] == ["b"] and history.load("a") is None
    count = _sql(history.path, "SELECT COUNT(*) FROM messages WHERE conversation_id = 'a'")
    assert count == 0  # its messages went with it


def test_schema_is_versioned_and_the_file_in_wal_mode(history: History) -> None:
    db = sqlite3.connect(history.path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(HistoryUnavailable, match="newer version"):
        History(history.path)


def _damaged(path: Path, how: str) -> Path:
    if how == "not a database":
        path.write_bytes(b"this is not a database, just some text " * 200)
    else:  # a real database whose pages after the header were overwritten
        h = History(path)
        for i in range(50):
            h.append(f"c{i}", _exchange(f"Question {i}", ANSWER))
        _sql(path, "PRAGMA wal_checkpoint(TRUNCATE)")
        h.close()
        data = bytearray(path.read_bytes())
        data[100:] = b"\xff" * (len(data) - 100)
        path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("how", ["not a database", "malformed"])
def test_a_damaged_file_is_a_clear_message_and_the_chat_goes_on(tmp_path: Path, how: str) -> None:
    path = _damaged(tmp_path / "history.sqlite3", how)
    with pytest.raises(HistoryUnavailable) as raised:
        History(path).list()
    message = str(raised.value)
    assert "damaged" in message and str(path) in message and "Move the file aside" in message
    assert "Traceback" not in message and "sqlite3." not in message
    store = Conversations.saved_at(path)  # what the app does: memory only, with the message to show
    assert store.history is None and store.problem == message
    conv_id, messages = store.open(None)
    _answered(store.ask(conv_id, messages, "Why?", lambda: _Done(ANSWER)))
    assert messages[1]["answer"] == ANSWER and store.open(conv_id)[1] is messages and store.saved() == []


def test_a_locked_file_is_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    History(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")  # another program holding the file
    try:
        with pytest.raises(HistoryUnavailable, match="locked by another program") as raised:
            History(path, busy_timeout_ms=200).append("c", _exchange("Why?", ANSWER))
        assert str(path) in str(raised.value) and "not being saved" in str(raised.value)
        store = Conversations.saved_at(path)  # the app starting meanwhile: memory only, with the message
        assert store.history is None and store.problem is not None and "locked" in store.problem
    finally:
        holder.close()


def test_a_lock_taken_after_start_does_not_stop_the_chat(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    store = Conversations(history=History(path, busy_timeout_ms=200))
    conv_id, messages = store.open(None)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a writer that does not let go
    try:
        _answered(store.ask(conv_id, messages, "Why?", lambda: _Done(ANSWER)))
    finally:
        holder.close()
    assert messages[1]["answer"] == ANSWER  # answered and shown all the same
    assert store.problem is not None and "locked" in store.problem
    _answered(store.ask(conv_id, messages, "And then?", lambda: _Done(ANSWER)))  # lock gone: saved
    assert [m.get("content") for m in History(path).load(conv_id) or []] == ["And then?", None]


def _answered(msg: dict, timeout: float = 10) -> dict:
    """The assistant message once its answer is finished (and saved)."""
    deadline = time.monotonic() + timeout
    while "pending" in msg and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "pending" not in msg
    return msg


class _Done:
    """A finished stream: what rag.query_stream returns, without the pipeline."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer

    def __iter__(self) -> Iterator[str]:
        yield self.answer.text


def test_conversations_save_each_exchange_when_its_answer_is_finished(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    store = Conversations.saved_at(path)
    conv_id, messages = store.open(None)
    release = threading.Event()

    def slow() -> _Done:
        release.wait(10)
        return _Done(ANSWER)

    msg = store.ask(conv_id, messages, "Why?", slow)
    job = msg["pending"]
    assert store.saved() == []  # being written: memory only
    release.set()
    assert job.wait(10)
    assert "pending" not in msg and msg["answer"] == ANSWER
    assert [s.id for s in store.saved()] == [conv_id]
    restarted = Conversations.saved_at(path)  # a new process: the same id finds the saved conversation
    assert restarted.open(conv_id) == (conv_id, messages)
    restarted.rename(conv_id, "Renamed")
    assert restarted.saved()[0].title == "Renamed"
    restarted.clear(conv_id, restarted.open(conv_id)[1])
    assert restarted.saved() == [] and restarted.open(conv_id) == (conv_id, [])  # cleared, same id


def test_a_deleted_conversation_is_not_brought_back_by_its_late_answer(tmp_path: Path) -> None:
    store = Conversations.saved_at(tmp_path / "history.sqlite3")
    conv_id, messages = store.open(None)
    _answered(store.ask(conv_id, messages, "First?", lambda: _Done(ANSWER)))
    release = threading.Event()
    late = store.ask(conv_id, messages, "Second?", lambda: (release.wait(10), _Done(ANSWER))[1])
    job = late["pending"]
    store.delete(conv_id)
    release.set()
    assert job.wait(10)
    assert store.saved() == [] and messages == []
    assert store.open(conv_id)[0] != conv_id


def test_one_thousand_conversations(tmp_path: Path) -> None:
    history = History(tmp_path / "history.sqlite3")
    rows = []
    for i in range(1000):
        rows.append((f"conv-{i:04d}", f"Question number {i}", 1000.0 + i, 1000.0 + i))
    db = sqlite3.connect(history.path)
    with db:  # one transaction: the test is about listing, not about 1,000 fsyncs
        db.executemany("INSERT INTO conversations VALUES (?, ?, ?, ?)", rows)
        for cid, title, *_ in rows:
            for pos, m in enumerate(_exchange(title, ANSWER) * 2):
                db.execute("INSERT INTO messages VALUES (?, ?, ?, ?)", (cid, pos, m["role"], "{}"))
    db.close()
    times = []
    for _ in range(5):
        started = time.perf_counter()
        listed = history.list(limit=1000)
        times.append(time.perf_counter() - started)
    assert len(listed) == 1000 and listed[0].id == "conv-0999" and listed[-1].id == "conv-0000"
    assert {s.messages for s in listed} == {4}
    print(f"1,000 conversations listed in {sorted(times)[2] * 1000:.1f} ms (median of 5)")


# ---------------------------------------------------------------- kill -9 while writing

_WRITER = """
import sys
from rag import Answer, Citation
from ui.history import History
h = History(sys.argv[1])
answer = Answer(text="x [1]", citations=[Citation(1, "a.txt", "passage " * 200, 0, 1600)])
i = 0
while True:
    h.append(f"c{i % 7}", [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "question": f"q{i}", "answer": answer}])
    print(i, flush=True)  # printed only once the exchange is committed
    i += 1
"""

_APP_LIKE = """
import sys, threading, time
from rag import Answer
from ui.session import Conversations

class Stream:
    def __init__(self, n, block):
        self.n, self.block = n, block
        self.answer = Answer(text=f"answer {n}")
    def __iter__(self):
        yield "answer "
        if self.block:
            print("writing", flush=True)
            threading.Event().wait()  # the answer being written when the process dies
        yield str(self.n)

store = Conversations.saved_at(sys.argv[1])
cid, messages = store.open(None)
for n in range(6):
    msg = store.ask(cid, messages, f"question {n}", lambda n=n: Stream(n, n == 5))
    if n < 5:
        while "pending" in msg:
            time.sleep(0.01)
        print("saved", cid, flush=True)
threading.Event().wait()
"""


def _run_until(script: str, path: Path, stop: str | int) -> tuple[list[str], subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, "-c", script, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line.strip())
        if (isinstance(stop, int) and len(lines) >= stop) or line.strip() == stop:
            break
    return lines, proc


def test_kill_9_mid_write_loses_nothing_committed(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    lines, proc = _run_until(_WRITER, path, 40)
    os.kill(proc.pid, signal.SIGKILL)  # while it is writing the next exchange
    proc.wait(10)
    assert proc.stdout is not None
    committed = len(lines) + sum(1 for _ in proc.stdout)  # lines already in the pipe: committed too
    history = History(path)
    assert _sql(path, "PRAGMA integrity_check") == "ok"
    saved = sum(s.messages for s in history.list()) // 2
    assert committed <= saved <= committed + 1  # every committed exchange; at most one more, never a half one
    for s in history.list():
        messages = history.load(s.id) or []
        assert len(messages) % 2 == 0 and all(m["answer"].citations for m in messages[1::2])


def test_kill_9_while_an_answer_is_being_written_loses_only_that_answer(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    lines, proc = _run_until(_APP_LIKE, path, "writing")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    conv_id = lines[0].split()[1]
    messages = History(path).load(conv_id) or []
    assert [m.get("content") for m in messages[::2]] == [f"question {n}" for n in range(5)]
    assert [m["answer"].text for m in messages[1::2]] == [f"answer {n}" for n in range(5)]
