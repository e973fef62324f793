"""Answer metrics per provider and split: `run_answer_eval(settings, provider, json_path)` (called by
`python -m rag eval --answers`) or `python -m rag.evaluation.answers [--provider P] [--splits tuning,heldout]
[--squad-per-kind N] [--limit N]`.

Splits: tuning = tests/data/dev_questions.jsonl + SQuAD Normans.json (thresholds are fitted here); held-out =
the shared article questions, each followed by its two rewordings (tests/data/paraphrases.jsonl) + SQuAD
Computational_complexity_theory.json; `devpara` = rewordings of the dev questions (never fitted on, reported apart).
  flips          share of question groups (a question and its rewordings) whose answer/refusal decision differs
  gold_in_answer SQuAD: a gold answer text (normalised) appears in the answer
  gold_in_citation SQuAD: a gold answer span lies inside a cited passage

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
import random
import re
import statistics
import string
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.answer.checks import SupportChecker
from rag.answer.citations import marker_numbers, split_complete, strip_markers
from rag.answer.prompts import load_prompt
from rag.answer.terms import main_names
from rag.config import PROJECT_DIR, Settings
from rag.types import Answer, Turn

SHARED = PROJECT_DIR.parent / "shared"
ARTICLE_QUESTIONS = SHARED / "eval" / "article_questions.jsonl"
DEV_QUESTIONS = PROJECT_DIR / "tests" / "data" / "dev_questions.jsonl"
PARAPHRASES = PROJECT_DIR / "tests" / "data" / "paraphrases.jsonl"


def load_questions(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def ask(question: str, settings: Settings, history: Sequence[Turn] = ()) -> tuple[Answer, int]:
    """`rag.query` through the pipeline's trace: the answer, and how many of its shown sentences the model
    judged unsupported (the product's promise is that there are none)."""
    from rag.answer.decide import cutoff
    from rag.answer.pipeline import answer_stream
    from rag.api import load_chat_model, open_index
    from rag.inputs import validate_history, validate_question

    judged: list[Any] = []
    model = load_chat_model(settings) if settings.resolved_provider != "extractive" else None
    stream = answer_stream(validate_question(question, settings), validate_history(history, settings),
                           settings=settings, retriever=open_index(settings), model=model,
                           trace=lambda name, value: judged.append(value) if name == "support" else None)  # fmt: skip
    answer = stream.answer
    text = " ".join(strip_markers(answer.text).split())
    low = [j for j in judged if j.probability is not None and j.probability < cutoff(settings, "support")]
    return answer, sum(1 for j in low if " ".join(j.claim.split()) in text)


def score_one(row: dict[str, Any], answer: Answer, source_text: str, secrets: Sequence[str],
              unsupported: int = 0) -> dict[str, Any]:  # fmt: skip
    """The per-question record the aggregate is computed from."""
    text = strip_markers(answer.text)
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
        "unsupported_shown": unsupported,
        "first_shown": answer.timings.first_shown,
        "support": answer.support,
        "cited": {str(c.number): c.text for c in answer.citations},  # to study or re-score an answer later
    }
    if row["answerable"]:
        record["evidence"] = cites_evidence(answer, row.get("evidence", []))
        record["answer_any"] = (not answer.refused) and has_answer_words(row.get("answer_any", []), text)
    return record


def cites_evidence(answer: Answer, evidence: Sequence[str]) -> bool:
    """Not refused, and a cited passage holds one of the `evidence` substrings (whitespace and case aside)."""
    return not answer.refused and evidence_in([c.text for c in answer.citations], evidence)


def evidence_in(cited: Sequence[str], evidence: Sequence[str]) -> bool:
    """One of the `cited` passage texts holds one of the `evidence` substrings (whitespace and case aside)."""
    joined = " \n".join(_norm(text) for text in cited)
    return any(_norm(e) in joined for e in evidence)


def has_answer_words(groups: Sequence[Sequence[str]], text: str) -> bool:
    """Every `answer_any` group has an alternative in `text` (case-insensitive substrings)."""
    low = text.lower()
    return all(any(alt.lower() in low for alt in group) for group in groups)


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
        "unsupported_shown": sum(r.get("unsupported_shown", 0) for r in records),
        "first_shown_p50": _p50([r["first_shown"] for r in records if r.get("first_shown") is not None]),
        "first_token_p50": round(statistics.median(firsts), 2) if firsts else None,
        "total_p50": round(statistics.median(r["total"] for r in records), 2) if records else None,
    }


