"""Test doubles for the answering logic: a scripted chat model. Never used by production code."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from rag.models.chat import Message


class MockModel:
    """A ChatModel whose replies are queued by the test; records every message list it was sent.

    `enqueue("text")` queues a reply (streamed word by word), `enqueue(SomeError(...))` makes the next call
    raise it, and `enqueue(["a", "b"])` streams those exact deltas. `judge(p)` queues the next answerability
    judgement's P(yes); with none queued the model offers no probabilities (None), as some servers do.
    """

    def __init__(self, provider: str = "local", model: str = "mock-model") -> None:
        self.provider = provider
        self.model = model
        self.history: list[list[Message]] = []
        self.judged: list[list[Message]] = []
        self.prefilled: list[list[Message]] = []
        self._queue: list[str | list[str] | BaseException] = []
        self._judgements: list[float | None | BaseException] = []

    def enqueue(self, reply: str | list[str] | BaseException) -> MockModel:
        self._queue.append(reply)
        return self

    def judge(self, probability: float | None | BaseException) -> MockModel:
        self._judgements.append(probability)
        return self

    def yes_probability(self, messages: Sequence[Message]) -> float | None:
        self.judged.append([dict(m) for m in messages])  # type: ignore[misc]
        reply = self._judgements.pop(0) if self._judgements else None
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def prefill(self, messages: Sequence[Message]) -> None:
        self.prefilled.append([dict(m) for m in messages])  # type: ignore[misc]

    def keep_prefix(self, messages: Sequence[Message]) -> str:
        self.prefill(messages)
        return "read"

    def stream(self, messages: Sequence[Message]) -> Iterator[str]:
        self.history.append([dict(m) for m in messages])  # type: ignore[misc]
        if not self._queue:
            raise AssertionError("MockModel called with no reply queued")
        reply = self._queue.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        deltas = reply if isinstance(reply, list) else _split_words(reply)
        yield from deltas


def _split_words(text: str) -> list[str]:
    parts: list[str] = []
    for i, word in enumerate(text.split(" ")):
        parts.append(word if i == 0 else " " + word)
    return parts


class ListRetriever:
    """A Retriever over in-memory documents (paragraph chunks), ranked by shared content words.

    Deterministic and index-free, for unit tests of the answering logic; the real hybrid retriever is
    exercised by the retrieval and end-to-end tests.
    """

    def __init__(self, documents: dict[str, str], pinned: Sequence[str] = ()) -> None:
        from rag.index.chunking import chunk_text
        from rag.types import Passage

        self.documents = documents
        self.passages = [
            Passage(source, text[c.start : c.end], c.start, c.end)
            for source, text in documents.items()
            for c in chunk_text(text)
        ]
        self.calls: list[str] = []
        self.pinned = list(pinned)  # passages containing these strings rank first, in this order

    def source_text(self, source: str) -> str:
        return self.documents[source]

    def passage_vectors(self, passages: Sequence[Any]) -> list[Any]:
        return [None] * len(passages)  # no stored vectors: answering embeds what it needs

    def scope(self) -> list[str]:
        return []  # lists no whole documents: an overview question is answered like an open one

    def document_passages(self, doc_id: str) -> tuple[list[Any], Any]:
        raise KeyError(doc_id)  # unreachable: scope() names no document

    def retrieve(self, question: str, k: int = 5) -> list:  # list[Passage]
        from rag.answer.terms import content_stems

        self.calls.append(question)
        wanted = set(content_stems(question))
        def pin(text: str) -> int:
            return next((len(self.pinned) - j for j, s in enumerate(self.pinned) if s in text), 0)

        scored = [
            (pin(p.text) * 1000 + len(wanted & set(content_stems(p.text))), -i, p) for i, p in enumerate(self.passages)
        ]
        scored.sort(key=lambda item: (item[0], item[1]), reverse=True)
        return [p for _, _, p in scored[:k]]
