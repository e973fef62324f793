"""`python -m rag bench`: speed, memory and scale, side by side with LlamaIndex's default pipeline.

Sections (each one failing on its own does not stop the others; its error is recorded in the JSON):
  index     `python -m rag index` in fresh processes, and warm rebuilds; ingest throughput on a larger corpus
  retrieve  warm retrieve on the article vs LlamaIndex's VectorStoreIndex defaults; hit@5 quality ratio
  answer    end-to-end `query` (extractive in-process; OpenAI when configured)
  threads   1/2/4/8 threads calling `retrieve` and `query` (extractive)
  cold      fresh processes: per-stage cold start, local model first token, prompt cache, peak RSS
  scale     1k/10k/100k synthetic passages, Chroma embedded and a `chroma run` server, BM25 alongside
  documents / overview / answerability   adding a 50-page PDF; overview answers; the judgement's cost
  whole     a short document read whole vs the retrieval path; its prefix read fresh vs restored
Figures are p50/p95 over repeated runs after a warm-up. The JSON (--json) is one flat object; null
means "not measured". Everything is written to temporary directories, never to the project's index/.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rag.config import PROJECT_DIR, Settings
from rag.errors import InputError
from rag.evaluation import (
    bench_answerability,
    bench_cold,
    bench_documents,
    bench_overview,
    bench_pipeline,
    bench_report,
    bench_scale,
    bench_whole,
)
from rag.evaluation.procs import Figures, peak_rss_mb, temp_dir

DEFAULT_EVAL_JSON = PROJECT_DIR / "eval-results" / "eval.json"  # where `python -m rag eval` writes
SECTIONS = ("index", "retrieve", "answer", "threads", "cold", "scale", "documents", "overview", "answerability",
            "whole")  # fmt: skip


@dataclass(frozen=True)
class Plan:
    """How much to measure: --quick trades repetitions and the 100k size for a run of a few minutes."""

    repeats: int
    cold_runs: int
    index_runs: int
    thread_calls: int
    thread_levels: tuple[int, ...]
    scale_sizes: tuple[int, ...]
    scale_queries: int

    @classmethod
    def for_args(cls, args: argparse.Namespace) -> Plan:
        if args.quick:
            plan = cls(20, 2, 2, 5, (1, 2, 4, 8), (1_000, 10_000), 30)
        else:
            plan = cls(60, 5, 3, 8, (1, 2, 4, 8), (1_000, 10_000, 100_000), 50)
        if args.scale_sizes:
            try:
                sizes = tuple(int(n) for n in args.scale_sizes.split(","))
            except ValueError:
                sizes = ()
            if not sizes or min(sizes) < 10:
                raise InputError("--scale-sizes takes passage counts of at least 10, e.g. 1000,10000.")
            plan = dataclasses.replace(plan, scale_sizes=sizes)
        if args.cold_runs is not None:
            if args.cold_runs < 1:
                raise InputError("--cold-runs must be at least 1.")
            plan = dataclasses.replace(plan, cold_runs=args.cold_runs)
        return plan


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `python -m rag bench`."""
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, scale up to 10k (a few minutes)")
    parser.add_argument("--json", type=Path, help="write all figures to this file as one flat JSON object")
    parser.add_argument("--skip-llm", action="store_true", help="don't load the local model (cold start without it)")
    parser.add_argument("--skip-scale", action="store_true", help="skip the 1k/10k/100k scale benchmark")
    parser.add_argument("--only", help=f"comma-separated sections to run: {','.join(SECTIONS)}")
    parser.add_argument("--scale-sizes", help="comma-separated passage counts (default 1000,10000[,100000])")
    parser.add_argument("--cold-runs", type=int, help="fresh processes for the cold-start figures")
    parser.add_argument(
        "--eval-json",
        type=Path,
        help=f"read the hit@5 quality ratio from this `rag eval` JSON (default: a full run computes it; "
        f"--quick reads {DEFAULT_EVAL_JSON} if present)",
    )
    parser.add_argument("--shared", type=Path, default=bench_pipeline.SHARED_DIR, help="the shared data directory")


