"""Overview questions ("What is this article about?", "Summarise it", "What are the main arguments?").

Four retrieved passages can't summarise a document, so an overview question (`kinds.kind` == "overview")
reads the documents in scope as a whole:

- They fit the model's context: the model reads every passage, numbered, in document order. The passages come
  before the question in the prompt, so their tokens are the same for every overview question about the same
  documents, and llama.cpp keeps that prefix's state in RAM (`cache_ram_mib`): the next overview question reads
  only its own few tokens (measured on the default article: 1,625 prompt tokens 31 s cold, then 29 tokens and
  ~3 s warm, even after other questions in between). `prime` reads the prefix ahead of the first question.
- They don't: the opening passage, then the rest cut into contiguous runs, and the passage most central to the
  whole (closest to the mean of the documents' passage vectors) taken from each run, so the model sees the
  document's course rather than the top-k of a question that names no topic. The pick depends on the
  documents alone, so this prompt too is a prefix the cache keeps.
- Without a model (extractive): the document's opening sentence and its most central sentences, one per
  passage, in document order.

Every sentence is checked against the passages like any other answer; the overview prompt asks for one main
point per sentence in the article's own words, because a free summary fails the support check.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from rag.answer.evidence import Budget, clip, passage_vectors
from rag.answer.extractive import Unit, repeats
from rag.answer.prompts import render
from rag.answer.verify import Checked
from rag.config import Settings
from rag.models.chat import ChatModel, Message
from rag.text import sentence_spans
from rag.types import Passage

CHARS_PER_TOKEN = 4.0  # English prose in Qwen's tokenizer: 4.9 measured on the default article; 4 leaves room
PROMPT_RESERVE = 400  # tokens for the rules, the question and the chat template around them
# With a remote model the context is large, but each overview question would send the whole text again: past
# this many tokens the spread pick is used even there, to bound cost and time.
REMOTE_WHOLE_TOKENS = 16_000
SPREAD_PASSAGES = 8  # passages shown when the documents don't fit
LEAD = 2  # opening passages always quoted by the extractive overview: the "lead-2" summary baseline

WHOLE = Budget("overview", passages=0, prompt_passages=1_000_000, prompt_chars=0, sentences=6, dropped=6,
               prompt="overview_user")  # fmt: skip
SPREAD = Budget("overview", passages=0, prompt_passages=SPREAD_PASSAGES, prompt_chars=2400, sentences=6,
                dropped=6, prompt="overview_user")  # fmt: skip


class Scope(Protocol):
    """What an overview needs of a retriever: the documents asked about and their passages in order."""

    def scope(self) -> list[str]: ...
    def document_passages(self, doc_id: str) -> tuple[list[Passage], np.ndarray]: ...


def token_budget(settings: Settings) -> int:
    """Tokens of passage text that can go into one overview prompt whole."""
    if settings.resolved_provider == "local":
        return settings.llm_context - settings.max_answer_tokens - PROMPT_RESERVE
    return REMOTE_WHOLE_TOKENS


def evidence(retriever: Any, settings: Settings) -> tuple[list[Passage], Budget] | None:
    """(passages to show, budget) for an overview of the documents in scope; None when the retriever can't
    list whole documents (then the question is answered like an open one)."""
    if not hasattr(retriever, "scope") or not hasattr(retriever, "document_passages"):
        return None
    passages, vectors = _in_scope(retriever)
    if not passages:
        return None
    if sum(len(p.text) for p in passages) / CHARS_PER_TOKEN <= token_budget(settings):
        return passages, WHOLE
    return [passages[i] for i in spread(vectors, SPREAD_PASSAGES)], SPREAD


def _in_scope(retriever: Scope) -> tuple[list[Passage], np.ndarray]:
    passages: list[Passage] = []
    blocks: list[np.ndarray] = []
    for doc_id in retriever.scope():
        found, vectors = retriever.document_passages(doc_id)
        passages += found
        blocks.append(np.asarray(vectors, dtype=np.float32).reshape(len(found), -1))
    return passages, (np.concatenate(blocks) if blocks else np.zeros((0, 0), dtype=np.float32))


def spread(vectors: np.ndarray, n: int) -> list[int]:
    """Indices of `n` passages in document order: the opening passage (a document's lead or abstract states
    its subject), then from each of `n - 1` contiguous runs of the rest, the most central one."""
    total = len(vectors)
    if total <= n:
        return list(range(total))
    centrality = _centrality(vectors)
    bounds = np.linspace(1, total, n).round().astype(int)
    return [0, *(int(lo + np.argmax(centrality[lo:hi])) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True))]


def _centrality(vectors: np.ndarray) -> np.ndarray:
    """Cosine of each (unit) vector with the mean direction of all: how typical of the whole a passage is."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    mean = unit.mean(axis=0)
    return unit @ (mean / max(float(np.linalg.norm(mean)), 1e-12))


