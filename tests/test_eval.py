"""The eval's data handling and metrics (the full `python -m rag eval` run is a benchmark, not a test)."""

from __future__ import annotations

import json
from pathlib import Path

from rag.eval import Hit, Question, load_article, load_squad, score
from rag.ingest import source_id


def test_squad_gold_spans_map_into_the_joined_documents(shared_dir: Path, tmp_path: Path) -> None:
    paths, questions = load_squad(shared_dir, tmp_path)
    texts = {source_id(p): p.read_text(encoding="utf-8") for p in paths}
    raw = {}
    for name in ("Normans.json", "Computational_complexity_theory.json"):
        data = json.loads((shared_dir / "eval" / "squad2" / name).read_text(encoding="utf-8"))
        for para in data["data"][0]["paragraphs"]:
            for qa in para["qas"]:
                if not qa["is_impossible"]:
                    raw[qa["question"]] = {a["text"] for a in qa["answers"]}
    assert len(questions) == 293
    for q in questions:
        assert q.spans
        for src, start, end in q.spans:
            assert texts[src][start:end] in raw[q.text]
    assert all("\n\n\n" not in t for t in texts.values())


def test_article_questions_are_the_answerable_ones_with_history(shared_dir: Path) -> None:
    corpus, questions = load_article(shared_dir)
    assert corpus.is_file() and len(questions) == 10
    follow_up = [q for q in questions if q.text.startswith("Where are Turkey and Russia strategic competitors?")]
    assert len(follow_up) == 2  # the question itself and the follow-up searched with its history


def test_score_counts_ranks_chars_and_mrr() -> None:
    questions = [
        Question("a", evidence=("apple",)),
        Question("b", spans=(("doc", 10, 15),)),
        Question("c", evidence=("cherry",)),
    ]
    results = {
        "a": [Hit("doc", "an apple", 0, 8), Hit("doc", "x", 9, 10)],
        "b": [Hit("doc", "y" * 4, 0, 4), Hit("doc", "z" * 10, 8, 18)],  # span 10-15 lies inside the second
        "c": [Hit("doc", "nothing", 0, 7)],
    }
    row = score(questions, lambda q, k: results[q], k=5)
    assert row["hit@1"] == 1 / 3 and row["hit@2"] == 2 / 3 and row["hit@5"] == 2 / 3
    assert row["mrr@5"] == (1 + 0.5) / 3
    assert row["chars@5"] == (9 + 14 + 7) / 3
