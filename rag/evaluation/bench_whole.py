"""A short document read whole vs the retrieval path, and a prefix read fresh vs restored, in one run.

`python -m rag.evaluation.bench_whole [--questions N] [--json PATH]` (also `python -m rag bench --only whole`):
the default article and two held-out web pages added by URL (served on 127.0.0.1), one library, every
document selected. First each document's whole-document prefix: read fresh (`prime_documents` after its
saved state is removed), then restored after the server restarts. Then the same questions (the first N
answerable held-out questions of each) through both paths on the same warm server, alternating, each
question asked once per path (a repeat would be served by caches): first checked words, whole answer, the
answerability judgement's and the support judgements' seconds, and the whole path again with each sentence's
support judged by the model ("judged") and without the answerability judgement ("ungated": what the judgement
adds, paired per question), and both paths with one threshold on P(yes) rather than the combined decision
("single", "retrieval_single": what the content-free judgement adds, paired per question). Ratios are whole / retrieval and judged / whole.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.evaluation.answers import ARTICLE_QUESTIONS, load_questions
from rag.evaluation.procs import Figures, report

PAGES = ("phys.org.tool", "caktusgroup.com.django")  # held-out pages of tests/data/web_questions.jsonl


def _library(settings: Settings, where: Path) -> tuple[Settings, list[tuple[str, str]]]:
    """The article and PAGES in one fresh library; (settings, [(question, document id)])."""
    from rag.evaluation import web_pages
    from rag.index.build import build_index

    library = dataclasses.replace(settings, provider="local", index_dir=where, chroma_host=None)
    build_index(settings=library)
    with web_pages.serve(web_pages.PAGES) as base:
        ids = web_pages.add_pages(library, base, PAGES)
    rows = load_questions(web_pages.WEB_QUESTIONS)
    asked = [(r["question"], ids[r["page"]]) for r in rows if r["page"] in ids and r["answerable"]]
    article = [r["question"] for r in load_questions(ARTICLE_QUESTIONS) if r["answerable"] and not r.get("history")]
    from rag.api import open_index

    article_id = next(d for d in open_index(library).scope() if d not in ids.values())
    return library, asked + [(q, article_id) for q in article]


def _prefixes(settings: Settings, doc_ids: list[str]) -> Figures:
    """Seconds to hold each document's prefix: read fresh, then restored in a restarted server."""
    from rag.answer.plan import messages
    from rag.answer.policy import WHOLE_FACTUAL
    from rag.api import load_chat_model, open_index, prime_documents
    from rag.models.prefix import prefix_file
    from rag.models.server import local_server

    server, model = local_server(settings), load_chat_model(settings)
    if server.slot_dir is None or model is None:
        raise RuntimeError("the local model did not load: no prefix to measure")
    retriever = open_index(settings)
    for doc_id in doc_ids:  # these documents' saved prefixes only: a user's others stay
        prefix = messages("", retriever.document_passages(doc_id)[0], WHOLE_FACTUAL)
        (server.slot_dir / prefix_file(prefix, server.model_path, server.context)).unlink(missing_ok=True)
    fresh = [_seconds(lambda d=d: prime_documents([d], settings=settings, model=model)) for d in doc_ids]
    server.stop()
    server.restart(server.last_address)
    restored = [_seconds(lambda d=d: prime_documents([d], settings=settings, model=model)) for d in doc_ids]
    return {"whole_prefix_read_s_p50": _p50(fresh), "whole_prefix_restored_s_p50": _p50(restored),
            "whole_prefix_restored_ratio": _ratio(_p50(restored), _p50(fresh))}  # fmt: skip


def _seconds(work: Any) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def _answers(settings: Settings, asked: list[tuple[str, str]]) -> Figures:
    from rag.answer.decide import threshold
    from rag.api import query

    retrieval = dataclasses.replace(settings, whole_documents=False)
    paths = {"whole": settings, "retrieval": retrieval,
             "judged": dataclasses.replace(settings, support="judge"),  # whole, each sentence's support judged
             "ungated": dataclasses.replace(settings, answerability="words"),  # whole, no answerability judgement
             # One threshold on P(yes) instead of the combined decision (which also asks a content-free question).
             "single": dataclasses.replace(settings, judge_threshold=threshold("judge_whole")),
             "retrieval_single": dataclasses.replace(retrieval, judge_threshold=threshold("judge"))}  # fmt: skip
    timings: dict[str, list[Any]] = {name: [] for name in paths}
    paired: list[float] = []  # per question answered by both: first words judged minus ungated
    combined: dict[str, list[float]] = {"whole": [], "retrieval": []}  # first words: combined minus single
    for question, _doc in asked:
        shown: dict[str, float | None] = {}
        for name, chosen in paths.items():
            answer = query(question, settings=chosen)
            if not answer.refused:
                timings[name].append(answer.timings)
                shown[name] = answer.timings.first_shown
        judged, ungated = shown.get("whole"), shown.get("ungated")
        if judged is not None and ungated is not None:
            paired.append(judged - ungated)
        for name, single in (("whole", "single"), ("retrieval", "retrieval_single")):
            with_it, without = shown.get(name), shown.get(single)
            if with_it is not None and without is not None:
                combined[name].append(with_it - without)
    p50: dict[str, float | None] = {}
    out: Figures = {}
    for name, rows in timings.items():
        p50[f"{name}_first_words_s_p50"] = _p50([t.first_shown for t in rows if t.first_shown is not None])
        p50[f"{name}_total_s_p50"] = _p50([t.total for t in rows])
        p50[f"{name}_decide_s_p50"] = _p50([t.decide for t in rows])
        p50[f"{name}_support_s_p50"] = _p50([t.support for t in rows])
        out[f"{name}_answered"] = len(rows)
    for key in ("first_words", "total"):
        out[f"whole_vs_retrieval_{key}_ratio"] = _ratio(p50[f"whole_{key}_s_p50"], p50[f"retrieval_{key}_s_p50"])
        out[f"judged_vs_whole_{key}_ratio"] = _ratio(p50[f"judged_{key}_s_p50"], p50[f"whole_{key}_s_p50"])
    out["whole_judgement_adds_first_words_s_p50"] = _p50(paired)
    for name, diffs in combined.items():
        out[f"{name}_combined_decision_adds_first_words_s_p50"] = _p50(diffs)
    return {**out, **p50}


def _p50(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def figures(settings: Settings, per_document: int = 6) -> Figures:
    with tempfile.TemporaryDirectory(prefix="rag-bench-whole-") as tmp:
        library, asked = _library(settings, Path(tmp) / "index")
        docs = list(dict.fromkeys(d for _, d in asked))
        picked = [x for d in docs for x in [a for a in asked if a[1] == d][:per_document]]
        return {**_prefixes(library, docs), **_answers(library, picked), "whole_questions": len(picked)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.evaluation.bench_whole", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--questions", type=int, default=6, help="answerable questions per document")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = figures(Settings.from_env(), args.questions)
    return report(result, result, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