def _section(figures: Figures, name: str, work: Callable[[], Figures]) -> None:
    """Run one section, merge its figures, and record (not raise) its failure."""
    print(f"[bench] {name} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        figures.update(work())
    except Exception as err:  # a broken section must not hide the others' figures
        figures[f"error_{name}"] = f"{type(err).__name__}: {err}"[:300]
        traceback.print_exc(file=sys.stderr)
    figures[f"section_{name}_s"] = round(time.perf_counter() - start, 1)


def _wanted(args: argparse.Namespace) -> set[str]:
    wanted = set(args.only.split(",")) if args.only else set(SECTIONS)
    if wanted - set(SECTIONS):
        raise InputError(
            f"Unknown section(s) {', '.join(sorted(wanted - set(SECTIONS)))}: choose from {', '.join(SECTIONS)}."
        )
    if args.skip_scale:
        wanted.discard("scale")
    return wanted


def _local_model_available(settings: Settings, skip_llm: bool) -> bool:
    if skip_llm:
        return False
    try:
        from rag.models.weights import ensure_model

        ensure_model(settings)
        return True
    except Exception as err:
        print(f"[bench] local model unavailable, cold start measured without it: {err}", file=sys.stderr)
        return False


def _work(args: argparse.Namespace, settings: Settings, local: Settings, tmp: Path) -> dict[str, Callable[[], Figures]]:
    """Each section as a thunk over the article index in `local` (built before any section runs)."""
    plan, questions, bp = Plan.for_args(args), bench_pipeline.article_questions(args.shared), bench_pipeline

    def index() -> Figures:
        corpus = bp.larger_corpus(args.shared, tmp, files=1 if args.quick else 2)
        return {
            **bench_cold.index_cold(tmp, plan.index_runs),
            **bp.index_article_warm(dataclasses.replace(local, index_dir=tmp / "rebuild"), plan.index_runs),
            **bp.ingest_throughput(dataclasses.replace(local, index_dir=tmp / "ingest"), corpus),
        }

    # A full run computes the quality ratio afresh; --quick reuses the last `rag eval` JSON if there is one.
    eval_json = args.eval_json or (DEFAULT_EVAL_JSON if args.quick else None)

    def cold() -> Figures:
        provider = "local" if _local_model_available(settings, args.skip_llm) else "extractive"
        return bench_cold.cold_runs(local.index_dir, provider, questions, plan.cold_runs)

    return {
        "index": index,
        "retrieve": lambda: {
            **bp.warm_retrieve(local, questions, plan.repeats * 2),
            **bp.quality_ratio(local, args.shared, eval_json, compute=not args.quick),
        },
        "answer": lambda: {
            **bp.extractive_answers(local, questions, plan.repeats),
            **bp.remote_answers(local, questions, max(3, plan.repeats // 10)),
        },
        "threads": lambda: bp.concurrency(local, questions, plan.thread_levels, plan.thread_calls),
        "cold": cold,
        "scale": lambda: bench_scale.run_scale(plan.scale_sizes, local, plan.scale_queries),
        "documents": lambda: bench_documents.add_pdf(settings, tmp),
        "overview": lambda: {} if not _local_model_available(settings, args.skip_llm) else bench_overview.figures(settings),
        "answerability": lambda: {}
        if not _local_model_available(settings, args.skip_llm)
        else bench_answerability.figures(settings, args.shared, 20 if args.quick else 0),
        "whole": lambda: {} if not _local_model_available(settings, args.skip_llm)
        else bench_whole.figures(settings, 3 if args.quick else 6),
    }


def measure(args: argparse.Namespace, settings: Settings, tmp: Path) -> Figures:
    """All requested sections against a fresh article index in `tmp`; the flat figures."""
    from rag.index.build import build_index

    local = dataclasses.replace(settings, index_dir=tmp / "index", chroma_host=None)
    figures: Figures = dict.fromkeys(bench_report.REQUIRED_KEYS)
    figures.update({"quick": args.quick, "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    build_index(settings=local)  # the article's index that every section reads
    work = _work(args, settings, local, tmp)
    for name in SECTIONS:
        if name in _wanted(args):
            _section(figures, name, work[name])
    figures["bench_process_peak_rss_mb"] = peak_rss_mb()
    figures.update(bench_report.derived(figures))
    return figures


def run(args: argparse.Namespace, settings: Settings) -> int:
    Plan.for_args(args)  # bad options fail here, before minutes of work
    _wanted(args)
    start = time.perf_counter()
    with temp_dir("run") as tmp:
        figures = measure(args, settings, tmp)
    figures["bench_total_s"] = round(time.perf_counter() - start, 1)
    print(bench_report.render(figures))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        print(f"figures written to {args.json}")
    return 1 if any(key.startswith("error_") for key in figures) else 0
