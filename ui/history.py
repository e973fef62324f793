"""Conversations kept in a SQLite file beside the index, so they survive a restart of the app.

Only finished messages are written, one transaction per completed exchange: a crash (even kill -9) while an
answer is being written loses that answer and nothing else, because SQLite's write-ahead log makes every
committed transaction durable. One connection serves the whole process behind a lock (Streamlit runs each
session, and each answer, on its own thread; SQLite connections must not be used by two threads at once), and
`busy_timeout` waits out another process's short writes. Any SQLite failure becomes `HistoryUnavailable`, a
`RagError` whose message a user can act on; callers fall back to memory.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import RagError
from rag.types import Answer, Citation, Passage, Timings

FILE_NAME = "history.sqlite3"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 2000  # long enough for another writer's commit, short enough not to freeze the page
TITLE_CHARS = 200

# Version 1. `position` orders a conversation's messages; newest-first listing reads the `updated` index backwards.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS conversations_updated ON conversations (updated);
CREATE TABLE IF NOT EXISTS messages (
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    PRIMARY KEY (conversation_id, position)
) WITHOUT ROWID;
"""


Messages = list[dict[str, Any]]  # as the app keeps them: user {content}; assistant {question, answer|error, note?}


class HistoryUnavailable(RagError):
    """The history file can't be used (damaged, locked by another program, unwritable)."""


@dataclass(frozen=True)
class Summary:
    """One line of the conversation list."""

    id: str
    title: str
    updated: float  # seconds since the epoch
    messages: int


def history_path(index_dir: Path | str) -> Path:
    return Path(index_dir) / FILE_NAME


def _explain(path: Path, err: sqlite3.Error) -> HistoryUnavailable:
    """A message that says what is wrong with the file and what happens meanwhile."""
    detail = str(err)
    meanwhile = "the chat works, but conversations are not being saved."
    if "locked" in detail or "busy" in detail:
        return HistoryUnavailable(f"The conversation history ({path}) is locked by another program; {meanwhile}")
    if isinstance(err, sqlite3.DatabaseError) and ("not a database" in detail or "malformed" in detail):
        return HistoryUnavailable(
            f"The conversation history file {path} is damaged ({detail}); {meanwhile} "
            "Move the file aside and restart the app to start a new history."
        )
    return HistoryUnavailable(f"The conversation history ({path}) can't be used ({detail}); {meanwhile}")


