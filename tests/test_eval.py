"""The eval's data handling and metrics (the full `python -m rag eval` run is a benchmark, not a test)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from rag.config import Settings
from rag.evaluation.retrieval import Question, add_arguments, load_article, load_squad, run, score
from rag.index.build import source_id
from rag.types import Passage


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
        "a": [Passage("doc", "an apple", 0, 8), Passage("doc", "x", 9, 10)],
        "b": [Passage("doc", "y" * 4, 0, 4), Passage("doc", "z" * 10, 8, 18)],  # span 10-15 lies inside the second
        "c": [Passage("doc", "nothing", 0, 7)],
    }
    row = score(questions, lambda q, k: results[q], k=5)
    assert row["hit@1"] == 1 / 3 and row["hit@2"] == 2 / 3 and row["hit@5"] == 2 / 3
    assert row["mrr@5"] == (1 + 0.5) / 3
    assert row["chars@5"] == (9 + 14 + 7) / 3


ARTICLE = (
    "On August 5, the two presidents agreed in Sochi to strengthen the partnership.\n\n"
    "Trade between the two countries is expected to reach about 10 billion dollars."
)


def _tiny_shared(root: Path) -> Path:
    """A shared/ layout with a two-paragraph article, two SQuAD-style articles and two article questions."""
    (root / "corpus").mkdir(parents=True)
    (root / "corpus" / "turkey-russia-article.txt").write_text(ARTICLE, encoding="utf-8")
    (root / "eval" / "squad2").mkdir(parents=True)
    questions = [
        {"id": "q1", "question": "Where did the presidents meet?", "answerable": True, "evidence": ["in Sochi"]},
        {"id": "q2", "question": "Who won the cup?", "answerable": False},
    ]
    (root / "eval" / "article_questions.jsonl").write_text("\n".join(json.dumps(q) for q in questions))
    topics = {
        "Normans.json": ["The Normans came from Normandy in northern France.", "Rollo was their first ruler."],
        "Computational_complexity_theory.json": ["A Turing machine is a model of computation.", "P is a class."],
    }
    for name, paragraphs in topics.items():
        paras = [
            {"context": text, "qas": [{"question": f"What about {text.split()[1]}?", "id": f"{name}{i}",
                                       "answers": [{"text": text.split()[1], "answer_start": len(text.split()[0]) + 1}],
                                       "is_impossible": False}]}
            for i, text in enumerate(paragraphs)
        ]  # fmt: skip
        (root / "eval" / "squad2" / name).write_text(json.dumps({"data": [{"title": name, "paragraphs": paras}]}))
    return root


def test_eval_command_prints_a_table_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shared = _tiny_shared(tmp_path / "shared")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    out = tmp_path / "out" / "eval.json"
    args = parser.parse_args(["--json", str(out), "--shared", str(shared), "-k", "2"])
    assert run(args, Settings(index_dir=tmp_path / "unused")) == 0

    results = json.loads(out.read_text())["retrieval"]
    assert set(results) == {f"{setup}/{data}" for setup in ("hybrid-score", "hybrid-rrf", "llamaindex-default")
                            for data in ("article", "squad")} | {"hybrid-score/article-in-library",
                                                                 "hybrid-score/squad-in-library"}  # fmt: skip
    library = results["hybrid-score/squad-in-library"]
    assert library["questions"] == 4 and library["passages"] == results["hybrid-score/squad"]["passages"] + 2
    assert results["hybrid-score/article"]["questions"] == 1 and results["hybrid-score/squad"]["questions"] == 4
    assert results["hybrid-score/article"]["hit@1"] == 1.0 and results["hybrid-score/article"]["passages"] == 2
    printed = capsys.readouterr().out
    assert "hybrid-score/squad" in printed and "llamaindex-default/article" in printed
    assert not (tmp_path / "unused").exists()  # the eval never touches the configured index


def test_answer_eval_reports_each_split_with_flips_and_squad_figures(shared_dir: Path, tmp_path: Path) -> None:
    """The mechanics of `rag eval --answers` on a small fixed sample (extractive: no model); not the figures."""
    from rag.evaluation import answers

    out = tmp_path / "eval.json"
    result = answers.run_answer_eval(Settings(), "extractive", out, squad_per_kind=2, limit=6)
    assert set(result) == {"provider", "tuning", "heldout"}
    assert set(result["tuning"]) == {"dev", "Normans"}
    assert set(result["heldout"]) == {"article+para", "devpara", "Computational_complexity_theory"}
    held = result["heldout"]["article+para"]
    assert held["questions"] == 6 and held["flips"] is not None and 0.0 <= held["flips"] <= 1.0  # 2 groups of 3
    squad = result["heldout"]["Computational_complexity_theory"]
    assert squad["questions"] == 4 and {"gold_in_answer", "gold_in_citation", "refusals_right"} <= set(squad)
    details = json.loads((tmp_path / "eval-answers-extractive.json").read_text())
    assert {r["of"] for r in details["records"]["heldout"][:6]} == {"pub-01", "pub-02"}


def test_squad_normalisation_and_flips() -> None:
    from rag.evaluation.answers import flips, normalise

    assert normalise("The  Normans, in 1066!") == "normans in 1066"
    records = [{"of": "a", "refused": False}, {"of": "a", "refused": True}, {"of": "b", "refused": False},
               {"of": "b", "refused": False}]  # fmt: skip
    assert flips(records) == 0.5


def test_web_eval_adds_the_pages_by_url_and_scores_each_split(tmp_path: Path) -> None:
    """The mechanics of the web-page eval on a small fixed sample (extractive: no model): pages fetched from a
    real server on 127.0.0.1, every question asked of all pages, records per split and kind; not the figures."""
    from rag.evaluation import web_pages

    pages = ["theverge.com.ios13", "phys.org.tool"]  # one tuning page, one held-out page
    result = web_pages.run_web_eval(Settings(), "extractive", tmp_path / "eval.json", limit=15, pages=pages)
    assert set(result["web"]) == {"tuning", "heldout"}
    details = json.loads((tmp_path / "eval-web-extractive.json").read_text())["records"]
    assert {r["page"] for r in details} == set(pages) and {r["kind"] for r in details} == set(web_pages.KINDS)
    for split, row in result["web"].items():
        rows = [r for r in details if r["split"] == split]
        assert row["questions"] == len(rows) > 0
        assert 0.0 <= row["refusals_right_false_premise"] <= 1.0 and row["wrong_page"] >= 0
    # Every cited passage is a real slice of a page the server served: the checks re-run on the final text.
    assert all(ok in (True, False) for r in details for ok in r["checks"])
    assert any(not r["refused"] for r in details)  # something was answered from the pages added by URL


def test_a_false_premise_counts_as_corrected_only_with_the_twins_answer_and_evidence() -> None:
    from rag.evaluation.web_pages import corrects
    from rag.types import Answer, Citation

    twin = {"answer_any": [["ledger"]], "evidence": ["my favorite actor - Heath Ledger"]}
    question = "Why did Joaquin Phoenix say he was standing on the shoulders of Jack Nicholson?"
    passage = "I am standing on the shoulders of my favorite actor - Heath Ledger, he said."
    cite = Citation(1, "page", passage, 0, len(passage))
    assert corrects(Answer("He paid tribute to Heath Ledger, not Jack Nicholson. [1]", [cite]), question, twin)
    assert not corrects(Answer("He admired Jack Nicholson. [1]", [cite]), question, twin)  # the premise restated
    assert not corrects(Answer("He paid tribute to Heath Ledger."), question, twin)  # nothing cited
    assert not corrects(Answer("The article doesn't say.", refused=True), question, twin)
    # The twin's answer word is in the question itself: restating the question would pass, so it never counts.
    parasite = {"answer_any": [["parasite"]], "evidence": ["Parasite"]}
    won = Citation(1, "page", "Parasite was the upset winner", 0, 29)
    assert not corrects(Answer("Parasite won. [1]", [won]), "Which film won before Parasite did?", parasite)
