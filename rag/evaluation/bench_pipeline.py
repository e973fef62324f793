"""In-process benchmarks of the product on the article (issue items 2, 3, 5 and the warm half of 4).

Every figure is measured after a warm-up and reported as p50 and p95 over repeated runs. Indexes go
into temporary directories, never the project's index/.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rag.config import PROJECT_DIR, Settings
from rag.evaluation.procs import Figures, pct, time_calls

SHARED_DIR = PROJECT_DIR.parent / "shared"
FALLBACK_QUESTIONS = (
    "What trade volume target did the two presidents set?",
    "What did Erdogan and Putin agree on in Sochi?",
    "Why didn't Turkey align with the West?",
)


def article_questions(shared: Path = SHARED_DIR) -> list[str]:
    """The questions of the shared article set (answerable or not: both are real traffic)."""
    path = shared / "eval" / "article_questions.jsonl"
    if not path.is_file():
        return list(FALLBACK_QUESTIONS)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row["question"] for row in rows if not row.get("history")] or list(FALLBACK_QUESTIONS)


def _cycle(questions: Sequence[str]) -> Callable[[], str]:
    state = {"i": 0}

    def nxt() -> str:
        state["i"] += 1
        return questions[state["i"] % len(questions)]

    return nxt


def index_article_warm(settings: Settings, repeats: int) -> Figures:
    """Rebuilding the article's index in this process (embedding model already loaded)."""
    from rag.index.build import build_index

    samples = time_calls(lambda: build_index(settings=settings, rebuild=True), repeats, warmup=1)
    return pct("index_article_warm", samples, "s")


def larger_corpus(shared: Path, out_dir: Path, files: int = 2) -> list[Path]:
    """SQuAD articles as text files (paragraphs joined by blank lines); the article if they are absent."""
    paths = []
    for name in ("Normans.json", "Computational_complexity_theory.json")[:files]:
        source = shared / "eval" / "squad2" / name
        if source.is_file():
            data = json.loads(source.read_text(encoding="utf-8"))
            text = "\n\n".join(p["context"] for p in data["data"][0]["paragraphs"])
            paths.append(out_dir / name.replace(".json", ".txt"))
            paths[-1].write_text(text, encoding="utf-8")
    return paths or [Settings().corpus_path]


def ingest_throughput(settings: Settings, paths: Sequence[Path]) -> Figures:
    """Passages/s of a whole build, and of embedding alone (the expected bottleneck); the rest is the store."""
    from rag.index.build import build_index
    from rag.index.chunking import chunk_text
    from rag.index.writer import EMBED_BATCH
    from rag.models.embed import embed_passages, get_embedder

    texts = [t[c.start : c.end] for t in (p.read_text(encoding="utf-8") for p in paths) for c in chunk_text(t)]
    embedder = get_embedder(settings)
    embed_passages(embedder, texts[:EMBED_BATCH])  # warm-up
    start = time.perf_counter()
    for i in range(0, len(texts), EMBED_BATCH):
        embed_passages(embedder, texts[i : i + EMBED_BATCH])
    embed_s = time.perf_counter() - start
    start = time.perf_counter()
    stats = build_index(list(paths), settings=settings, rebuild=True)
    total_s = time.perf_counter() - start
    return {
        "ingest_passages": stats.passages,
        "ingest_passages_per_s": round(stats.passages / total_s, 1),
        "embed_passages_per_s": round(len(texts) / embed_s, 1),
        "ingest_store_and_other_s": round(max(0.0, total_s - embed_s), 3),
        "ingest_embed_share": round(min(1.0, embed_s / total_s), 3),
    }


def warm_retrieve(settings: Settings, questions: Sequence[str], repeats: int) -> Figures:
    """The product's retrieve (k=5) on the article, and LlamaIndex's default pipeline on the same questions."""
    from rag.evaluation.baseline import baseline_search
    from rag.search.retriever import open_retriever

    retriever = open_retriever(settings)
    nxt = _cycle(questions)
    figures = pct("retrieve", time_calls(lambda: retriever.retrieve(nxt(), 5), repeats, warmup=3))
    search, _info = baseline_search([settings.corpus_path], settings)
    nxt = _cycle(questions)
    figures.update(pct("llamaindex_retrieve", time_calls(lambda: search(nxt(), 5), repeats, warmup=3)))
    ours, theirs = figures["retrieve_p50_ms"], figures["llamaindex_retrieve_p50_ms"]
    if isinstance(ours, float) and isinstance(theirs, float) and ours > 0:
        figures["llamaindex_vs_ours_speed_ratio"] = round(theirs / ours, 2)
    return figures


