"""Refusal decisions of the default word gate before generation, per split, without any chat model.

    PYTHONPATH=. python tools/gate_decisions.py [--json out.json] [--squad-per-kind 100] [--work DIR]

Each question goes through the pipeline's own steps up to the gate (rag.answer.pipeline._steps): condense
(no model: the previous question's words carried over), kind, evidence.gather with settings.top_k, then
Composer.start and Composer.refuse_before, so the gate sees the judged passages, the whole documents and the
allowed main names exactly as in an answer. `answerability` is forced to "words" and no model is loaded, so
only retrieval and the local embedder (kinds, diversity) run.

Splits, as in rag.evaluation.answers (whose question sets, SQuAD sampling and index builds are reused):
tuning = dev questions + their rewordings + SQuAD Normans; held-out = the shared article questions + their
rewordings + SQuAD Computational_complexity_theory. The article is indexed alone, each SQuAD article alone.
Figures: refusals right (unanswerable refused), false refusals (answerable refused), flips (groups of a
question and its rewordings whose decisions differ). `--json` keeps each question's decision for diffs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.answer.condense import condense
from rag.answer.decide import decide
from rag.answer.plan import make_plan
from rag.config import Settings
from rag.evaluation.answers import _index, article_sets, squad_sample, squad_text
from rag.inputs import validate_history, validate_question
from rag.search.retriever import open_retriever
from rag.types import Turn

SQUAD = {"tuning": "Normans.json", "heldout": "Computational_complexity_theory.json"}


def article_rows(split: str) -> list[dict[str, Any]]:
    """The split's article questions, each with `of` (the question it rewords, else itself)."""
    if split == "tuning":  # the dev questions' rewordings live in the held-out call's "devpara" set
        return article_sets("tuning")["dev"] + article_sets("heldout")["devpara"]
    return article_sets("heldout")["article+para"]


def decide_one(settings: Settings, question: str, history: Sequence[str]) -> tuple[bool, str]:
    """(refuse?, reason) as the pipeline decides before generating, for the extractive (model-less) path."""
    retriever = open_retriever(settings)
    text = validate_question(question, settings)
    turns = validate_history([Turn(q, "") for q in history], settings)
    decision = decide(make_plan(condense(text, turns, None), retriever, settings), settings, None)
    return decision.refuse, decision.reason


def run_split(settings: Settings, split: str, per_kind: int, where: Path) -> list[dict[str, Any]]:
    """One record per question: id, of, set, answerable, refused, reason."""
    article = _index(settings, [settings.corpus_path], where / "index-article")
    records = []
    for row in article_rows(split):
        refused, reason = decide_one(article, row["question"], row.get("history", []))
        records.append({"id": row["id"], "of": row["of"], "set": "article", "question": row["question"],
                        "answerable": bool(row["answerable"]), "refused": refused, "reason": reason})  # fmt: skip
    if per_kind:
        name = SQUAD[split]
        squad = _index(settings, [squad_text(name, where)], where / f"index-{name.removesuffix('.json')}")
        for qa in squad_sample(name, per_kind):
            refused, reason = decide_one(squad, qa["question"], [])
            records.append({"id": qa["id"], "of": qa["id"], "set": "squad", "question": qa["question"],
                            "answerable": not qa["is_impossible"], "refused": refused, "reason": reason})  # fmt: skip
    return records


def figures(records: Sequence[dict[str, Any]]) -> dict[str, str]:
    """'refused/total' counts: refusals right, false refusals, flips (groups with more than one question)."""
    yes = [r for r in records if r["answerable"]]
    no = [r for r in records if not r["answerable"]]
    groups: dict[str, set[bool]] = {}
    sizes: dict[str, int] = {}
    for r in records:
        groups.setdefault(r["of"], set()).add(r["refused"])
        sizes[r["of"]] = sizes.get(r["of"], 0) + 1
    multi = [key for key, n in sizes.items() if n > 1]
    return {
        "questions": str(len(records)),
        "refusals_right": f"{sum(r['refused'] for r in no)}/{len(no)}",
        "false_refusals": f"{sum(r['refused'] for r in yes)}/{len(yes)}",
        "flips": f"{sum(len(groups[k]) > 1 for k in multi)}/{len(multi)}",
    }


def report(results: dict[str, list[dict[str, Any]]]) -> None:
    keys = ["questions", "refusals_right", "false_refusals", "flips"]
    print("| split/set | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys))
    for split, records in results.items():
        for name in ("article", "squad", "all"):
            rows = [r for r in records if name in ("all", r["set"])]
            if rows:
                print(f"| {split}/{name} | " + " | ".join(figures(rows)[k] for k in keys) + " |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--splits", default="tuning,heldout")
    parser.add_argument("--squad-per-kind", type=int, default=100)
    parser.add_argument("--json", type=Path, help="write every question's decision here")
    parser.add_argument("--work", type=Path, help="keep the indexes here (default: a temporary directory)")
    args = parser.parse_args(argv)
    settings = dataclasses.replace(Settings.from_env(), provider="extractive", answerability="words")
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="rag-gate-") as tmp:
        for split in args.splits.split(","):
            where = (args.work or Path(tmp)) / split
            where.mkdir(parents=True, exist_ok=True)
            results[split] = run_split(settings, split, args.squad_per_kind, where)
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
