"""Markdown tables of the evaluation's figures, read from the JSON files the evals write.

    python tools/eval_tables.py RESULTS_DIR                              # print the tables
    python tools/eval_tables.py --write docs/evaluation.md RESULTS_DIR   # rewrite the figures block in place

Every *.json file in RESULTS_DIR is read and recognised by its content:
  <stem>-answers-<provider>.json   `python -m rag.evaluation.answers` / `rag eval --answers` (answers.write_details):
                                   {"summary": {"provider", "tuning": {set: metrics}, "heldout": {...}}, "records"}
  <stem>-<name>-<provider>.json    `python -m rag.evaluation.open_answers` (name: open or overview):
                                   {"summary": {"provider", "name", "questions_file", "open": {split: metrics}}, ...}
  <stem>-web-<provider>.json       `python -m rag.evaluation.web_pages`: {"summary": {"provider", "web": {split: metrics}}}
  <stem>.json                      `python -m rag eval`: {"k", "retrieval": {"setup/dataset": metrics}, ...}
Other JSON files are skipped with a note on stderr. One table per split (tuning, held-out) per provider and
kind of question; the retrieval eval, which does not separate the splits, gets its own table. Nothing is computed
here beyond formatting: every figure is the eval's own.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BEGIN = "<!-- figures:begin -->"
END = "<!-- figures:end -->"
SPLITS = {"tuning": "tuning", "heldout": "held-out"}
SET_LABELS = {
    "dev": "dev questions (tests/data/dev_questions.jsonl)",
    "article+para": "shared article questions + their rewordings",
    "devpara": "rewordings of the dev questions (reported apart; not held-out, see the splits)",
    "Normans": "SQuAD Normans",
    "Computational_complexity_theory": "SQuAD Computational_complexity_theory",
}
ANSWER_COLUMNS = {
    "questions": "questions",
    "evidence": "evidence",
    "answer_any": "answer words",
    "refusals_right": "refusals right",
    "false_refusals": "false refusals",
    "flips": "flips",
    "gold_in_answer": "gold in answer",
    "gold_in_citation": "gold span cited",
    "citations_ok": "citations ok",
    "leaks": "leaks",
    "fallbacks": "fallbacks",
    "first_token_p50": "first token p50",
    "total_p50": "total p50",
}
OPEN_COLUMNS = {
    "questions": "answerable",
    "points": "points",
    "3_of_5": "3 of 5",
    "3_of_4": "3 of 4",
    "citations_ok": "citations ok",
    "failing": "failing",
    "sentences": "sentences",
    "refused": "refused",
    "fallbacks": "fallbacks",
    "unanswerable": "unanswerable",
    "refusals_right": "refusals right",
    "first_token_p50": "first token p50",
    "first_words_p50": "first checked words p50",
    "total_p50": "total p50",
}
WEB_COLUMNS = {
    "questions": "questions",
    "evidence": "evidence",
    "answer_any": "answer words",
    "refusals_right": "refusals right",
    "refusals_right_not_covered": "not covered refused",
    "refusals_right_false_premise": "false premise refused",
    "corrected_false_premise": "false premise corrected",
    "refused_or_corrected_false_premise": "false premise refused or corrected",
    "false_refusals": "false refusals",
    "citations_ok": "citations ok",
    "wrong_page": "wrong page",
    "leaks": "leaks",
    "first_token_p50": "first token p50",
    "total_p50": "total p50",
}
RETRIEVAL_DATASETS = {
    "article": "shared article questions (held-out in the answer eval)",
    "squad": "SQuAD Normans + Computational_complexity_theory (tuning and held-out together)",
}


@dataclass
class Results:
    """The summaries found in a results directory, keyed by provider; `files` names where each came from."""

    answers: dict[str, dict[str, Any]] = field(default_factory=dict)  # provider -> {split: {set: metrics}}
    opens: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # provider -> question set -> summary
    web: dict[str, dict[str, Any]] = field(default_factory=dict)  # provider -> {split: metrics}
    retrieval: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (k, {setup/dataset: metrics})
    files: dict[tuple[str, ...], str] = field(default_factory=dict)


def kind_of(payload: Any) -> str | None:
    """The eval that wrote `payload`: answers, open or retrieval; None for anything else."""
    if not isinstance(payload, dict):
        return None
    summary = payload.get("summary")
    if isinstance(summary, dict) and "provider" in summary:
        if isinstance(summary.get("open"), dict):
            return "open"
        if isinstance(summary.get("web"), dict):
            return "web"
        if any(isinstance(summary.get(s), dict) for s in SPLITS):
            return "answers"
    if isinstance(payload.get("retrieval"), dict):
        return "retrieval"
    return None


def load_results(directory: Path) -> Results:
    results = Results()
    for path in sorted(directory.glob("*.json")):
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            print(f"skipped {path.name}: {exc}", file=sys.stderr)
            continue
        kind = kind_of(payload)
        if kind is None:
            print(f"skipped {path.name}: not an eval result", file=sys.stderr)
        elif kind == "retrieval":
            results.retrieval.append((int(payload.get("k", 5)), payload["retrieval"]))
            results.files[("retrieval", str(len(results.retrieval) - 1))] = path.name
        else:
            _add_summary(results, kind, payload["summary"], path.name)
    return results


def _add_summary(results: Results, kind: str, summary: dict[str, Any], name: str) -> None:
    provider = str(summary["provider"])
    if kind == "answers":
        results.answers[provider] = {s: summary[s] for s in SPLITS if isinstance(summary.get(s), dict)}
        results.files[("answers", provider)] = name
    elif kind == "web":
        results.web[provider] = summary["web"]
        results.files[("web", provider)] = name
    else:  # keyed by its question set too: `open_answers --questions F` without a name of its own is "open"
        key = open_label(summary)
        results.opens.setdefault(provider, {})[key] = summary
        results.files[("open", provider, key)] = name


def open_label(summary: dict[str, Any]) -> str:
    """The question set an open-eval summary is about: its questions file ("open questions (open_questions.jsonl)")."""
    questions_file = Path(str(summary.get("questions_file") or ""))
    if questions_file.name:
        return f"{questions_file.stem.replace('_', ' ')} ({questions_file.name})"
    return f"{summary.get('name', 'open')} questions"


def cell(key: str, value: Any) -> str:
    """One figure as the eval wrote it: shares and counts as they are, seconds with "s", absent as "–"."""
    if value is None or value == "":
        return "–"
    if isinstance(value, float):
        if key.endswith("_ms"):
            return f"{value:.1f}"
        if key.startswith("chars@"):
            return f"{round(value):,}"
        if key.endswith("_p50"):
            return f"{round(value, 2)} s"
        return str(round(value, 3))
    return str(value)


def table(first: str, columns: dict[str, str], rows: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """A Markdown table; a column with no figure in any row is left out."""
    kept = [k for k in columns if any(row.get(k) is not None for _, row in rows)]
    lines = ["| " + " | ".join([first, *(columns[k] for k in kept)]) + " |", "|" + " --- |" * (len(kept) + 1)]
    lines += ["| " + " | ".join([label, *(cell(k, row.get(k)) for k in kept)]) + " |" for label, row in rows]
    return lines


def answer_table(results: Results, provider: str, split: str) -> list[str]:
    sets = results.answers[provider].get(split) or {}
    if not sets:
        return []
    rows = [(SET_LABELS.get(name, name), row) for name, row in sets.items()]
    source = results.files[("answers", provider)]
    caption = f"**Factual questions: {SPLITS[split]} split, provider {provider}** (`{source}`)"
    return [caption, "", *table(f"{SPLITS[split]} set", ANSWER_COLUMNS, rows), ""]


def open_table(results: Results, provider: str, split: str) -> list[str]:
    rows, sources = [], []
    for label, summary in sorted(results.opens.get(provider, {}).items()):
        row = summary["open"].get(split) or {}
        if row.get("questions") or row.get("unanswerable"):
            rows.append((label, row))
            sources.append(results.files[("open", provider, label)])
    if not rows:
        return []
    files = ", ".join(f"`{s}`" for s in sources)
    caption = f"**Open and overview questions: {SPLITS[split]} split, provider {provider}** ({files})"
    return [caption, "", *table(f"{SPLITS[split]} set", OPEN_COLUMNS, rows), ""]


def web_table(results: Results, provider: str, split: str) -> list[str]:
    row = results.web.get(provider, {}).get(split)
    if not row:
        return []
    caption = f"**Web pages added by URL: {SPLITS[split]} split, provider {provider}** (`{results.files[('web', provider)]}`)"
    return [caption, "", *table(f"{SPLITS[split]} pages", WEB_COLUMNS, [("all pages selected", row)]), ""]


def retrieval_table(k: int, figures: dict[str, Any], source: str) -> list[str]:
    columns = {"questions": "questions", "hit@1": "hit@1", "hit@2": "hit@2", f"hit@{k}": f"hit@{k}",
               f"mrr@{k}": f"MRR@{k}", f"chars@{k}": f"chars@{k}", "p50_ms": "search p50 ms"}  # fmt: skip
    rows = []
    for name, row in figures.items():
        setup, _, dataset = name.partition("/")
        base = dataset.removesuffix("-in-library")
        label = RETRIEVAL_DATASETS.get(base, base) + (", every shared document in one index" if base != dataset else "")
        rows.append((f"{setup}: {label}", row))
    caption = f"**Retrieval, k={k}: splits not separated** (`{source}`)"
    return [caption, "", *table("setup: questions", columns, rows), ""]


def render(results: Results) -> str:
    """Every table, split by split: tuning first, then held-out, then retrieval."""
    lines: list[str] = []
    providers = sorted(set(results.answers) | set(results.opens) | set(results.web))
    for split, title in SPLITS.items():
        body = [line for p in providers
                for line in [*_answer_lines(results, p, split), *open_table(results, p, split), *web_table(results, p, split)]]  # fmt: skip
        if body:
            lines += [f"### {title.capitalize()} split", "", *body]
    if results.retrieval:
        lines += ["### Retrieval", ""]
        for i, (k, figures) in enumerate(results.retrieval):
            lines += retrieval_table(k, figures, results.files[("retrieval", str(i))])
    return "\n".join(lines).rstrip() + "\n"


def _answer_lines(results: Results, provider: str, split: str) -> list[str]:
    return answer_table(results, provider, split) if provider in results.answers else []


def replace_block(text: str, block: str) -> str:
    """`text` with everything between the figures markers replaced by `block`."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the file needs {BEGIN} ... {END} (in that order)")
    return text[: start + len(BEGIN)] + "\n" + block + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/eval_tables.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="a directory of eval JSON files")
    parser.add_argument("--write", type=Path, metavar="MARKDOWN", help=f"rewrite the block {BEGIN} ... {END}")
    args = parser.parse_args(argv)
    if not args.results.is_dir():
        parser.error(f"{args.results} is not a directory")
    block = render(load_results(args.results))
    if args.write is None:
        print(block, end="")
        return 0
    try:
        updated = replace_block(args.write.read_text(encoding="utf-8"), block)
    except (OSError, ValueError) as exc:
        print(f"error: {args.write}: {exc}", file=sys.stderr)
        return 1
    args.write.write_text(updated, encoding="utf-8")
    print(f"figures written to {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