def _ours_key(retrieval: dict[str, Any], dataset: str) -> str:
    """The eval row of the product's retriever: `hybrid/<dataset>`, or `hybrid-<default fusion>/<dataset>`."""
    if f"hybrid/{dataset}" in retrieval:
        return f"hybrid/{dataset}"
    import inspect

    from rag.search.retriever import Retriever

    fusion = inspect.signature(Retriever).parameters.get("fusion")
    return f"hybrid-{fusion.default if fusion else ''}/{dataset}"


def quality_ratio(settings: Settings, shared: Path, eval_json: Path | None, compute: bool) -> Figures:
    """Answer-span hit@5 on SQuAD (and evidence hit@5 on the article), ours vs LlamaIndex's default.

    Read from a `python -m rag eval` JSON when one exists, else computed by the eval's own function
    when `compute` (it embeds both SQuAD articles twice: minutes on a busy two-core machine).
    """
    if eval_json is not None and eval_json.is_file():
        retrieval = json.loads(eval_json.read_text(encoding="utf-8"))["retrieval"]
    elif compute:
        from rag.evaluation.retrieval import run_retrieval

        retrieval = run_retrieval(settings, shared, 5, True)
    else:
        retrieval = {}
    figures: Figures = {}
    for dataset, label in (("squad", "squad_hit5"), ("article", "article_hit5")):
        ours = retrieval.get(_ours_key(retrieval, dataset), {}).get("hit@5")
        theirs = retrieval.get(f"llamaindex-default/{dataset}", {}).get("hit@5")
        figures[f"{label}_ours"] = None if ours is None else round(ours, 3)
        figures[f"{label}_llamaindex"] = None if theirs is None else round(theirs, 3)
        figures[f"{label}_ratio"] = round(ours / theirs, 3) if ours is not None and theirs else None
    return figures


def extractive_answers(settings: Settings, questions: Sequence[str], repeats: int) -> Figures:
    """End-to-end `query` with the extractive provider (no model): total latency."""
    from rag.api import query

    extractive = dataclasses.replace(settings, provider="extractive")
    nxt = _cycle(questions)
    samples = time_calls(lambda: query(nxt(), settings=extractive), repeats, warmup=2)
    return pct("e2e_extractive_total", samples, "ms")


def remote_answers(settings: Settings, questions: Sequence[str], repeats: int) -> Figures:
    """End-to-end `query` with OpenAI (or a compatible server) when one is configured; nulls otherwise."""
    keys = ("e2e_openai_ttft_p50_s", "e2e_openai_ttft_p95_s", "e2e_openai_total_p50_s", "e2e_openai_total_p95_s")
    if not (settings.openai_api_key or settings.openai_base_url):
        return dict.fromkeys(keys)
    from rag.api import query

    remote = dataclasses.replace(settings, provider="openai")
    answers = [query(q, settings=remote) for q in (list(questions) * repeats)[: max(repeats, 1) + 1]][1:]
    firsts = [a.timings.first_token for a in answers if a.timings.first_token is not None]
    figures = pct("e2e_openai_ttft", firsts, "s")
    figures.update(pct("e2e_openai_total", [a.timings.total for a in answers], "s"))
    return figures


def _hammer(work: Callable[[str], Any], questions: Sequence[str], threads: int, calls: int) -> Figures:
    """`threads` workers share `threads * calls` calls; throughput, p95 latency and failures."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def one(question: str) -> None:
        start = time.perf_counter()
        try:
            work(question)
        except Exception as err:  # counted, not raised: the figure is "how many calls failed"
            with lock:
                errors.append(type(err).__name__)
            return
        with lock:
            latencies.append(time.perf_counter() - start)

    jobs = [questions[i % len(questions)] for i in range(threads * calls)]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, jobs))
    wall = time.perf_counter() - start
    figures: Figures = {"per_s": round(len(latencies) / wall, 2), "errors": len(errors)}
    figures.update({k.removeprefix("x_"): v for k, v in pct("x", latencies).items()})
    return figures


def concurrency(settings: Settings, questions: Sequence[str], levels: Sequence[int], calls: int) -> Figures:
    """N threads calling `retrieve` and `query` (extractive) at once."""
    from rag.api import query
    from rag.search.retriever import open_retriever

    extractive = dataclasses.replace(settings, provider="extractive")
    retriever = open_retriever(settings)
    workloads: dict[str, Callable[[str], Any]] = {
        "retrieve": lambda q: retriever.retrieve(q, 5),
        "query": lambda q: query(q, settings=extractive),
    }
    figures: Figures = {}
    for name, work in workloads.items():
        work(questions[0])  # warm-up
        for n in levels:
            for key, value in _hammer(work, questions, n, calls).items():
                figures[f"concurrency_{name}_{n}_{key}"] = value
    return figures
