"""Chat state that outlives a Streamlit script run: answers computed in the background, conversations per process.

Streamlit stops a running script whenever the page reruns (a tab switch, a click), and forgets a session when the
browser reloads. So an answer is produced on its own thread (a rerun can't lose it; the next run shows it), and a
conversation lives in a process-wide store keyed by an unguessable id kept in the page URL (a reload finds it).
Finished exchanges are also saved to a `History` file (a restart finds them); an answer still being written
lives in memory only. No Streamlit here: the app wires these to `st.session_state` and `st.query_params`.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from rag.errors import RagError
from rag.types import Answer
from ui.history import History, HistoryUnavailable, Summary

log = logging.getLogger(__name__)
UNEXPECTED = "Something went wrong while answering; the server log has the details."
_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")


class Streamed(Protocol):
    """What `rag.query_stream` returns: text deltas to iterate, then the checked `.answer`."""

    def __iter__(self) -> Iterator[str]: ...

    @property
    def answer(self) -> Answer: ...


class BackgroundAnswer:
    """Runs one answer to its end on a daemon thread, whatever happens to the script run that asked for it."""

    def __init__(
        self,
        produce: Callable[[], Streamed],
        on_done: Callable[[BackgroundAnswer], None] | None = None,
        *,
        start: bool = True,
    ) -> None:
        self._deltas: list[str] = []
        self._done = threading.Event()
        self._on_done = on_done
        self.answer: Answer | None = None
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, args=(produce,), name="rag-answer", daemon=True)
        if start:
            self.start()

    def start(self) -> None:
        self._thread.start()

    def _run(self, produce: Callable[[], Streamed]) -> None:
        try:
            stream = produce()
            for delta in stream:
                self._deltas.append(delta)
            self.answer = stream.answer
        except RagError as err:
            self.error = str(err)
        except Exception:  # a bug must not leave the page waiting forever; the log keeps the details
            log.exception("answering failed")
            self.error = UNEXPECTED
        finally:
            self._finished()

    def _finished(self) -> None:
        # `on_done` (saving the answer) runs before `done` is set: whoever sees the answer done sees it saved.
        try:
            if self._on_done is not None:
                self._on_done(self)
        except Exception:
            log.exception("finishing the answer failed")
        finally:
            self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def follow(self, poll: float = 0.05) -> Iterator[str]:
        """Every delta so far, then the new ones as they come, until the answer is finished."""
        seen = 0
        while True:
            if seen < len(self._deltas):
                seen += 1
                yield self._deltas[seen - 1]
            elif self._done.is_set():
                if seen >= len(self._deltas):
                    return
            else:
                self._done.wait(poll)


class Conversations:
    """Conversations by id: the recently used ones in memory (the least recently used dropped beyond `limit`),
    every finished exchange also in `history` when there is one. Thread-safe.

    A history that fails never stops the chat: `problem` then holds the message to show, and conversations
    carry on in memory."""

    def __init__(self, limit: int = 200, history: History | None = None, problem: str | None = None) -> None:
        self._limit = limit
        self._items: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()
        self.history = history
        self.problem = problem

    @classmethod
    def saved_at(cls, path: Path | str, limit: int = 200) -> Conversations:
        """Conversations saved in the history file at `path`; in memory only if the file can't be used."""
        try:
            return cls(limit, History(path))
        except HistoryUnavailable as err:
            log.warning("%s", err)
            return cls(limit, problem=str(err))

    def _failed(self, err: HistoryUnavailable) -> None:
        log.warning("%s", err)
        self.problem = str(err)

    def open(self, conversation_id: str | None) -> tuple[str, list[dict[str, Any]]]:
        """The conversation with this id (the same list object every time), or a new one with a fresh id."""
        with self._lock:
            if conversation_id and _ID.fullmatch(conversation_id):
                if conversation_id in self._items:
                    self._items.move_to_end(conversation_id)
                    return conversation_id, self._items[conversation_id]
                saved = self._load(conversation_id)
                if saved is not None:
                    return conversation_id, self._keep(conversation_id, saved)
            new_id = secrets.token_urlsafe(16)  # 128 bits: the id is the only key to a conversation
            return new_id, self._keep(new_id, [])

    def _load(self, conversation_id: str) -> list[dict[str, Any]] | None:
        if self.history is None:
            return None
        try:
            return self.history.load(conversation_id)
        except HistoryUnavailable as err:
            self._failed(err)
            return None

    def _keep(self, conversation_id: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self._items[conversation_id] = messages
        while len(self._items) > self._limit:
            self._items.popitem(last=False)
        return messages

    def ask(
        self, conversation_id: str, messages: list[dict[str, Any]], question: str, produce: Callable[[], Streamed],
        *, note: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Add the question and its answer, computed in the background, to the conversation `messages`; the
        exchange is saved once the answer is finished. Returns the assistant message (pending until then);
        `note`, if any, is shown with the answer and saved with it (why it was answered the way it was)."""
        msg: dict[str, Any] = {"role": "assistant", "question": question}
        if note:
            msg["note"] = note
        job = BackgroundAnswer(produce, lambda done: self._finish(conversation_id, messages, msg, done), start=False)
        msg["pending"] = job  # before the message is visible: a page showing it must find the job
        with self._lock:
            messages.extend([{"role": "user", "content": question}, msg])
        job.start()
        return msg

    def _finish(self, conversation_id: str, messages: list[dict[str, Any]], msg: dict, job: BackgroundAnswer) -> None:
        """On the answer's thread: save the exchange it ends, then settle the message (saved before shown)."""
        result = {"answer": job.answer} if job.answer is not None else {"error": job.error or UNEXPECTED}
        with self._lock:  # held while saving: a "clear" or "delete" can't slip in between
            where = next((i for i, m in enumerate(messages) if m is msg), None)
            if where and self.history is not None:  # else: cleared or deleted meanwhile, or nowhere to save it
                try:
                    self.history.append(conversation_id, [messages[where - 1], {**msg, **result}])
                except HistoryUnavailable as err:
                    self._failed(err)
        msg.update(result)  # before "pending" goes: a reader never sees neither
        msg.pop("pending", None)

    def clear(self, conversation_id: str, messages: list[dict[str, Any]]) -> None:
        """Empty the conversation (same id), saved copy included."""
        with self._lock:
            messages.clear()
            self._forget(conversation_id)

    def delete(self, conversation_id: str) -> None:
        """Remove the conversation everywhere; a page still showing it finds it empty."""
        with self._lock:
            self._items.pop(conversation_id, []).clear()
            self._forget(conversation_id)

    def _forget(self, conversation_id: str) -> None:
        if self.history is not None:
            try:
                self.history.delete(conversation_id)
            except HistoryUnavailable as err:
                self._failed(err)

    def rename(self, conversation_id: str, title: str) -> None:
        if self.history is not None:
            try:
                self.history.rename(conversation_id, title)
            except HistoryUnavailable as err:
                self._failed(err)

    def saved(self, limit: int = 200) -> list[Summary]:
        """The saved conversations, most recently updated first (none without a usable history)."""
        if self.history is None:
            return []
        try:
            return self.history.list(limit)
        except HistoryUnavailable as err:
            self._failed(err)
            return []
