"""Frozen result types shared by every stage of the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field

# What a refusal says: the plain statement, then why. The UI shows NOT_COVERED above every refusal.
NOT_COVERED = "The article doesn't cover this."
REFUSAL = f"{NOT_COVERED[:-1]}: the retrieved passages don't answer the question."


@dataclass(frozen=True)
class Passage:
    """A retrieved span of a document: `document_text[start:end] == text`, always.

    `source` is the file name or URL, `document` the document's id, `page` the 1-based page (None where
    the format has no pages)."""

    source: str
    text: str
    start: int
    end: int
    score: float = 0.0
    document: str = ""
    title: str = ""
    page: int | None = None


@dataclass(frozen=True)
class Document:
    """One document of the library: its id (a hash of its text), where it came from and what it holds."""

    id: str
    title: str
    source: str
    format: str  # url, html, pdf, epub, docx, markdown, text
    added: str  # ISO 8601 time (UTC)
    chars: int
    passages: int
    pages: int = 0  # 0 where the format has no pages
    author: str | None = None
    date: str | None = None


@dataclass(frozen=True)
class IndexStats:
    """What `build_index` did. `built` is False when the content was unchanged and no work was done."""

    documents: int
    passages: int
    collection: str
    embed_model: str
    built: bool
    seconds: float
    built_at: str = ""
    errors: tuple[str, ...] = ()
    vectors_pending: int = 0  # passages found by keyword search only: their vectors are still being written


@dataclass(frozen=True)
class Turn:
    """One earlier exchange of a chat: the user's question and the assistant's answer text."""

    question: str
    answer: str = ""


@dataclass(frozen=True)
class Citation:
    """A numbered marker in an answer and the exact passage it points at."""

    number: int
    source: str
    text: str
    start: int
    end: int
    document: str = ""
    title: str = ""
    page: int | None = None


@dataclass(frozen=True)
class Timings:
    """Seconds spent: retrieval, until the first generated token (None if nothing was generated), total, and of
    those before the first token, deciding whether to answer at all (the answerability judgement); until the
    first checked words were shown (None: nothing shown but a refusal), and judging sentences' support."""

    retrieve: float = 0.0
    first_token: float | None = None
    total: float = 0.0
    decide: float = 0.0
    first_shown: float | None = None
    support: float = 0.0


@dataclass(frozen=True)
class Answer:
    """A finished answer. `text` carries inline markers [1], [2], ... numbered 1..n with no gaps."""

    text: str
    citations: list[Citation] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    refused: bool = False
    standalone_question: str = ""
    provider: str = ""
    model: str = ""
    timings: Timings = field(default_factory=Timings)
    # How each shown sentence's support was checked: "meaning" (the model's judgement, after word overlap),
    # "words" (word overlap alone: no probabilities from the server, or RAG_SUPPORT=words), "" (quotes only).
    support: str = ""
    # Passages of the documents asked about that had no vector yet when the question was retrieved (a document
    # just added, still being embedded): for them the answer rests on keyword (BM25) search alone.
    vectors_pending: int = 0


@dataclass(frozen=True)
class VectorProgress:
    """How far a background pass writing a new document's vectors has got: `done` of `total` passages."""

    done: int
    total: int
    running: bool
    error: str = ""  # why the pass stopped early (safe to show); those passages stay keyword-searchable

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0