def messages(question: str, passages: Sequence[Passage], budget: Budget) -> list[Message]:
    """System: the overview rules. User: the numbered passages, then the question (last, so the long part before
    it is a prefix shared by every overview question about the same documents)."""
    share = budget.prompt_chars // max(1, len(passages)) if budget.prompt_chars else 0
    blocks = [f"[{i}] {_flat(p.text, share)}" for i, p in enumerate(passages, 1)]
    return [
        {"role": "system", "content": render("overview_system")},
        {"role": "user", "content": render(budget.prompt, passages="\n\n".join(blocks), question=question)},
    ]


def _flat(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return clip(flat, limit) if limit else flat  # a spread passage keeps its opening: its topic sentence


def prime(model: ChatModel, retriever: Any, settings: Settings) -> bool:
    """Have the model read the whole-text overview prompt of the documents in scope now, so the first overview
    question only pays for its own words. False when the retriever can't list whole documents."""
    found = evidence(retriever, settings)  # whole or spread, the pick depends on the documents alone
    if found is None:
        return False
    model.prefill(messages("", *found))
    return True


def central_units(retriever: Any, settings: Any, pool: list[Passage],
                  covered: frozenset[int] = frozenset()) -> list[tuple[Passage, Unit]]:  # fmt: skip
    """The extractive overview of `pool`: its opening sentence and its most central ones, as quotable units."""
    vectors = passage_vectors(retriever, pool, settings)
    return [(pool[i], Unit(i, pool[i].text[s:e], s, e))
            for i, (s, e) in central_sentences(pool, vectors, covered=covered)]  # fmt: skip


def uncovered_parts(retriever: Any, settings: Any, passages: list[Passage], kept: Sequence[Checked],
                    most: int) -> list[Checked]:  # fmt: skip
    """A quoted central sentence from each part of the document the model's `kept` sentences left out (a 1.5B
    model often stops after two or three points), up to `most` sentences in all."""
    cited = frozenset(i for i, p in enumerate(passages) if any(p in c.passages for c in kept))
    extra: list[Checked] = []
    for passage, unit in central_units(retriever, settings, passages, cited):
        if len(kept) + len(extra) >= most:
            break
        if not any(repeats(unit.text, c.claim) for c in [*kept, *extra]):
            extra.append(Checked(unit.text, (passage,)))
    return extra


def central_sentences(passages: Sequence[Passage], vectors: np.ndarray | None, most: int = 6,
                      covered: frozenset[int] = frozenset()) -> list[tuple[int, tuple[int, int]]]:  # fmt: skip
    """The extractive overview: (passage index, sentence span) of the document's two opening sentences and, from each
    of the following contiguous runs of passages, the first sentence of its most central passage. Runs holding
    a `covered` passage (one the model's own sentences cite) are skipped: that part was summarised already."""
    whole = [i for i, p in enumerate(passages) if _opening(p.text) is not None]
    if not whole:
        return []
    runs = [[i] for i in whole[:LEAD]]  # a document's opening states its subject (news leads, abstracts)
    rest = whole[LEAD:]
    if vectors is not None and len(vectors) == len(passages) and rest and most > LEAD:
        centrality = dict(zip(rest, _centrality(np.asarray(vectors, dtype=np.float32)[rest]), strict=True))
        bounds = np.linspace(0, len(rest), min(most - LEAD, len(rest)) + 1).round().astype(int)
        runs += [sorted(rest[lo:hi], key=lambda i: -centrality[i]) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    chosen = [run[0] for run in runs if run and not covered.intersection(run)]
    return [(i, span) for i in chosen if (span := _opening(passages[i].text)) is not None]


def _opening(text: str) -> tuple[int, int] | None:
    """The span of a passage's first sentence, unless it is half a thought (ends with ";", ":" or ",")."""
    spans = sentence_spans(text)
    if not spans or text[spans[0][0] : spans[0][1]].rstrip().endswith((";", ":", ",")):
        return None
    return spans[0]
