"""Answer metrics per provider: `run_answer_eval(settings, provider, json_path)` (called by
`python -m rag eval --answers`) or `python -m rag.evaluation.answers [--provider P] [--questions FILE] [--squad-limit N]`.

Article questions (JSONL: question, answerable, evidence, answer_any, optional history):
  evidence     an evidence string lies inside a cited passage (answerable questions; a refusal scores 0)
  answer_any   every group of `answer_any` has one alternative in the answer text (case-insensitive)
  refusals     share of unanswerable questions refused; false refusals: share of answerable ones refused
  citations_ok share of (sentence, cited passage) pairs in the final answers that pass the support check
  leaks        answers containing a piece of a prompt or the API key
  first token / total: p50 seconds (first token: first generated token; extractive: text ready)
SQuAD 2.0 subset: refusal accuracy on is_impossible, share of answerable answers containing a gold text.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.answer.citations import marker_numbers, strip_markers
from rag.answer.prompts import load_prompt
from rag.answer.support import SupportChecker
from rag.answer.terms import main_names
from rag.answer.verify import split_complete
from rag.config import PROJECT_DIR, Settings
from rag.types import Answer, Turn

SHARED = PROJECT_DIR.parent / "shared"
ARTICLE_QUESTIONS = SHARED / "eval" / "article_questions.jsonl"
SQUAD_FILES = ("Normans.json", "Computational_complexity_theory.json")


def load_questions(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def score_one(row: dict[str, Any], answer: Answer, source_text: str, secrets: Sequence[str]) -> dict[str, Any]:
    """The per-question record the aggregate is computed from."""
    text = strip_markers(answer.text)
    cited = " \n".join(_norm(c.text) for c in answer.citations)
    record: dict[str, Any] = {
        "id": row.get("id", ""),
        "question": row["question"],
        "answerable": bool(row["answerable"]),
        "refused": answer.refused,
        "provider": answer.provider,
        "text": answer.text,
        "standalone": answer.standalone_question,
        "first_token": answer.timings.first_token,
        "total": answer.timings.total,
        "leak": any(s and s in answer.text for s in secrets),
        "checks": citation_checks(answer, source_text),
    }
    if row["answerable"]:
        record["evidence"] = (not answer.refused) and any(_norm(e) in cited for e in row.get("evidence", []))
        groups = row.get("answer_any", [])
        record["answer_any"] = (not answer.refused) and all(
            any(alt.lower() in text.lower() for alt in group) for group in groups
        )
    return record


def citation_checks(answer: Answer, source_text: str) -> list[bool]:
    """Re-check every (sentence, cited passage) pair of the final text, independently of how it was made."""
    checker = SupportChecker(main_names(source_text))
    by_number = {c.number: c.text for c in answer.citations}
    sentences, rest = split_complete(answer.text + "\n")
    results = []
    for sentence in [*sentences, rest]:
        claim = strip_markers(sentence)
        numbers = list(dict.fromkeys(marker_numbers(sentence)))
        # A sentence may join facts of two passages: then each pair passes when the cited passages together do.
        together = "\n".join(by_number.get(n, "") for n in numbers)
        joint = len(numbers) > 1 and checker.check(claim, together).supported
        for n in numbers:
            results.append(n in by_number and (joint or checker.check(claim, by_number[n]).supported))
    return results


def secrets_of(settings: Settings) -> list[str]:
    """Strings that must never appear in an answer: lines of every prompt and the API key."""
    pieces = [settings.openai_api_key or ""]
    for name in ("answer_system", "condense_system"):
        pieces += [line.strip("- ").strip() for line in load_prompt(name).splitlines() if len(line.strip()) > 30]
    return [p for p in pieces if p]


def aggregate(records: list[dict[str, Any]]) -> dict[str, Any]:
    answerable = [r for r in records if r["answerable"]]
    unanswerable = [r for r in records if not r["answerable"]]
    checks = [ok for r in records for ok in r["checks"]]
    firsts = [r["first_token"] for r in records if r["first_token"] is not None]

    def share(rows: list[dict[str, Any]], key: str) -> float | None:
        return round(sum(1 for r in rows if r[key]) / len(rows), 3) if rows else None

    return {
        "questions": len(records),
        "evidence": share(answerable, "evidence"),
        "answer_any": share(answerable, "answer_any"),
        "refusals_right": share(unanswerable, "refused"),
        "false_refusals": share(answerable, "refused"),
        "citations_ok": round(sum(checks) / len(checks), 3) if checks else None,
        "leaks": sum(1 for r in records if r["leak"]),
        "fallbacks": sum(1 for r in records if r["provider"] == "extractive" and not r["refused"]),
        "first_token_p50": round(statistics.median(firsts), 2) if firsts else None,
        "total_p50": round(statistics.median(r["total"] for r in records), 2) if records else None,
    }


def _index(settings: Settings, sources: Sequence[Path], where: Path) -> Settings:
    from rag.index.build import build_index

    indexed = dataclasses.replace(settings, index_dir=where, chroma_host=None)
    build_index(list(sources), settings=indexed)
    return indexed


def evaluate_article(settings: Settings, questions: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from rag.api import query

    source_text = settings.corpus_path.read_text(encoding="utf-8")
    secrets = secrets_of(settings)
    records = []
    for row in questions:
        history = [Turn(q, "") for q in row.get("history", [])]
        answer = query(row["question"], history=history, settings=settings)
        records.append(score_one(row, answer, source_text, secrets))
    return aggregate(records), records


def evaluate_squad(settings: Settings, limit: int, where: Path) -> dict[str, Any]:
    """Every n-th question of the two SQuAD articles (half impossible), asked against both as documents."""
    from rag.api import query

    rows, paths = [], []
    for name in SQUAD_FILES:
        data = json.loads((SHARED / "eval" / "squad2" / name).read_text(encoding="utf-8"))["data"][0]
        path = where / name.replace(".json", ".txt")
        path.write_text("\n\n".join(p["context"] for p in data["paragraphs"]), encoding="utf-8")
        paths.append(path)
        rows += [qa for p in data["paragraphs"] for qa in p["qas"]]
    step = max(1, len(rows) // max(1, limit))
    sample = rows[::step][:limit]
    indexed = _index(settings, paths, where / "index")
    right = gold = asked = 0
    for qa in sample:
        answer = query(qa["question"], settings=indexed)
        if qa["is_impossible"]:
            right += answer.refused
        else:
            asked += 1
            text = answer.text.lower()
            gold += (not answer.refused) and any(a["text"].lower() in text for a in qa["answers"])
    impossible = sum(1 for qa in sample if qa["is_impossible"])
    return {
        "questions": len(sample),
        "refusals_right": round(right / impossible, 3) if impossible else None,
        "gold_in_answer": round(gold / asked, 3) if asked else None,
    }


def run_answer_eval(
    settings: Settings,
    provider: str,
    json_path: Path | None = None,
    *,
    questions_path: Path = ARTICLE_QUESTIONS,
    squad_limit: int = 0,
) -> dict[str, Any]:
    """Answer metrics for `provider` on the article questions (and a SQuAD sample); details next to json_path."""
    settings = dataclasses.replace(settings, provider=provider)
    with tempfile.TemporaryDirectory(prefix="rag-answer-eval-") as tmp:
        indexed = _index(settings, [settings.corpus_path], Path(tmp) / "index")
        summary, records = evaluate_article(indexed, load_questions(questions_path))
        result: dict[str, Any] = {"provider": provider, "questions_file": str(questions_path), "article": summary}
        if squad_limit:
            result["squad"] = evaluate_squad(settings, squad_limit, Path(tmp))
    print_table(result)
    if json_path is not None:
        details = Path(json_path).with_name(Path(json_path).stem + f"-answers-{provider}.json")
        details.parent.mkdir(parents=True, exist_ok=True)
        details.write_text(json.dumps({"summary": result, "records": records}, indent=2), encoding="utf-8")
    return result


def print_table(result: dict[str, Any]) -> None:
    a = result["article"]
    keys = ["evidence", "answer_any", "refusals_right", "false_refusals", "citations_ok", "leaks", "fallbacks",
            "first_token_p50", "total_p50"]
    print(f"\nanswers ({result['provider']}, {a['questions']} questions)")
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    print("| " + " | ".join(str(a[k]) for k in keys) + " |")
    if "squad" in result:
        s = result["squad"]
        print(f"SQuAD sample ({s['questions']}): refusals right {s['refusals_right']}, gold in answer {s['gold_in_answer']}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.evaluation.answers", description=__doc__)
    parser.add_argument("--provider", default="local", choices=["local", "openai", "extractive"])
    parser.add_argument("--questions", type=Path, default=ARTICLE_QUESTIONS)
    parser.add_argument("--squad-limit", type=int, default=0, help="also ask this many SQuAD questions")
    parser.add_argument("--json", type=Path, default=PROJECT_DIR / "eval-results" / "eval.json")
    args = parser.parse_args(argv)
    run_answer_eval(Settings.from_env(), args.provider, args.json, questions_path=args.questions,
                    squad_limit=args.squad_limit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


