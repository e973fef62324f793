"""`python -m rag eval`: retrieval metrics (and, with --answers, answer metrics) in one table and one JSON file.

Retrieval, each in a fresh temporary index so the user's index is never touched:
  * article: evidence hit@k on the answerable questions of shared/eval/article_questions.jsonl
    (a follow-up question is searched together with its history, as a plain rewrite would);
  * SQuAD: both articles in one index (one document per article, paragraphs joined by blank lines);
    answer-span hit@1/@k (the gold span lies inside a retrieved passage), MRR@k, mean chars retrieved.
The baseline row is LlamaIndex out of the box (eval_baseline.py) on the same data in the same run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.config import PROJECT_DIR, Settings
from rag.errors import ConfigError
from rag.types import Passage

SQUAD_FILES = ("Normans.json", "Computational_complexity_theory.json")
DEFAULT_JSON = PROJECT_DIR / "eval-results" / "eval.json"
DEFAULT_SHARED = PROJECT_DIR.parent / "shared"


@dataclass(frozen=True)
class Question:
    text: str
    # Evidence strings (article) or gold spans (source, start, end) (SQuAD): a hit contains one of them.
    evidence: tuple[str, ...] = ()
    spans: tuple[tuple[str, int, int], ...] = ()


Search = Callable[[str, int], Sequence[Passage]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `python -m rag eval`."""
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"write results here (default {DEFAULT_JSON})")
    parser.add_argument("-k", type=int, default=5, help="passages retrieved per question (default 5)")
    parser.add_argument("--skip-baseline", action="store_true", help="skip the LlamaIndex out-of-the-box baseline")
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the shared data directory")
    parser.add_argument("--answers", action="store_true", help="also run the answer evaluations (article questions, open questions)")
    parser.add_argument("--provider", default="local", choices=["local", "openai", "extractive"])
    parser.add_argument("--squad-per-kind", type=int, default=100, help="--answers: SQuAD questions of each kind")


def load_article(shared: Path) -> tuple[Path, list[Question]]:
    path = shared / "eval" / "article_questions.jsonl"
    questions = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line) if line.strip() else None
        if row and row.get("answerable"):
            text = " ".join([*row.get("history", []), row["question"]])
            questions.append(Question(text=text, evidence=tuple(row["evidence"])))
    return shared / "corpus" / "turkey-russia-article.txt", questions


def load_squad(shared: Path, out_dir: Path) -> tuple[list[Path], list[Question]]:
    """Write one text file per article (paragraphs joined by blank lines) and map gold spans into it."""
    from rag.index.build import source_id

    paths, questions = [], []
    for name in SQUAD_FILES:
        data = json.loads((shared / "eval" / "squad2" / name).read_text(encoding="utf-8"))
        path = out_dir / name.replace(".json", ".txt")
        offset, parts = 0, []
        for para in data["data"][0]["paragraphs"]:
            for qa in para["qas"]:
                if qa["is_impossible"] or not qa["answers"]:
                    continue
                spans = {
                    (offset + a["answer_start"], offset + a["answer_start"] + len(a["text"])) for a in qa["answers"]
                }
                questions.append(Question(text=qa["question"], spans=tuple((str(path), s, e) for s, e in spans)))
            parts.append(para["context"])
            offset += len(para["context"]) + 2
        path.write_text("\n\n".join(parts), encoding="utf-8")
        paths.append(path)
    sid = {str(p): source_id(p) for p in paths}
    questions = [dataclasses.replace(q, spans=tuple((sid[s], a, b) for s, a, b in q.spans)) for q in questions]
    return paths, questions


def _relevant(q: Question, hit: Passage) -> bool:
    if q.evidence:
        return any(e in hit.text for e in q.evidence)
    return any(src == hit.source and hit.start <= s and e <= hit.end for src, s, e in q.spans)


