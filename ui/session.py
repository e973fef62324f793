"""Chat state that outlives a Streamlit script run: answers computed in the background, conversations per process.

Streamlit stops a running script whenever the page reruns (a tab switch, a click), and forgets a session when the
browser reloads. So an answer is produced on its own thread (a rerun can't lose it; the next run shows it), and a
conversation lives in a process-wide store keyed by an unguessable id kept in the page URL (a reload finds it).
No Streamlit here: the app wires these to `st.session_state` and `st.query_params`.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from rag.errors import RagError
from rag.types import Answer

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

    def __init__(self, produce: Callable[[], Streamed]) -> None:
        self._deltas: list[str] = []
        self._done = threading.Event()
        self.answer: Answer | None = None
        self.error: str | None = None
        threading.Thread(target=self._run, args=(produce,), name="rag-answer", daemon=True).start()

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
    """Conversations of this process by id, the least recently used dropped beyond `limit`. Thread-safe."""

    def __init__(self, limit: int = 200) -> None:
        self._limit = limit
        self._items: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, conversation_id: str | None) -> tuple[str, list[dict[str, Any]]]:
        """The conversation with this id (the same list object every time), or a new one with a fresh id."""
        with self._lock:
            if conversation_id and _ID.fullmatch(conversation_id) and conversation_id in self._items:
                self._items.move_to_end(conversation_id)
                return conversation_id, self._items[conversation_id]
            new_id = secrets.token_urlsafe(16)  # 128 bits: the id is the only key to a conversation
            self._items[new_id] = []
            while len(self._items) > self._limit:
                self._items.popitem(last=False)
            return new_id, self._items[new_id]
