"""Answers about real web pages added by URL, as a user adds them:
`python -m rag.evaluation.web_pages [--provider P] [--splits tuning,heldout] [--limit N] [--json PATH]`
(also run by `python -m rag eval --answers`).

The twelve saved pages of shared/corpus/web are served on 127.0.0.1 by a real HTTP server and added one by one to
a fresh library by URL, so extraction, chunking and indexing are the product's own; every question is asked with
every page selected (the chat's default). Questions: tests/data/web_questions.jsonl, written from the pages'
main text before any answer was run. Splits by page (`split`): tuning = six pages anything may be fitted on,
held-out = the other six, only reported. Kinds: answerable (in a reader's own words), not_covered (the page is
silent), false_premise (an answerable question with a word swapped for its opposite, another entity, a negation,
a changed number: SQuAD 2.0's construction).

Per split, as in rag.evaluation.answers (evidence, answer_any, refusals right, false refusals, citations ok),
and: refusals right per unanswerable kind, and `wrong_page` (answered questions citing a page other than the one
asked about).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import http.server
import json
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rag.answer.citations import strip_markers
from rag.config import PROJECT_DIR, Settings
from rag.evaluation.answers import (
    SHARED,
    aggregate,
    ask,
    evidence_in,
    has_answer_words,
    load_questions,
    score_one,
    secrets_of,
    write_details,
)
from rag.types import Answer

PAGES = SHARED / "corpus" / "web"
WEB_QUESTIONS = PROJECT_DIR / "tests" / "data" / "web_questions.jsonl"
SPLITS = ("tuning", "heldout")
KINDS = ("answerable", "not_covered", "false_premise")


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """A real HTTP server for `folder` on 127.0.0.1 (a free port); yields its base URL."""
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        return None


def add_pages(settings: Settings, base_url: str, pages: Sequence[str]) -> dict[str, str]:
    """Each page added by URL to the library of `settings`: {page name: document id}."""
    from rag.api import add_document

    return {page: add_document(f"{base_url}/{page}.html", settings=settings).id for page in pages}


def evaluate(settings: Settings, rows: list[dict[str, Any]], where: Path) -> list[dict[str, Any]]:
    """One record per question (answers.score_one's fields, with `split`, `kind`, `page` and `wrong_page`)."""
    from rag.api import open_index

    library = dataclasses.replace(settings, index_dir=where, chroma_host=None)
    with serve(PAGES) as base_url:
        ids = add_pages(library, base_url, sorted({r["page"] for r in rows}))
    retriever = open_index(library)
    texts = {page: retriever.document_text(doc) for page, doc in ids.items()}
    secrets = secrets_of(library)
    twins = {r["id"]: r for r in load_questions(WEB_QUESTIONS)}
    records = []
    for row in rows:
        answer, unsupported = ask(row["question"], library)
        record = score_one(row, answer, texts[row["page"]], secrets, unsupported)
        record.update(split=row["split"], kind=row["kind"], page=row["page"],
                      wrong_page=_cites_another(answer, ids[row["page"]]))  # fmt: skip
        if row["kind"] == "false_premise":
            record["corrected"] = corrects(answer, row["question"], twins[row["twin_of"]])
        records.append(record)
    return records


def corrects(answer: Answer, question: str, twin: dict[str, Any]) -> bool:
    """A false premise answered with what the page says instead: the answer holds the answerable twin's answer
    words and cites its evidence. Only where some group of the twin's answer words is absent from the question
    itself (else restating the question would pass: "Which film won before Parasite?" and answer "parasite")."""
    return not answer.refused and corrects_text(strip_markers(answer.text), [c.text for c in answer.citations],
                                                question, twin)  # fmt: skip


def corrects_text(text: str, cited: Sequence[str], question: str, twin: dict[str, Any]) -> bool:
    """`corrects` over an answer's text (markers stripped) and its cited passages' texts (a recorded answer)."""
    groups = twin.get("answer_any", [])
    low = question.lower()
    if not any(all(alt.lower() not in low for alt in group) for group in groups):
        return False
    return has_answer_words(groups, text) and evidence_in(cited, twin.get("evidence", []))


def _cites_another(answer: Answer, doc_id: str) -> bool:
    return not answer.refused and any(c.document not in (None, doc_id) for c in answer.citations)


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for split in SPLITS:
        rows = [r for r in records if r["split"] == split]
        if not rows:
            continue
        summary = aggregate(rows)
        for kind in KINDS[1:]:
            picked = [r for r in rows if r["kind"] == kind]
            summary[f"refusals_right_{kind}"] = round(sum(r["refused"] for r in picked) / len(picked), 3) if picked else None
        premises = [r for r in rows if r["kind"] == "false_premise" and "corrected" in r]
        if premises:  # the aim for a false premise: refused, or what the page says instead
            summary["corrected_false_premise"] = round(sum(r["corrected"] for r in premises) / len(premises), 3)
            summary["refused_or_corrected_false_premise"] = round(
                sum(r["refused"] or r["corrected"] for r in premises) / len(premises), 3)
        answered = [r for r in rows if not r["refused"]]
        summary["wrong_page"] = sum(r["wrong_page"] for r in answered)
        out[split] = summary
    return out


def run_web_eval(settings: Settings, provider: str, json_path: Path | None = None, *,
                 splits: Sequence[str] = SPLITS, limit: int = 0, pages: Sequence[str] = ()) -> dict[str, Any]:  # fmt: skip
    """Web-page answer metrics for `provider` per split; details next to json_path (`<stem>-web-<provider>.json`)."""
    settings = dataclasses.replace(settings, provider=provider)
    rows = [r for r in load_questions(WEB_QUESTIONS) if r["split"] in splits and (not pages or r["page"] in pages)]
    if limit:  # the first `limit` questions of each page
        rows = [r for page in dict.fromkeys(r["page"] for r in rows) for r in [x for x in rows if x["page"] == page][:limit]]
    with tempfile.TemporaryDirectory(prefix="rag-web-eval-") as tmp:
        records = evaluate(settings, rows, Path(tmp) / "index")
    result = {"provider": provider, "web": summarise(records)}
    print_table(result)
    if json_path is not None:
        write_details(json_path, f"web-{provider}", {"summary": result, "records": records})
    return result


def print_table(result: dict[str, Any]) -> None:
    keys = ["questions", "evidence", "answer_any", "refusals_right", "refusals_right_not_covered",
            "refusals_right_false_premise", "corrected_false_premise", "refused_or_corrected_false_premise",
            "false_refusals", "citations_ok", "wrong_page", "leaks", "unsupported_shown",
            "first_token_p50", "first_shown_p50", "total_p50"]  # fmt: skip
    print(f"\nweb pages added by URL ({result['provider']})\n| split | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for split, row in result["web"].items():
        print(f"| {split} | " + " | ".join(str(row.get(k, "")) for k in keys) + " |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.evaluation.web_pages", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--provider", default="local", choices=["local", "openai", "extractive"])
    parser.add_argument("--splits", default=",".join(SPLITS))
    parser.add_argument("--limit", type=int, default=0, help="at most this many questions per page")
    parser.add_argument("--json", type=Path, default=PROJECT_DIR / "eval-results" / "eval.json")
    args = parser.parse_args(argv)
    result = run_web_eval(Settings.from_env(), args.provider, args.json, splits=args.splits.split(","),
                          limit=args.limit)  # fmt: skip
    print(json.dumps(result["web"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