def score(questions: Sequence[Question], search: Search, k: int) -> dict[str, Any]:
    """hit@1, hit@2, hit@k, MRR@k, mean chars retrieved at k, and p50 search latency."""
    ranks: list[int | None] = []
    chars: list[int] = []
    seconds: list[float] = []
    for q in questions:
        started = time.perf_counter()
        hits = list(search(q.text, k))[:k]
        seconds.append(time.perf_counter() - started)
        chars.append(sum(len(h.text) for h in hits))
        ranks.append(next((r for r, h in enumerate(hits, 1) if _relevant(q, h)), None))
    n = len(questions)
    return {
        "questions": n,
        "hit@1": sum(r == 1 for r in ranks) / n,
        "hit@2": sum(r is not None and r <= 2 for r in ranks) / n,
        f"hit@{k}": sum(r is not None for r in ranks) / n,
        f"mrr@{k}": sum(1 / r for r in ranks if r) / n,
        f"chars@{k}": statistics.fmean(chars),
        "p50_ms": statistics.median(seconds) * 1000,
    }


def _ours(paths: Sequence[Path], settings: Settings, index_dir: Path) -> tuple[dict[str, Search], dict[str, Any]]:
    """One index build, searched with each fusion method."""
    from rag.index.build import build_index
    from rag.search.retriever import FUSIONS, Retriever

    local = dataclasses.replace(settings, index_dir=index_dir, chroma_host=None, collection="evalrun")
    stats = build_index(paths, settings=local)

    def searcher(retriever: Retriever) -> Search:
        def search(question: str, k: int) -> list[Passage]:
            return retriever.retrieve(question, k)

        return search

    searches = {fusion: searcher(Retriever(local, fusion=fusion)) for fusion in FUSIONS}
    return searches, {"passages": stats.passages, "build_s": round(stats.seconds, 2)}


def run_retrieval(settings: Settings, shared: Path, k: int, baseline: bool) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="rag-eval-") as tmp:
        tmp_dir = Path(tmp)
        article, article_qs = load_article(shared)
        squad_paths, squad_qs = load_squad(shared, tmp_dir)
        datasets = {"article": ([article], article_qs), "squad": (squad_paths, squad_qs)}
        for name, (paths, questions) in datasets.items():
            searches, info = _ours(paths, settings, tmp_dir / f"index-{name}")
            for fusion, search in searches.items():
                results[f"hybrid-{fusion}/{name}"] = {**info, **score(questions, search, k)}
            if baseline:
                from rag.evaluation.baseline import baseline_search

                base, info = baseline_search(paths, settings)
                results[f"llamaindex-default/{name}"] = {**info, **score(questions, base, k)}
        # Every shared document in one library: each question set must still find its passages among the others.
        searches, info = _ours([article, *squad_paths], settings, tmp_dir / "index-library")
        for name, (_, questions) in datasets.items():
            results[f"hybrid-score/{name}-in-library"] = {**info, **score(questions, searches["score"], k)}
    return results


def print_table(results: dict[str, Any], k: int) -> None:
    columns = ["questions", "hit@1", "hit@2", f"hit@{k}", f"mrr@{k}", f"chars@{k}", "p50_ms"]
    print(f"{'setup/dataset':34} " + " ".join(f"{c:>9}" for c in columns))
    for name, row in results.items():
        cells = [
            f"{row[c]:9.3f}" if isinstance(row[c], float) and c.startswith(("hit", "mrr")) else f"{row[c]:9.0f}"
            for c in columns
        ]
        print(f"{name:34} " + " ".join(cells))


def run(args: argparse.Namespace, settings: Settings) -> int:
    k = args.k
    if not 1 <= k <= 50:
        raise ConfigError("-k must be between 1 and 50.")
    if not (args.shared / "eval").is_dir():
        raise ConfigError(f"The shared eval data is missing: {args.shared / 'eval'} (use --shared PATH).")
    output: dict[str, Any] = {"k": k, "retrieval": run_retrieval(settings, args.shared, k, not args.skip_baseline)}
    print_table(output["retrieval"], k)
    if args.answers:
        from rag.evaluation import answers

        output["answers"] = answers.run_answer_eval(
            settings, args.provider, args.json, squad_per_kind=args.squad_per_kind
        )
        from rag.evaluation import open_answers  # open questions: key points covered, per split

        output["open_answers"] = open_answers.run_open_eval(settings, args.provider, args.json)
        output["overview_answers"] = open_answers.run_open_eval(
            settings, args.provider, args.json, questions_path=open_answers.OVERVIEW_QUESTIONS, name="overview"
        )
        from rag.evaluation import web_pages  # real pages added by URL, per split and unanswerable kind

        output["web_answers"] = web_pages.run_web_eval(settings, args.provider, args.json)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(output, indent=2), encoding="utf-8")
    print(f"results written to {args.json}")
    return 0
