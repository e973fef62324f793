"""Evidence for a question by its kind: focused for a factual question, broad and diverse for an open one.

A factual question ("What did they agree on in Sochi?") keeps today's top-k passages and a 1-3 sentence answer.
An open question ("Why didn't Turkey align with the West?") or an overview gets more candidates from the
retriever and a diversity-aware pick among them, maximal marginal relevance (MMR): each next passage is the one
best balancing its fused retrieval score against its cosine similarity to the passages already chosen, so the
model sees several distinct points rather than near-copies of one. The answer may then run to 8 sentences (a
quoted lead, the model's own, up to six as its prompt asks, then quoted reasons it left out), while the prompt
stays about as long as a factual one (one or two sentences from each passage).

The extractive provider does the same with `select_reasons`: one quote per distinct reason, each the sentence
nearest the question with the sentence after it (two after it for the best one) while the sentence budget lasts.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rag.answer.extractive import Similarity, Unit, adds_to, points_back, repeats, score_units, with_next
from rag.types import Passage

OPEN_CANDIDATES = 12  # passages retrieved before the diverse pick
# Weight of relevance against redundancy. Fitted on the tuning open questions (key points found in the 6 picked
# passages: 0.815 at 0.6, 0.852 at 0.7-0.8, 0.87 at 0.9-1.0); the passages are already near-duplicate-free
# (the retriever collapses those), so a strong diversity term mostly swapped relevant passages out.
MMR_LAMBDA = 0.9
# Sentences quoted after the best one: its passage's explanation often runs on ("... because of the wide
# implications of a solution. If the answer is yes, ... These include ..."). Tuning figures in `_followed`.
FIRST_RUN = 2
# e5 cosines between passages of one document crowd into 0.75-0.95: spread that range over 0..1.
_REDUNDANT_FROM, _REDUNDANT_SPAN = 0.75, 0.2


@dataclass(frozen=True)
class Budget:
    """How much evidence the model sees and how long its answer may be, by question kind."""

    kind: str
    passages: int  # retrieved passages kept (the gate, the fallback and citations use them)
    prompt_passages: int  # of which shown to the model
    prompt_chars: int  # characters of passage text in the prompt (excerpts of the most related sentences)
    sentences: int  # checked sentences kept at most
    dropped: int  # dropped sentences before generation is stopped
    prompt: str  # the user prompt file


FACTUAL = Budget("factual", passages=0, prompt_passages=3, prompt_chars=1050, sentences=3, dropped=4,
                 prompt="answer_user")  # fmt: skip
# The open prompt holds about as many characters as a factual one, over more passages, so reading it costs
# about the same: the passages are cut to their sentence most related to the question, and clipped.
# Up to 8 sentences: quotes fill what the model's six leave, at no model time. Chosen on the tuning open questions
# (local: key points 0.518 at 6, 0.548 at 8; extractive: 0.47 at 5 quotes, 0.503 at 8); held-out in the README.
OPEN = Budget("open", passages=6, prompt_passages=5, prompt_chars=900, sentences=8, dropped=5,
              prompt="answer_user_open")  # fmt: skip


def budget(kind: str) -> Budget:
    return FACTUAL if kind == "factual" else OPEN


def gather(retriever: Any, question: str, kind: str, k: int, settings: Any = None) -> list[Passage]:
    """The passages to answer from: the plain top `k` for a factual question; for an open one a diverse pick
    among more candidates (the answerability judgement reads the prompt built from these, as the answer does)."""
    if kind == "factual":
        return list(retriever.retrieve(question, k=k))
    candidates = list(retriever.retrieve(question, k=max(OPEN_CANDIDATES, k)))
    return pick(retriever, candidates, kind, k, settings)


def pick(retriever: Any, candidates: list[Passage], kind: str, k: int, settings: Any = None) -> list[Passage]:
    want = max(k, budget(kind).passages)
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
    """Indices of `n` items by maximal marginal relevance; the first is always the most relevant.

    Relevance is min-max scaled over the candidates; redundancy is the highest cosine with a chosen item,
    rescaled from the range where e5 passage cosines live."""
    rel = np.asarray(relevance, dtype=np.float64)
    span = rel.max() - rel.min()
    rel = (rel - rel.min()) / span if span > 0 else np.ones_like(rel)
    sims = vectors @ vectors.T
    chosen = [int(np.argmax(rel))]
    while len(chosen) < min(n, len(rel)):
        redundancy = np.clip((sims[:, chosen].max(axis=1) - _REDUNDANT_FROM) / _REDUNDANT_SPAN, 0.0, 1.0)
        score = lam * rel - (1 - lam) * redundancy
        score[chosen] = -np.inf
        chosen.append(int(np.argmax(score)))
    return chosen


def clip(text: str, limit: int) -> str:
    """`text` cut at a word boundary to at most `limit` characters ("..." marks the cut)."""
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - 4)].rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:") + " ..."


def passage_vectors(retriever: Any, passages: Sequence[Passage], settings: Any = None) -> np.ndarray | None:
    """(n, dim) unit vectors: stored ones from the index when the retriever offers them, else embedded."""
    found: list[Any] = [None] * len(passages)
    if hasattr(retriever, "passage_vectors"):
        try:
            found = list(retriever.passage_vectors(passages))
        except Exception:  # noqa: BLE001 - a store hiccup only costs the diversity: embed instead
            found = [None] * len(passages)
    missing = [i for i, v in enumerate(found) if v is None]
    if missing:
        embedded = _embed([passages[i].text for i in missing], settings)
        if embedded is None:
            return None
        for i, v in zip(missing, embedded, strict=True):
            found[i] = v
    matrix = np.stack([np.asarray(v, dtype=np.float32) for v in found])
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)


# Passage and sentence vectors by (embedder, text): the same article's sentences come back question after
# question, and embedding them is most of the extractive answer's time on this CPU.
_VECTORS: dict[tuple[int, str], Any] = {}
_VECTORS_LOCK = threading.Lock()
_MAX_VECTORS = 20_000


def cached_vectors(embedder: Any, texts: Sequence[str]) -> list[Any]:
    """Unit passage vectors of `texts`, each embedded once per embedder."""
    from rag.models.embed import embed_passages

    owner = id(embedder)
    with _VECTORS_LOCK:
        found = {t: _VECTORS[(owner, t)] for t in texts if (owner, t) in _VECTORS}
    missing = [t for t in dict.fromkeys(texts) if t not in found]
    if missing:
        found.update(zip(missing, embed_passages(embedder, missing), strict=True))
        with _VECTORS_LOCK:
            if len(_VECTORS) > _MAX_VECTORS:
                _VECTORS.clear()
            _VECTORS.update({(owner, t): found[t] for t in missing})
    return [found[t] for t in texts]


def _embed(texts: Sequence[str], settings: Any) -> list[Any] | None:
    try:
        from rag.config import Settings
        from rag.models.embed import get_embedder

        embedder = get_embedder(settings if settings is not None else Settings())
    except Exception:  # noqa: BLE001 - no embedder: no diversity, the fused order stands
        return None
    return cached_vectors(embedder, texts)


def select_reasons(
    question: str,
    passages: Sequence[Passage],
    *,
    similarity: Similarity | None = None,
    max_units: int = 5,
    min_score: float = 0.3,
    min_lexical: float = 0.2,
    keep_ratio: float = 0.5,
    said: Sequence[str] = (),
) -> list[Unit]:
    """Sentences to quote for an open question: the best one of each passage (the passages are already
    diverse), no two saying the same, each answering about as well as `keep_ratio` of the best. Sentences
    mostly `said` already (by the model's kept sentences) are passed over, so the passage's next best
    sentence can bring its other points."""
    # A unit ending in ";" or ":" is half a thought ("... was not limited to the interests between them;"), and so
    # is one whose first half was cut off by the passage's start.
    ranked = [u for u in score_units(question, passages, similarity)
              if u.score >= min_score and u.lexical >= min_lexical and not u.text.rstrip().endswith((";", ":", ","))
              and not points_back(u.text)]  # fmt: skip
    if not ranked:
        return []
    floor = max(min_score, keep_ratio * ranked[0].score)  # the bar is set by the best sentence, said or not
    ranked = [u for u in ranked if not said or adds_to(u.text, said)]
    chosen: list[Unit] = []
    for unit in ranked:
        if len(chosen) >= max_units or unit.score < floor:
            break
        if any(c.passage_index == unit.passage_index or repeats(unit.text, c.text) for c in chosen):
            continue
        chosen.append(unit)
    return _followed(chosen, passages, max_units, said)


def _followed(chosen: list[Unit], passages: Sequence[Passage], max_units: int, said: Sequence[str]) -> list[Unit]:
    """Each chosen sentence quoted with the sentence after it (the best one with up to `FIRST_RUN` after it),
    best first, while the budget (in sentences) lasts. The sentence nearest a "why" or "how" question names its
    topic; the text's explanation tends to follow it ("Richard left Messina ... But a storm dispersed the
    fleet."). On the tuning open questions the 8 quotes covered 0.518 of the key points as single sentences,
    0.70 with the next ones (0.63 at the same number of sentences), 0.767 with two after the best one (0.752
    with two after every one); held-out figures in the README."""
    out: list[Unit] = []
    used = 0
    for n, unit in enumerate(chosen):
        if used >= max_units:
            break
        quote, length = unit, 1
        while length <= (FIRST_RUN if n == 0 else 1) and used + length < max_units:
            longer = with_next(quote, passages[unit.passage_index])
            if longer is None or not _brings_news(longer.text[len(quote.text) :], chosen, said):
                break
            quote, length = longer, length + 1
        out.append(quote)
        used += length
    return out


def _brings_news(sentence: str, chosen: Sequence[Unit], said: Sequence[str]) -> bool:
    """A following sentence is quoted unless another quote repeats it or the model's sentences already say it."""
    return not any(repeats(sentence, other.text) for other in chosen) and (not said or adds_to(sentence, said))


# A checked sentence whose question words are absent ("worried" for the passage's "concern") still answers when
# its e5 cosine with the question reaches this. Fitted on the tuning split (dev questions, their rewordings,
# SQuAD Normans; `tools/relevance_fit.py`): of the checked sentences the word rule dropped, 6 gave the answer and
# 5 answered another question (an unanswerable one's); the best net gain lay at 0.808-0.822 in one collection
# and 0.807-0.823 in a second (generation varies a little between runs). Held-out figures in the README.
RELEVANT_COSINE = 0.815


class OnTopic:
    """Does a checked sentence still answer the question, or only restate a passage?

    For open questions a sentence whose e5 cosine with the question falls more than `margin` below the best
    sentence kept so far is dropped ("In the same year, Ankara entered the Astana platform" after the reasons
    for "Why didn't Turkey align with the West?"); the first sentence is judged by the other checks alone.
    `answers` lets meaning vouch for a sentence whose words differ from the question's. Without the local
    embedding model (the cosines were measured on e5) there is no similarity: everything passes the margin
    and `answers` says False."""

    MARGIN = 0.05

    def __init__(self, question: str, settings: Any = None, margin: float = MARGIN) -> None:
        self.question, self.settings, self.margin = question, settings, margin
        self.best: float | None = None
        self._vector: Any = None
        self._embedder: Any = None
        self._seen: dict[str, float | None] = {}

    def similarity(self, claim: str) -> float | None:
        if claim not in self._seen:
            self._seen[claim] = self._similarity(claim)
        return self._seen[claim]

    def _similarity(self, claim: str) -> float | None:
        try:
            from rag.config import Settings
            from rag.models.embed import LocalE5, embed_query, get_embedder

            if self._embedder is None:
                self._embedder = get_embedder(self.settings if self.settings is not None else Settings())
                self._vector = embed_query(self._embedder, self.question)
            if not isinstance(self._embedder, LocalE5):
                return None  # the margin was set on e5 cosines
            return float(cached_vectors(self._embedder, [claim])[0] @ self._vector)
        except Exception:  # noqa: BLE001 - no embedder: the lexical checks alone decide
            return None

    def answers(self, claim: str) -> bool:
        sim = self.similarity(claim)
        return sim is not None and sim >= RELEVANT_COSINE

    def __call__(self, claim: str) -> bool:
        sim = self.similarity(claim)
        if sim is None:
            return True
        if self.best is not None and sim < self.best - self.margin:
            return False
        self.best = sim if self.best is None else max(self.best, sim)
        return True
