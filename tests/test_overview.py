"""Overview questions ("What is this article about?"): the whole document when it fits the model's context,
passages spread across it when it doesn't, a shared prompt prefix the local model can keep, the extractive
overview, and the default article end to end (real index, real embeddings; one case with the real local model)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from rag import prime_overview, query, query_stream
from rag.answer.plan import messages, overview_evidence, spread
from rag.answer.plan import prime_overview as prime
from rag.answer.policy import SPREAD, SPREAD_PASSAGES, WHOLE
from rag.answer.quotes import central
from rag.config import Settings
from rag.evaluation.answers import citation_checks
from rag.evaluation.open_answers import failing_sentences, points_covered
from rag.search.retriever import open_retriever
from rag.types import Passage
from tests.fakes import MockModel

OVERVIEWS = Path(__file__).parent / "data" / "overview_questions.jsonl"
ARTICLE_POINTS = next(json.loads(line)["points"] for line in OVERVIEWS.read_text(encoding="utf-8").splitlines()
                      if json.loads(line)["document"] == "article")  # fmt: skip


class Scoped:
    """A retriever over in-memory passages with the two calls an overview needs (and nothing to retrieve)."""

    def __init__(self, texts: list[str], vectors: np.ndarray | None = None) -> None:
        at, self.passages = 0, []
        for text in texts:
            self.passages.append(Passage("doc.txt", text, at, at + len(text), document="doc"))
            at += len(text) + 2
        self.text = "\n\n".join(texts)
        self.vectors = vectors if vectors is not None else np.eye(len(texts), dtype=np.float32)

    def scope(self) -> list[str]:
        return ["doc"]

    def document_passages(self, doc_id: str) -> tuple[list[Passage], np.ndarray]:
        return self.passages, self.vectors

    def retrieve(self, question: str, k: int = 5) -> list[Passage]:
        raise AssertionError("an overview reads the whole document; it retrieves nothing")

    def source_text(self, source: str) -> str:
        return self.text

    def passage_vectors(self, passages: Sequence[Passage]) -> list[np.ndarray | None]:
        return [None] * len(passages)  # none stored: answering embeds what it needs


class Unscoped(Scoped):
    """A retriever that lists no whole documents."""

    def scope(self) -> list[str]:
        return []


PARAGRAPHS = [
    "Lighthouses guided ships along the rocky coast for two centuries.",
    "The keepers lived in small stone houses beside each tower.",
    "Electric lamps replaced the oil lamps in the early twentieth century.",
    "Automation ended the keepers' service in most towers by the nineteen eighties.",
]


def test_whole_document_when_it_fits_else_spread(article_settings: Settings) -> None:
    small = Scoped(PARAGRAPHS)
    passages, budget = overview_evidence(small, article_settings) or ([], None)
    assert passages == small.passages and budget is WHOLE
    long = Scoped([p + " " + "More detail about the coast and its history. " * 60 for p in PARAGRAPHS * 10])
    passages, budget = overview_evidence(long, article_settings) or ([], None)
    assert budget is SPREAD and len(passages) == SPREAD_PASSAGES
    starts = [p.start for p in passages]
    assert starts == sorted(starts) and starts[0] == 0 and starts[-1] >= long.passages[-len(long.passages) // 6].start
    assert overview_evidence(Unscoped(PARAGRAPHS), article_settings) is None  # a retriever that lists no documents


def test_spread_takes_the_opening_then_the_most_central_passage_of_each_run() -> None:
    theme, other, third = np.eye(3)
    vectors = np.stack([theme, theme + other, theme, theme - other, theme + third, theme - third, theme])
    # The mean direction is the theme: the lead, then from runs 1-3 and 4-6 the passage nearest to it.
    assert spread(vectors.astype(np.float32), 3) == [0, 2, 6]
    assert spread(vectors[[0, 1, 2, 3, 4, 6, 5]].astype(np.float32), 3) == [0, 2, 5]
    assert spread(vectors[:2], 3) == [0, 1]


def test_overview_prompt_puts_the_question_last_so_the_passages_are_a_shared_prefix() -> None:
    passages = Scoped(PARAGRAPHS).passages
    first = messages("What is this about?", passages, WHOLE)
    second = messages("Summarise it.", passages, WHOLE)
    assert first[0] == second[0]
    a, b = first[1]["content"], second[1]["content"]
    shared = a[: a.index("What is this about?")]
    assert b.startswith(shared) and all(p in shared for p in PARAGRAPHS)
    assert shared.index(PARAGRAPHS[0]) < shared.index(PARAGRAPHS[-1])


def test_overview_is_answered_from_every_passage_and_never_refused(article_settings: Settings) -> None:
    settings = dataclasses.replace(article_settings, provider="local")
    retriever = Scoped(PARAGRAPHS)
    # Off-topic words and no passage number: the checks still find each sentence's passage, and the sentences
    # that no passage supports are dropped.
    model = MockModel().enqueue("Lighthouses guided ships along the rocky coast. The moon is made of cheese. "
                                "Automation ended the keepers' service in most towers [4].")  # fmt: skip
    from rag.answer.pipeline import answer_stream

    answer = answer_stream("What is this text about?", (), settings=settings, retriever=retriever, model=model).answer
    prompt = model.history[0][1]["content"]
    assert all(p in prompt for p in PARAGRAPHS) and not answer.refused
    assert "cheese" not in answer.text and "rocky coast" in answer.text
    cited = [c.text for c in answer.citations]
    assert PARAGRAPHS[0] in cited and PARAGRAPHS[3] in cited
    # The parts the model left out are quoted: the keepers' houses or the electric lamps.
    assert any(p in answer.text for p in PARAGRAPHS[1:3]), answer.text


def test_a_spread_overview_takes_at_most_two_sentences_from_one_part(article_settings: Settings) -> None:
    settings = dataclasses.replace(article_settings, provider="local")
    parts = [p + " " + "More detail about the coast and its history. " * 60 for p in PARAGRAPHS * 10]
    retriever = Scoped(parts)
    shown, budget = overview_evidence(retriever, settings) or ([], None)
    assert budget is SPREAD
    first = "Lighthouses guided ships along the rocky coast for two centuries"
    # The model spends every sentence on the opening part: the third one from it is dropped, and the parts no
    # sentence cites are quoted in its place.
    model = MockModel().enqueue(f"{first} [1]. More detail about the coast and its history [1]. "
                                f"{first} and its history [1]. Its history was detailed [1].")  # fmt: skip
    from rag.answer.pipeline import answer_stream

    answer = answer_stream("Summarize this text.", (), settings=settings, retriever=retriever, model=model).answer
    assert not answer.refused
    number = next(i for i, c in enumerate(answer.citations, 1) if c.start == shown[0].start)
    assert answer.text.count(f"[{number}]") == 2, answer.text
    assert len({c.start for c in answer.citations}) >= 3, answer.text


def test_prime_reads_the_same_prefix_as_an_overview_question(article_settings: Settings) -> None:
    model = MockModel()
    retriever = Scoped(PARAGRAPHS)
    assert prime(model, retriever, article_settings)
    asked = messages("What is this about?", retriever.passages, WHOLE)
    primed = model.prefilled[0]
    assert primed[0] == asked[0]
    assert asked[1]["content"].startswith(primed[1]["content"].split("Question:")[0] + "Question:")
    # Too long to read whole: the spread pick depends on the document alone, so its prompt is primed too.
    long = Scoped([p + " " + "More detail about the coast. " * 200 for p in PARAGRAPHS * 10])
    spread_model = MockModel()
    assert prime(spread_model, long, article_settings)
    assert spread_model.prefilled[0][1]["content"].count("\n[") == SPREAD_PASSAGES
    assert not prime(MockModel(), Unscoped(PARAGRAPHS), article_settings)  # a retriever that lists no documents
    assert not prime_overview(settings=dataclasses.replace(article_settings, provider="extractive"))


def test_extractive_overview_quotes_the_opening_and_central_sentences(article_settings: Settings) -> None:
    settings = dataclasses.replace(article_settings, provider="extractive")
    answer = query("Summarise the article.", settings=settings)
    source = settings.corpus_path.read_text(encoding="utf-8")
    assert not answer.refused and answer.text.startswith(source[:60])
    assert all(citation_checks(answer, source)) and failing_sentences(answer, source) == 0
    starts = [c.start for c in answer.citations]
    assert len(starts) >= 4 and starts == sorted(starts)  # document order, spread over the article
    assert starts[-1] > len(source) // 2
    retriever = open_retriever(settings)
    passages, vectors = retriever.document_passages(retriever.scope()[0])
    assert central(passages, vectors, covered=frozenset(range(len(passages)))) == []


@pytest.mark.llm
def test_local_overview_of_the_default_article(article_settings: Settings) -> None:
    settings = dataclasses.replace(article_settings, provider="local")
    assert prime_overview(settings=settings)
    stream = query_stream("Summarise the article.", settings=settings)
    deltas = list(stream)
    answer = stream.answer
    source = settings.corpus_path.read_text(encoding="utf-8")
    assert answer.provider == "local" and not answer.refused, answer.text
    assert "".join(deltas) == answer.text and len(deltas) >= 3  # streamed sentence by sentence
    assert all(citation_checks(answer, source)) and failing_sentences(answer, source) == 0
    assert len({c.start for c in answer.citations}) >= 3
    assert points_covered(ARTICLE_POINTS, answer.text) >= 2, answer.text


def test_overview_eval_mechanics(tmp_path: Path) -> None:
    """`rag eval --answers` also scores the overview set (extractive here: no model); the mechanics, not figures."""
    from rag.evaluation.open_answers import OVERVIEW_QUESTIONS, run_open_eval

    out = tmp_path / "eval.json"
    result = run_open_eval(Settings(), "extractive", out, questions_path=OVERVIEW_QUESTIONS, limit=2, name="overview")
    tuning = result["open"]["tuning"]
    assert tuning["questions"] == 2 and tuning["refused"] == 0 and tuning["3_of_4"] is not None
    details = json.loads((tmp_path / "eval-overview-extractive.json").read_text(encoding="utf-8"))
    assert [r["id"] for r in details["records"]] == ["ov-art-1", "ov-art-2"]
    assert all(r["covered"] >= 1 and r["failing"] == 0 for r in details["records"])


@pytest.mark.llm
def test_local_overview_of_a_document_longer_than_the_context(shared_dir: Path, tmp_path: Path) -> None:
    """A 25,000-character article (over the local model's 4,096 tokens): passages spread across it, every
    sentence checked, citations from its beginning to its end."""
    from rag.index.build import build_index

    data = json.loads((shared_dir / "eval" / "squad2" / "Normans.json").read_text(encoding="utf-8"))["data"][0]
    text = "\n\n".join(p["context"] for p in data["paragraphs"])
    path = tmp_path / "Normans.txt"
    path.write_text(text, encoding="utf-8")
    settings = Settings(index_dir=tmp_path / "index", provider="local")
    build_index([path], settings=settings)
    passages, budget = overview_evidence(open_retriever(settings), settings) or ([], None)
    assert budget is SPREAD
    answer = query("Summarize the main points of this text.", settings=settings)
    assert answer.provider == "local" and not answer.refused, answer.text
    assert all(citation_checks(answer, text)) and failing_sentences(answer, text) == 0
    starts = sorted({c.start for c in answer.citations})
    assert len(starts) >= 3 and starts[0] < len(text) // 4 and starts[-1] > len(text) // 2, starts
