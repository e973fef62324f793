"""The plan of one answer, built once: the question's kind and policy, the passages it is answered from, the
documents they come from, and the chat the model is sent.

Passages by policy: a factual question keeps the plain top k; an open one retrieves OPEN_CANDIDATES and keeps a
diverse pick by maximal marginal relevance (MMR: each next passage best balances its fused retrieval score against
its cosine with the passages already chosen); an overview reads the documents in scope whole when they fit the
model's context (their passages in document order, before the question, so llama.cpp's prompt cache keeps that
prefix for every overview question), else the opening passage and the most central passage of each part.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from rag.answer.checks import SupportChecker
from rag.answer.citations import MARKER, strip_markers
from rag.answer.kinds import kind as question_kind
from rag.answer.policy import SPREAD, SPREAD_PASSAGES, WHOLE, WHOLE_FACTUAL, Policy, for_kind, read_whole
from rag.answer.prompts import render
from rag.answer.quotes import centrality
from rag.answer.terms import content_stems, main_names
from rag.answer.whole import fits, whole_document
from rag.config import Settings
from rag.errors import ModelError
from rag.models.chat import ChatModel, Message
from rag.models.embed import PASSAGE_COSINES, cached_passages, optional_embedder, rescale
from rag.text import sentence_spans
from rag.types import Passage

log = logging.getLogger(__name__)
OPEN_CANDIDATES = 12  # passages retrieved before an open question's diverse pick
# Weight of relevance against redundancy. Fitted on the tuning open questions (key points found in the 6 picked
# passages: 0.815 at 0.6, 0.852 at 0.7-0.8, 0.87 at 0.9-1.0); the passages are already near-duplicate-free
# (the retriever collapses those), so a strong diversity term mostly swapped relevant passages out.
MMR_LAMBDA = 0.9


class PassageSource(Protocol):
    """What answering needs of a retriever (the real one is `rag.search.retriever.Retriever`)."""

    def retrieve(self, question: str, k: int = 5) -> list[Passage]: ...
    def source_text(self, source: str) -> str: ...
    def passage_vectors(self, passages: Sequence[Passage]) -> list[np.ndarray | None]: ...
    def scope(self) -> list[str]: ...
    def document_passages(self, doc_id: str) -> tuple[list[Passage], np.ndarray]: ...


@dataclass(frozen=True)
class Plan:
    question: str  # the standalone question
    kind: str  # what the kind model said: "factual", "open", "overview" or "other"
    policy: Policy
    passages: tuple[Passage, ...]  # the evidence (best first; an overview's in document order)
    sources: tuple[str, ...]  # the whole texts of the documents the passages come from
    names: frozenset[str]  # those documents' main names (allowed in any sentence)
    retrieve_seconds: float  # from the question to the evidence
    # What retrieval found, when the document is read whole (`passages` is then all of it): quotes, the fallback
    # and the passages listed with the answer come from these, the most related to the question.
    found: tuple[Passage, ...] = ()

    @property
    def evidence(self) -> tuple[Passage, ...]:
        """The passages quotes are chosen from and the answer lists: the retrieved ones."""
        return self.found or self.passages

    @property
    def shown(self) -> tuple[Passage, ...]:
        """The passages the model sees, numbered [1].. in its prompt."""
        return self.passages[: self.policy.prompt_passages]

    @property
    def about_document(self) -> bool:
        return self.kind != "other"

    @property
    def checker(self) -> SupportChecker:
        return SupportChecker(self.names)

    @functools.cached_property
    def messages(self) -> list[Message]:
        """The chat the model is sent; the answerability judgement reads this very prompt first."""
        return messages(self.question, self.shown, self.policy)


def make_plan(standalone: str, retriever: PassageSource, settings: Settings, *, started: float | None = None,
              kind: str | None = None) -> Plan:  # fmt: skip
    """The plan for a standalone question (`kind` given: that kind rather than the kind model's)."""
    started = time.perf_counter() if started is None else started
    found = kind or question_kind(standalone)
    path = found if found != "other" else "factual"  # chit-chat, an instruction: the factual checks refuse it
    whole = overview_evidence(retriever, settings) if path == "overview" else None
    retrieved: list[Passage] = []
    if whole is not None:
        passages, policy = whole
    else:
        policy = for_kind(path)
        passages = gather(retriever, standalone, policy, settings.top_k, settings)
        read = whole_document(retriever, passages, settings)
        if read is not None:  # a short document: read whole, its prefix shared by every question about it
            retrieved, passages, policy = passages, read, read_whole(policy)
    seen = dict.fromkeys(p.source for p in passages)
    sources = tuple(retriever.source_text(s) for s in seen)
    return Plan(standalone, found, policy, tuple(passages), sources, _main_names("\n".join(sources)),
                time.perf_counter() - started, tuple(retrieved))  # fmt: skip


@functools.lru_cache(maxsize=16)
def _main_names(text: str) -> frozenset[str]:
    return main_names(text)


# -- passages -----------------------------------------------------------------------------------------------


def gather(retriever: PassageSource, question: str, policy: Policy, k: int, settings: Settings) -> list[Passage]:
    """The plain top `k` for a factual question; for an open one a diverse pick among more candidates."""
    if not policy.diverse:
        return list(retriever.retrieve(question, k=k))
    candidates = list(retriever.retrieve(question, k=max(OPEN_CANDIDATES, k)))
    want = max(k, policy.passages)
    if len(candidates) <= want:
        return candidates
    vectors = passage_vectors(retriever, candidates, settings)
    if vectors is None:
        return candidates[:want]
    scores = [p.score for p in candidates]
    if len(set(scores)) == 1:  # a retriever without scores: its order is the relevance
        scores = [-float(i) for i in range(len(candidates))]
    # MMR picks the set; the prompt shows it in retrieval order, the most relevant passage first.
    return [candidates[i] for i in sorted(mmr(scores, vectors, want))]


def mmr(relevance: Sequence[float], vectors: np.ndarray, n: int, lam: float = MMR_LAMBDA) -> list[int]:
    """Indices of `n` items by maximal marginal relevance; the first is always the most relevant. Relevance is
    min-max scaled over the candidates; redundancy is the highest cosine with a chosen item, spread over the
    band where e5 passage cosines live."""
    rel = np.asarray(relevance, dtype=np.float64)
    span = rel.max() - rel.min()
    rel = (rel - rel.min()) / span if span > 0 else np.ones_like(rel)
    sims = vectors @ vectors.T
    chosen = [int(np.argmax(rel))]
    while len(chosen) < min(n, len(rel)):
        redundancy = rescale(sims[:, chosen].max(axis=1), *PASSAGE_COSINES)
        score = lam * rel - (1 - lam) * redundancy
        score[chosen] = -np.inf
        chosen.append(int(np.argmax(score)))
    return chosen


def passage_vectors(retriever: PassageSource, passages: Sequence[Passage], settings: Settings) -> np.ndarray | None:
    """(n, dim) unit vectors: stored ones from the index, else embedded; None without an embedder."""
    try:
        found: list[np.ndarray | None] = list(retriever.passage_vectors(passages))
    except Exception:  # noqa: BLE001 - a store hiccup only costs the stored vectors: embed instead
        found = [None] * len(passages)
    missing = [i for i, v in enumerate(found) if v is None]
    if missing:
        embedder = optional_embedder(settings)
        if embedder is None:
            return None
        for i, v in zip(missing, cached_passages(embedder, [passages[i].text for i in missing]), strict=True):
            found[i] = v
    matrix = np.stack([np.asarray(v, dtype=np.float32) for v in found])
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)


