"""Open questions ("why", "how", "what are the effects ..."): does the answer give the text's reasons?

`run_open_eval(settings, provider)` (called by `python -m rag eval --answers`) or
`python -m rag.evaluation.open_answers [--provider P] [--split heldout] [--limit N]`.

Questions (tests/data/open_questions.jsonl: id, document, split, question, points, optional answerable): `points`
are the key points a good answer gives, each a list of alternative substrings (case-insensitive), written before
any answer was looked at; rows with `answerable` false ask about what the text does not cover (the right answer
is a refusal) and count only in `refusals_right`. Article questions are asked against the default article alone;
SQuAD ones against both shared SQuAD articles indexed together (as `rag eval --answers` does).

  points       share of a question's key points found in the answer, averaged over questions
  3_of_5       share of questions whose text gives 5 or more points that cover at least 3
  3_of_4       share of questions with 4 listed points (the overview set) that cover at least 3
  citations_ok share of (sentence, cited passage) pairs passing the support check (`answers.citation_checks`)
  failing      sentences of the final answers without a cited passage that supports them
  sentences    sentences per answer (mean); refused: answerable questions refused
  refusals_right share of the unanswerable open questions refused
  first_token  p50 s to the model's first token; first_words: p50 s to the first checked text that streamed
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.answer.checks import SupportChecker
from rag.answer.citations import marker_numbers, split_complete, strip_markers
from rag.answer.terms import main_names
from rag.config import PROJECT_DIR, Settings
from rag.evaluation.answers import SHARED, _index, citation_checks, load_questions, write_details
from rag.types import Answer

OPEN_QUESTIONS = PROJECT_DIR / "tests" / "data" / "open_questions.jsonl"
OVERVIEW_QUESTIONS = PROJECT_DIR / "tests" / "data" / "overview_questions.jsonl"  # same fields + only_document
SPLITS = ("tuning", "heldout")
SQUAD_FILES = ("Normans.json", "Computational_complexity_theory.json")


def points_covered(points: Sequence[Sequence[str]], text: str) -> int:
    low = strip_markers(text).lower()
    return sum(1 for alternatives in points if any(a.lower() in low for a in alternatives))


def failing_sentences(answer: Answer, source_text: str) -> int:
    """Sentences of the final text with no cited passage that supports them. A quoted span of two sentences
    carries one marker at its end, so unmarked sentences are checked together with the next marked one."""
    if answer.refused:
        return 0
    sentences, rest = split_complete(answer.text + "\n")
    checker = SupportChecker(main_names(source_text))
    by_number = {c.number: c.text for c in answer.citations}
    failing = 0
    pending: list[str] = []
    for sentence in [s for s in [*sentences, rest] if strip_markers(s).strip(" .")]:
        pending.append(sentence)
        if not marker_numbers(sentence):
            continue
        claim = strip_markers(" ".join(pending))
        cited = [by_number[n] for n in dict.fromkeys(marker_numbers(sentence)) if n in by_number]
        ok = any(checker.check(claim, t).supported for t in cited) or (
            len(cited) > 1 and checker.check(claim, "\n".join(cited)).supported)
        failing += 0 if ok else len(pending)
        pending = []
    return failing + len(pending)


def score_open(row: dict[str, Any], answer: Answer, source_text: str, first_words: float | None) -> dict[str, Any]:
    checks = citation_checks(answer, source_text)
    sentences, rest = split_complete(answer.text + "\n")
    covered = 0 if answer.refused else points_covered(row["points"], answer.text)
    return {
        "id": row["id"],
        "split": row["split"],
        "answerable": row.get("answerable", True),
        "question": row["question"],
        "text": answer.text,
        "provider": answer.provider,
        "refused": answer.refused,
        "points": len(row["points"]),
        "covered": covered,
        "checks": checks,
        "failing": failing_sentences(answer, source_text),
        "sentences": 0 if answer.refused else len([s for s in [*sentences, rest] if strip_markers(s).strip(" .")]),
        "cited_passages": len(answer.citations),
        "first_token": answer.timings.first_token,
        "first_words": first_words,
        "total": answer.timings.total,
    }


def aggregate_open(all_records: list[dict[str, Any]]) -> dict[str, Any]:
    unanswerable = [r for r in all_records if not r.get("answerable", True)]
    records = [r for r in all_records if r.get("answerable", True)]
    right = round(sum(r["refused"] for r in unanswerable) / len(unanswerable), 3) if unanswerable else None
    if not records:
        return {"questions": 0, "unanswerable": len(unanswerable), "refusals_right": right}
    checks = [ok for r in records for ok in r["checks"]]
    rich = [r for r in records if r["points"] >= 5]
    four = [r for r in records if r["points"] == 4]  # overview questions: 4 main points listed per document

    def p50(key: str) -> float | None:
        values = [r[key] for r in records if r[key] is not None]
        return round(statistics.median(values), 2) if values else None

    return {
        "questions": len(records),
        "points": round(statistics.mean(r["covered"] / r["points"] for r in records), 3),
        "3_of_5": round(sum(r["covered"] >= 3 for r in rich) / len(rich), 3) if rich else None,
        "3_of_4": round(sum(r["covered"] >= 3 for r in four) / len(four), 3) if four else None,
        "citations_ok": round(sum(checks) / len(checks), 3) if checks else None,
        "failing": sum(r["failing"] for r in records),
        "sentences": round(statistics.mean(r["sentences"] for r in records), 2),
        "refused": sum(r["refused"] for r in records),
        "unanswerable": len(unanswerable),
        "refusals_right": right,
        "fallbacks": sum(1 for r in records if r["provider"] == "extractive" and not r["refused"]),
        "first_token_p50": p50("first_token"),
        "first_words_p50": p50("first_words"),
        "total_p50": p50("total"),
    }


def _ask(question: str, settings: Settings, documents: list[str] | None = None) -> tuple[Answer, float | None]:
    from rag.api import query_stream

    started = time.perf_counter()
    stream = query_stream(question, settings=settings, documents=documents)
    first: float | None = None
    for delta in stream:
        if first is None and delta.strip():
            first = time.perf_counter() - started
    return stream.answer, first


_primed: set[tuple[str, ...]] = set()


def document_ids(settings: Settings, name: str) -> list[str]:
    """Ids of the library's documents read from a file named `name`; all of them when none is (the default
    article is the only document of its index)."""
    from rag.api import list_documents

    docs = list_documents(settings)
    return [d.id for d in docs if Path(d.source).stem == name] or [d.id for d in docs]


def _only(row: dict[str, Any], settings: Settings) -> list[str] | None:
    """Overview rows ("only_document") ask about their own document alone; its whole-text prompt is read first
    (as the app does when a session starts), so first_words measures a warm overview; the cold read is printed."""
    if not row.get("only_document"):
        return None
    from rag.api import prime_overview

    ids = document_ids(settings, row["document"])
    key = (str(settings.index_dir), *ids)
    if key not in _primed:
        started = time.perf_counter()
        primed = prime_overview(ids, settings=settings)
        print(f"primed {row['document']}: {primed} in {time.perf_counter() - started:.1f} s", flush=True)
        _primed.add(key)
    return ids


def _squad_sources(where: Path) -> list[Path]:
    paths = []
    for name in SQUAD_FILES:
        data = json.loads((SHARED / "eval" / "squad2" / name).read_text(encoding="utf-8"))["data"][0]
        path = where / name.replace(".json", ".txt")
        path.write_text("\n\n".join(p["context"] for p in data["paragraphs"]), encoding="utf-8")
        paths.append(path)
    return paths


def evaluate_open(
    settings: Settings, rows: list[dict[str, Any]], where: Path, *, verbose: bool = False
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Per-split summaries and per-question records for `rows` (indexes built under `where`)."""
    article_rows = [r for r in rows if r["document"] == "article"]
    squad_rows = [r for r in rows if r["document"] != "article"]
    jobs: list[tuple[Settings, list[dict[str, Any]], dict[str, str]]] = []
    if article_rows:
        indexed = _index(settings, [settings.corpus_path], where / "article-index")
        jobs.append((indexed, article_rows, {"article": settings.corpus_path.read_text(encoding="utf-8")}))
    if squad_rows:
        paths = _squad_sources(where)
        indexed = _index(settings, paths, where / "squad-index")
        jobs.append((indexed, squad_rows, {p.stem: p.read_text(encoding="utf-8") for p in paths}))
    records = []
    for indexed, subset, texts in jobs:
        for row in subset:
            documents = _only(row, indexed)
            answer, first = _ask(row["question"], indexed, documents)
            source = texts.get(row["document"], next(iter(texts.values())))
            record = score_open(row, answer, source, first)
            records.append(record)
            if verbose:
                print(f"{row['id']} {record['covered']}/{record['points']} fail={record['failing']} "
                      f"first={first} | {answer.text[:300]}", flush=True)
    summary = {split: aggregate_open([r for r in records if r["split"] == split]) for split in SPLITS}
    return summary, records


