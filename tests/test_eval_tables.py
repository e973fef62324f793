"""tools/eval_tables.py: the Markdown tables printed from the JSON files the evals write, and the in-place rewrite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.eval_tables import BEGIN, END, main

ANSWERS = {
    "summary": {
        "provider": "local",
        "tuning": {
            "dev": {"questions": 40, "evidence": 0.962, "answer_any": 0.923, "refusals_right": 1.0,
                    "false_refusals": 0.0, "citations_ok": 1.0, "leaks": 0, "fallbacks": 3,
                    "first_token_p50": 2.5, "total_p50": 2.51, "flips": None},
            "Normans": {"questions": 60, "gold_in_answer": 0.767, "gold_in_citation": 0.833, "refusals_right": 0.3,
                        "false_refusals": 0.067, "first_token_p50": 3.1},
        },
        "heldout": {
            "article+para": {"questions": 45, "evidence": 0.467, "answer_any": 0.6, "refusals_right": 1.0,
                             "false_refusals": 0.167, "citations_ok": 1.0, "leaks": 0, "fallbacks": 5,
                             "first_token_p50": 2.0, "total_p50": 3.0, "flips": 0.2},
        },
    },
    "records": {"tuning": [], "heldout": []},
}  # fmt: skip
OPEN = {
    "summary": {
        "provider": "local", "questions_file": "/x/tests/data/open_questions.jsonl", "name": "open",
        "open": {
            "tuning": {"questions": 9, "points": 0.73, "3_of_5": 0.889, "3_of_4": None, "citations_ok": 1.0,
                       "failing": 0, "sentences": 6.5, "refused": 0, "unanswerable": 14, "refusals_right": 0.5,
                       "fallbacks": 1, "first_token_p50": 3.0, "first_words_p50": 3.63, "total_p50": 9.0},
            "heldout": {"questions": 0, "unanswerable": 0, "refusals_right": None},
        },
    },
    "records": [],
}  # fmt: skip
# `open_answers --questions overview_questions.jsonl` from its own command line is named "open" too.
OVERVIEW = {"summary": {"provider": "local", "questions_file": "tests/data/overview_questions.jsonl", "name": "open",
                        "open": {"heldout": {"questions": 4, "points": 0.688, "3_of_4": 0.75, "failing": 0}}}}
RETRIEVAL = {"k": 5, "retrieval": {"hybrid-score/article": {
    "questions": 10, "hit@1": 0.7, "hit@2": 0.9, "hit@5": 1.0, "mrr@5": 0.8333333, "chars@5": 1169.4, "p50_ms": 19.52,
}}}  # fmt: skip


@pytest.fixture
def results(tmp_path: Path) -> Path:
    (tmp_path / "eval-answers-local.json").write_text(json.dumps(ANSWERS), encoding="utf-8")
    (tmp_path / "open-open-local.json").write_text(json.dumps(OPEN), encoding="utf-8")
    (tmp_path / "overview-open-local.json").write_text(json.dumps(OVERVIEW), encoding="utf-8")
    (tmp_path / "eval.json").write_text(json.dumps(RETRIEVAL), encoding="utf-8")
    (tmp_path / "notes.json").write_text("[1, 2]", encoding="utf-8")  # no eval's output: skipped
    return tmp_path


def _tables(capsys: pytest.CaptureFixture[str], results: Path) -> list[str]:
    assert main([str(results)]) == 0
    return capsys.readouterr().out.splitlines()


def test_factual_rows_per_split_with_their_own_columns(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = _tables(capsys, results)
    assert "**Factual questions: tuning split, provider local** (`eval-answers-local.json`)" in lines
    # flips is None for every tuning set, so the tuning table has no flips column; the held-out one has.
    tuning_header = lines.index("**Factual questions: tuning split, provider local** (`eval-answers-local.json`)") + 2
    assert lines[tuning_header] == (
        "| tuning set | questions | evidence | answer words | refusals right | false refusals | gold in answer "
        "| gold span cited | citations ok | leaks | fallbacks | first token p50 | total p50 |"
    )
    assert "| dev questions (tests/data/dev_questions.jsonl) | 40 | 0.962 | 0.923 | 1.0 | 0.0 | – | – | 1.0 | 0 | 3 " \
        "| 2.5 s | 2.51 s |" in lines  # fmt: skip
    assert "| SQuAD Normans | 60 | – | – | 0.3 | 0.067 | 0.767 | 0.833 | – | – | – | 3.1 s | – |" in lines
    assert "| shared article questions + their rewordings | 45 | 0.467 | 0.6 | 1.0 | 0.167 | 0.2 | 1.0 | 0 | 5 " \
        "| 2.0 s | 3.0 s |" in lines  # fmt: skip
    assert lines.index("### Tuning split") < lines.index("### Held-out split") < lines.index("### Retrieval")


def test_open_and_retrieval_rows(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = _tables(capsys, results)
    assert "| open questions (open_questions.jsonl) | 9 | 0.73 | 0.889 | 1.0 | 0 | 6.5 | 0 | 1 | 14 | 0.5 | 3.0 s " \
        "| 3.63 s | 9.0 s |" in lines  # fmt: skip
    # Held-out: the open file has no question there, the overview file (same name "open") has its own row.
    assert "**Open and overview questions: held-out split, provider local** (`overview-open-local.json`)" in lines
    assert "| overview questions (overview_questions.jsonl) | 4 | 0.688 | 0.75 | 0 |" in lines
    assert "| hybrid-score: shared article questions (held-out in the answer eval) | 10 | 0.7 | 0.9 | 1.0 | 0.833 " \
        "| 1,169 | 19.5 |" in lines  # fmt: skip


def test_write_replaces_only_the_figures_block(results: Path, tmp_path: Path) -> None:
    doc = tmp_path / "evaluation.md"
    doc.write_text(f"# Evaluation\n\nbefore\n{BEGIN}\nold figures\n{END}\nafter\n", encoding="utf-8")
    assert main(["--write", str(doc), str(results)]) == 0
    text = doc.read_text(encoding="utf-8")
    assert text.startswith(f"# Evaluation\n\nbefore\n{BEGIN}\n### Tuning split\n") and text.endswith(f"{END}\nafter\n")
    assert "old figures" not in text and "| SQuAD Normans | 60 |" in text
    assert main(["--write", str(doc), str(results)]) == 0 and doc.read_text(encoding="utf-8") == text  # idempotent


def test_write_refuses_a_file_without_the_markers(results: Path, tmp_path: Path) -> None:
    doc = tmp_path / "plain.md"
    doc.write_text("no markers here\n", encoding="utf-8")
    assert main(["--write", str(doc), str(results)]) == 1
    assert doc.read_text(encoding="utf-8") == "no markers here\n"