def overview_evidence(retriever: PassageSource, settings: Settings) -> tuple[list[Passage], Policy] | None:
    """(passages, policy) for an overview of the documents in scope; None when the retriever lists none."""
    passages: list[Passage] = []
    blocks: list[np.ndarray] = []
    for doc_id in retriever.scope():
        found, vectors = retriever.document_passages(doc_id)
        passages += found
        blocks.append(np.asarray(vectors, dtype=np.float32).reshape(len(found), -1))
    if not passages:
        return None
    if fits(passages, settings):
        return passages, WHOLE
    return [passages[i] for i in spread(np.concatenate(blocks), SPREAD_PASSAGES)], SPREAD


def spread(vectors: np.ndarray, n: int) -> list[int]:
    """Indices of `n` passages in document order: the opening passage (a document's lead or abstract states
    its subject), then from each of `n - 1` contiguous runs of the rest, the most central one."""
    total = len(vectors)
    if total <= n:
        return list(range(total))
    typical = centrality(vectors)
    bounds = np.linspace(1, total, n).round().astype(int)
    return [0, *(int(lo + np.argmax(typical[lo:hi])) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True))]


def prime_overview(model: ChatModel, retriever: PassageSource, settings: Settings) -> bool:
    """Have the model read the overview prompt of the documents in scope now, so the first overview question
    only pays for its own words. False when the retriever lists no documents."""
    found = overview_evidence(retriever, settings)  # whole or spread, the pick depends on the documents alone
    if found is None:
        return False
    model.prefill(messages("", *found))
    return True