def run_open_eval(
    settings: Settings,
    provider: str,
    json_path: Path | None = None,
    *,
    questions_path: Path = OPEN_QUESTIONS,
    split: str | None = None,
    limit: int = 0,
    verbose: bool = False,
    name: str = "open",
    answerable: bool | None = None,
) -> dict[str, Any]:
    settings = dataclasses.replace(settings, provider=provider)
    rows = [r for r in load_questions(questions_path) if (split is None or r["split"] == split)
            and (answerable is None or r.get("answerable", True) == answerable)]  # fmt: skip
    rows = rows[:limit] if limit else rows
    with tempfile.TemporaryDirectory(prefix="rag-open-eval-") as tmp:
        summary, records = evaluate_open(settings, rows, Path(tmp), verbose=verbose)
    result = {"provider": provider, "questions_file": str(questions_path), "name": name, "open": summary}
    print_open_table(result)
    if json_path is not None:
        write_details(json_path, f"{name}-{provider}", {"summary": result, "records": records})
    return result


def print_open_table(result: dict[str, Any]) -> None:
    keys = ["questions", "points", "3_of_5", "3_of_4", "citations_ok", "failing", "sentences", "refused", "fallbacks",
            "unanswerable", "refusals_right", "first_token_p50", "first_words_p50", "total_p50"]
    print(f"\n{result.get('name', 'open')} questions ({result['provider']})")
    print("| split | " + " | ".join(keys) + " |")
    print("|" + "---|" * (len(keys) + 1))
    for split, row in result["open"].items():
        if row.get("questions") or row.get("unanswerable"):
            print(f"| {split} | " + " | ".join(str(row.get(k)) for k in keys) + " |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.evaluation.open_answers", description=__doc__)
    parser.add_argument("--provider", default="local", choices=["local", "openai", "extractive"])
    parser.add_argument("--questions", type=Path, default=OPEN_QUESTIONS)
    parser.add_argument("--split", choices=SPLITS)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--answerable", choices=["yes", "no"], help="only the answerable (or unanswerable) rows")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--json", type=Path, default=PROJECT_DIR / "eval-results" / "eval.json")
    args = parser.parse_args(argv)
    run_open_eval(Settings.from_env(), args.provider, args.json, questions_path=args.questions, split=args.split,
                  limit=args.limit, verbose=args.verbose,
                  answerable=None if args.answerable is None else args.answerable == "yes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