class History:
    """The saved conversations in one SQLite file. Thread-safe; every method may raise `HistoryUnavailable`."""

    def __init__(self, path: Path | str, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.path = Path(path)
        self._busy_ms = int(busy_timeout_ms)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE in `_write`), never implicit.
            self._db = sqlite3.connect(self.path, timeout=self._busy_ms / 1000, check_same_thread=False,
                                       isolation_level=None)  # fmt: skip
        except (OSError, sqlite3.Error) as err:
            raise _explain(self.path, err if isinstance(err, sqlite3.Error) else sqlite3.Error(str(err))) from err
        try:
            self._setup()
        except HistoryUnavailable:
            self._db.close()
            raise

    def _setup(self) -> None:
        with self._guard():
            self._db.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            self._db.execute("PRAGMA journal_mode = WAL")  # readers never wait for the writer, commits are atomic
            # FULL: each commit reaches the disk, so even a power cut loses at most the answer being written.
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute("PRAGMA foreign_keys = ON")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise HistoryUnavailable(
                    f"The conversation history {self.path} was written by a newer version of the app; "
                    "the chat works, but conversations are not being saved."
                )
            if version < SCHEMA_VERSION:  # migrations go here, one step per version
                self._db.execute("BEGIN IMMEDIATE")  # two processes starting at once: one creates, one waits
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                self._db.execute("COMMIT")

    @contextmanager
    def _guard(self) -> Iterator[sqlite3.Connection]:
        """The connection for one thread at a time; SQLite errors turned into `HistoryUnavailable`."""
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as err:
                raise _explain(self.path, err) from err

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction: all of it is saved, or none of it."""
        with self._guard() as db:
            db.execute("BEGIN IMMEDIATE")  # take the write lock now, so busy_timeout applies up front
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------ writing

    def create(self, conversation_id: str, first_question: str) -> None:
        """A new, empty conversation titled by its first question (nothing happens if it exists)."""
        with self._write() as db:
            self._ensure(db, conversation_id, first_question)

    def append(self, conversation_id: str, messages: Messages) -> None:
        """Save finished messages after the conversation's last one, in one transaction, creating the
        conversation (titled by its first question) if needed."""
        if not messages:
            return
        now = time.time()
        with self._write() as db:
            self._ensure(db, conversation_id, _first_question(messages), now)
            # After the last saved message (not at the in-memory index): a message that failed to save earlier
            # leaves no gap that a later one could be written over.
            sql = "SELECT COALESCE(MAX(position) + 1, 0) FROM messages WHERE conversation_id = ?"
            start = db.execute(sql, (conversation_id,)).fetchone()[0]
            rows = [(conversation_id, start + i, m["role"], to_json(m)) for i, m in enumerate(messages)]
            db.executemany("INSERT INTO messages VALUES (?, ?, ?, ?)", rows)
            db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (now, conversation_id))

    def _ensure(self, db: sqlite3.Connection, conversation_id: str, title: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        db.execute(
            "INSERT OR IGNORE INTO conversations VALUES (?, ?, ?, ?)",
            (conversation_id, _title(title), now, now),
        )

    def rename(self, conversation_id: str, title: str) -> None:
        with self._write() as db:
            db.execute("UPDATE conversations SET title = ? WHERE id = ?", (_title(title), conversation_id))

    def delete(self, conversation_id: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM messages WHERE conversation_id = ?", (conversation_id,))
            db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    # ------------------------------------------------------------ reading

    def list(self, limit: int = 200) -> list[Summary]:
        """The most recently updated conversations first."""
        sql = (
            "SELECT id, title, updated, (SELECT COUNT(*) FROM messages WHERE conversation_id = c.id)"
            " FROM conversations AS c ORDER BY updated DESC, rowid DESC LIMIT ?"
        )
        with self._guard() as db:
            return [Summary(*row) for row in db.execute(sql, (limit,))]

    def load(self, conversation_id: str) -> Messages | None:
        """The conversation's messages in order, as the app keeps them; None if there is no such conversation."""
        with self._guard() as db:
            if db.execute("SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)).fetchone() is None:
                return None
            sql = "SELECT role, content FROM messages WHERE conversation_id = ? ORDER BY position"
            rows = db.execute(sql, (conversation_id,)).fetchall()
        try:
            return [from_json(role, content) for role, content in rows]
        except (ValueError, KeyError, TypeError) as err:  # a row we did not write: treat the file as damaged
            raise _explain(self.path, sqlite3.DatabaseError(f"malformed message: {err}")) from err


# ---------------------------------------------------------------- messages as JSON


def to_json(message: dict[str, Any]) -> str:
    """A finished message as JSON: user {content}; assistant {question, answer, note?} or {question, error}."""
    data = {k: v for k, v in message.items() if k in ("content", "question", "error", "note")}
    if isinstance(message.get("answer"), Answer):
        data["answer"] = dataclasses.asdict(message["answer"])
    return json.dumps(data, ensure_ascii=False)


def from_json(role: str, content: str) -> dict[str, Any]:
    data = json.loads(content)
    message: dict[str, Any] = {"role": role, **{k: v for k, v in data.items() if k != "answer"}}
    if "answer" in data:
        message["answer"] = answer_from_dict(data["answer"])
    return message


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    # Fields added by a later version are ignored and missing ones take their defaults, so old files still load.
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def answer_from_dict(data: dict[str, Any]) -> Answer:
    """The inverse of `dataclasses.asdict(answer)`."""
    fields = _known(Answer, data)
    fields["citations"] = [Citation(**_known(Citation, c)) for c in data.get("citations", [])]
    fields["passages"] = [Passage(**_known(Passage, p)) for p in data.get("passages", [])]
    fields["timings"] = Timings(**_known(Timings, data.get("timings") or {}))
    return Answer(**fields)


def _first_question(messages: Messages) -> str:
    for m in messages:
        if m["role"] == "user":
            return str(m["content"])
    return str(messages[0].get("question", "Conversation"))


def _title(text: str) -> str:
    title = " ".join(text.split())[:TITLE_CHARS]
    return title or "Conversation"