def hold_prefix(plan: Plan, model: ChatModel) -> None:
    """Before a question that reads its document whole: have the local server hold that document's prefix,
    restored from its saved state (milliseconds) when the slot moved on to another document since, rather than
    read again with the question (20-70 s on 2 cores). Only the local server saves state; a failure here only
    costs the reading."""
    if not plan.policy.whole or model.provider != "local":
        return
    try:
        model.keep_prefix(messages("", plan.shown, WHOLE_FACTUAL))
    except ModelError as err:
        log.warning("could not restore the document's prompt: %s", err)


def prime_documents(model: ChatModel, retriever: PassageSource, doc_ids: Sequence[str], settings: Settings) -> int:
    """Have the model read the whole-document prefix of each of `doc_ids` that is short enough to be read whole,
    so its first question only pays for its own words. The number of documents read."""
    read = 0
    for doc_id in doc_ids:
        passages, _ = retriever.document_passages(doc_id)
        if settings.whole_documents and fits(passages, settings):
            model.keep_prefix(messages("", passages, WHOLE_FACTUAL))
            read += 1
    return read


# -- the prompt -----------------------------------------------------------------------------------------------


def messages(question: str, passages: Sequence[Passage], policy: Policy) -> list[Message]:
    """System: the constant rules (cached by llama.cpp). User: the numbered passages, then the question (last,
    so an overview's long passages are a prefix shared by every overview question about the same documents).

    A factual or open prompt cuts each passage to its sentences that share most words with the question, so the
    uncached part stays near 250 tokens; citations still name whole passages."""
    share = policy.prompt_chars // max(1, len(passages)) if policy.prompt_chars else 0
    if policy.excerpts:
        blocks = [f"[{i}] {excerpt(question, p.text, share)}" for i, p in enumerate(passages, 1)]
    else:  # whole passages, a spread one clipped to its share: its opening, the topic sentence, stays
        blocks = [f"[{i}] {_flat(p.text, share)}" for i, p in enumerate(passages, 1)]
    if policy.clip_excerpts:  # many passages: each one's excerpt is held to its share
        blocks = [clip(b, share + 5) for b in blocks]
    return [
        {"role": "system", "content": render(policy.system)},
        {"role": "user", "content": render(policy.prompt, passages="\n\n".join(blocks), question=question)},
    ]


def excerpt(question: str, text: str, limit: int) -> str:
    """`text` on one line, or, when longer than `limit`, its sentences most related to the question (in order).
    The passage's own bracketed numbers (footnotes) are left out: the model would take them for passage numbers."""
    text = _unmarked(text)
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    spans = sentence_spans(text)
    wanted = set(content_stems(question))
    ranked = sorted(range(len(spans)), key=lambda i: -len(wanted & set(content_stems(text[slice(*spans[i])]))))
    chosen: list[int] = []
    used = 0
    for i in ranked:
        size = spans[i][1] - spans[i][0]
        if chosen and used + size > limit:
            continue
        chosen.append(i)
        used += size
    return " ... ".join(" ".join(text[slice(*spans[i])].split()) for i in sorted(chosen))


def clip(text: str, limit: int) -> str:
    """`text` cut at a word boundary to at most `limit` characters ("..." marks the cut)."""
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - 4)].rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:") + " ..."


def _unmarked(text: str) -> str:
    return strip_markers(text) if MARKER.search(text) else text


def _flat(text: str, limit: int) -> str:
    flat = " ".join(_unmarked(text).split())
    return clip(flat, limit) if limit else flat