def _p50(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def _index(settings: Settings, sources: Sequence[Path], where: Path) -> Settings:
    from rag.index.build import build_index

    indexed = dataclasses.replace(settings, index_dir=where, chroma_host=None)
    build_index(list(sources), settings=indexed)
    return indexed


def evaluate_article(
    settings: Settings, questions: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:

    source_text = settings.corpus_path.read_text(encoding="utf-8")
    secrets = secrets_of(settings)
    records = []
    for row in questions:
        history = [Turn(q, "") for q in row.get("history", [])]
        answer, unsupported = ask(row["question"], settings, history)
        records.append(score_one(row, answer, source_text, secrets, unsupported))
    return aggregate(records), records


def squad_sample(name: str, per_kind: int, seed: int = 0) -> list[dict[str, Any]]:
    """`per_kind` answerable and `per_kind` unanswerable questions of one SQuAD article (fixed seed), interleaved."""
    data = json.loads((SHARED / "eval" / "squad2" / name).read_text(encoding="utf-8"))["data"][0]
    offsets, at = [], 0
    for para in data["paragraphs"]:
        offsets.append(at)
        at += len(para["context"]) + 2  # joined with a blank line, as written by `squad_text`
    rows = [{**qa, "offset": offsets[i]} for i, para in enumerate(data["paragraphs"]) for qa in para["qas"]]
    rng = random.Random(seed)
    yes = [r for r in rows if not r["is_impossible"]]
    no = [r for r in rows if r["is_impossible"]]
    a, b = rng.sample(yes, min(per_kind, len(yes))), rng.sample(no, min(per_kind, len(no)))
    return [r for pair in zip(a, b, strict=False) for r in pair] + a[len(b) :] + b[len(a) :]


def squad_text(name: str, where: Path) -> Path:
    data = json.loads((SHARED / "eval" / "squad2" / name).read_text(encoding="utf-8"))["data"][0]
    path = where / name.replace(".json", ".txt")
    path.write_text("\n\n".join(p["context"] for p in data["paragraphs"]), encoding="utf-8")
    return path


_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalise(text: str) -> str:
    """SQuAD's answer normalisation: lower case, punctuation and articles removed, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in string.punctuation)
    return " ".join(_ARTICLES.sub(" ", text).split())


def score_squad(qa: dict[str, Any], answer: Answer, unsupported: int, source: str) -> dict[str, Any]:
    golds = qa["answers"]
    spans = [(qa["offset"] + g["answer_start"], qa["offset"] + g["answer_start"] + len(g["text"])) for g in golds]
    cited = [(c.start, c.end) for c in answer.citations if c.source == source]
    text = normalise(strip_markers(answer.text))
    return {
        "id": qa["id"], "question": qa["question"], "answerable": not qa["is_impossible"], "refused": answer.refused,
        "text": answer.text, "total": answer.timings.total, "first_token": answer.timings.first_token,
        "gold_in_answer": not answer.refused and any(normalise(g["text"]) in text for g in golds),
        "gold_in_citation": any(s <= gs and ge <= e for gs, ge in spans for s, e in cited),
        "unsupported_shown": unsupported, "first_shown": answer.timings.first_shown,
    }  # fmt: skip


def evaluate_squad(
    settings: Settings, name: str, per_kind: int, where: Path
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One SQuAD article as the only document; `per_kind` answerable + unanswerable questions."""
    from rag.index.build import source_id

    path = squad_text(name, where)
    indexed = _index(settings, [path], where / f"index-{path.stem}")
    records = [score_squad(qa, *ask(qa["question"], indexed), source_id(path))
               for qa in squad_sample(name, per_kind)]  # fmt: skip
    yes = [r for r in records if r["answerable"]]
    no = [r for r in records if not r["answerable"]]

    def share(rows: list[dict[str, Any]], key: str) -> float | None:
        return round(sum(1 for r in rows if r[key]) / len(rows), 3) if rows else None

    firsts = [r["first_token"] for r in records if r["first_token"] is not None]
    return {
        "questions": len(records), "gold_in_answer": share(yes, "gold_in_answer"),
        "gold_in_citation": share(yes, "gold_in_citation"), "refusals_right": share(no, "refused"),
        "false_refusals": share(yes, "refused"),
        "unsupported_shown": sum(r["unsupported_shown"] for r in records),
        "first_token_p50": round(statistics.median(firsts), 2) if firsts else None,
        "first_shown_p50": _p50([r["first_shown"] for r in records if r["first_shown"] is not None]),
    }, records  # fmt: skip


def flips(records: list[dict[str, Any]]) -> float | None:
    """Share of question groups (a question and its rewordings) whose answer/refusal decision differs."""
    groups: dict[str, set[bool]] = {}
    for r in records:
        groups.setdefault(r["of"], set()).add(bool(r["refused"]))
    counted = [g for key, g in groups.items() if sum(1 for r in records if r["of"] == key) > 1]
    return round(sum(len(g) > 1 for g in counted) / len(counted), 3) if counted else None


def article_sets(split: str) -> dict[str, list[dict[str, Any]]]:
    """The article question sets of a split; every row carries `of` (the question it rewords, else itself)."""
    rewordings = load_questions(PARAPHRASES)
    if split == "tuning":
        sets = {"dev": load_questions(DEV_QUESTIONS)}
    else:
        grouped = [
            x for q in load_questions(ARTICLE_QUESTIONS) for x in [q, *(r for r in rewordings if r["of"] == q["id"])]
        ]
        sets = {"article+para": grouped, "devpara": [r for r in rewordings if r["of"].startswith("dev-")]}
    return {name: [{**r, "of": r.get("of", r.get("id", ""))} for r in rows] for name, rows in sets.items()}


def run_split(
    settings: Settings,
    split: str,
    squad_per_kind: int,
    where: Path,
    limit: int | None = None,
    only: Sequence[str] = (),
) -> tuple[dict[str, Any], list[Any]]:
    result: dict[str, Any] = {}
    details: list[Any] = []
    indexed = _index(settings, [settings.corpus_path], where / "index-article")
    for name, all_rows in article_sets(split).items():
        if only and name not in only:
            continue
        rows = all_rows[:limit]
        summary, records = evaluate_article(indexed, rows)
        for row, record in zip(rows, records, strict=True):
            record["of"] = row["of"]
        result[name] = {**summary, "flips": flips(records)}
        details += records
    if squad_per_kind:
        squad = "Normans.json" if split == "tuning" else "Computational_complexity_theory.json"
        result[squad.removesuffix(".json")], records = evaluate_squad(settings, squad, squad_per_kind, where)
        details += records
    return result, details


def run_answer_eval(
    settings: Settings,
    provider: str,
    json_path: Path | None = None,
    *,
    splits: Sequence[str] = ("tuning", "heldout"),
    squad_per_kind: int = 100,
    limit: int | None = None,
    only: Sequence[str] = (),
) -> dict[str, Any]:
    """Answer metrics for `provider` per split (tuning: dev questions + SQuAD Normans; held-out: the shared
    article questions with their rewordings + SQuAD Computational_complexity_theory); details next to json_path."""
    settings = dataclasses.replace(settings, provider=provider)
    result: dict[str, Any] = {"provider": provider}
    details: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="rag-answer-eval-") as tmp:
        for split in splits:
            (Path(tmp) / split).mkdir()
            result[split], details[split] = run_split(settings, split, squad_per_kind, Path(tmp) / split, limit, only)
    print_table(result)
    if json_path is not None:
        write_details(json_path, f"answers-{provider}", {"summary": result, "records": details})
    return result


def write_details(json_path: Path, suffix: str, payload: dict[str, Any]) -> Path:
    """Per-question details next to the eval's JSON: `<stem>-<suffix>.json`."""
    path = Path(json_path).with_name(f"{Path(json_path).stem}-{suffix}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return path


def print_table(result: dict[str, Any]) -> None:
    keys = ["questions", "evidence", "answer_any", "refusals_right", "false_refusals", "flips", "gold_in_answer",
            "gold_in_citation", "citations_ok", "leaks", "first_token_p50"]  # fmt: skip
    print(f"\nanswers ({result['provider']})\n| split/set | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for split in ("tuning", "heldout"):
        for name, row in result.get(split, {}).items():
            print(f"| {split}/{name} | " + " | ".join(str(row.get(k, "")) for k in keys) + " |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.evaluation.answers", description=__doc__)
    parser.add_argument("--provider", default="local", choices=["local", "openai", "extractive"])
    parser.add_argument("--splits", default="tuning,heldout", help="comma-separated: tuning, heldout")
    parser.add_argument("--squad-per-kind", type=int, default=100, help="answerable and unanswerable SQuAD questions")
    parser.add_argument("--limit", type=int, help="at most this many questions per article set")
    parser.add_argument(
        "--sets", default="", help="only these article sets (comma-separated: dev, article+para, devpara)"
    )
    parser.add_argument("--json", type=Path, default=PROJECT_DIR / "eval-results" / "eval.json")
    args = parser.parse_args(argv)
    run_answer_eval(
        Settings.from_env(),
        args.provider,
        args.json,
        splits=args.splits.split(","),
        squad_per_kind=args.squad_per_kind,
        limit=args.limit,
        only=[name for name in args.sets.split(",") if name],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
