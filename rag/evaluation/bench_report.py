"""Derived figures (ratios, projections, targets) and the Markdown table of `python -m rag bench`."""

from __future__ import annotations

from collections.abc import Sequence

from rag.evaluation.procs import Figures

# Keys the JSON always carries (null when not measured), as the benchmarks issue asks.
REQUIRED_KEYS = (
    "cold_start_s",
    "index_article_s",
    "retrieve_p50_ms",
    "llamaindex_retrieve_p50_ms",
    "ttft_p50_s",
    "peak_rss_mb",
    "scale_100k_query_p50_ms",
)
PROJECTED = 100_000

# (key, comparison, limit, description) from the targets.
TARGETS = (
    ("retrieve_p50_ms", "<=", 20.0, "warm retrieve p50 <= 20 ms (article)"),
    ("scale_100k_query_p50_ms", "<=", 50.0, "retrieve p50 <= 50 ms at 100k (server + BM25)"),
    ("cold_start_s", "<=", 8.0, "cold start to ready <= 8 s (local model)"),
    ("cold_questions_s", "<=", 5.0, "cold start to ready for questions <= 5 s (model loading meanwhile)"),
    ("ttft_p50_s", "<=", 4.0, "local first token p50 <= 4 s"),
    ("peak_rss_mb", "<=", 2500.0, "peak RSS <= 2.5 GB (local model loaded)"),
)


def _num(figures: Figures, key: str) -> float | None:
    value = figures.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _projection(figures: Figures) -> Figures:
    """Real ingest time for 100k passages: measured embedding rate + the store's insert rate at the largest size."""
    embed = _num(figures, "embed_passages_per_s")
    out: Figures = {}
    for store in ("embedded", "server"):
        rates = [v for k, v in figures.items() if k.startswith("scale_") and k.endswith(f"_{store}_insert_per_s")]
        insert = min((float(v) for v in rates if isinstance(v, int | float)), default=None)  # slowest: largest size
        key = f"projected_100k_ingest_{store}_s"
        out[key] = round(PROJECTED / embed + PROJECTED / insert, 1) if embed and insert else None
    out["projected_100k_embed_s"] = round(PROJECTED / embed, 1) if embed else None
    return out


def derived(figures: Figures) -> Figures:
    """Target verdicts, the speed comparison with LlamaIndex and the 100k ingest projection."""
    out = _projection(figures)
    for key, _op, limit, _text in TARGETS:
        value = _num(figures, key)
        met = None if value is None else value <= limit
        if key in ("cold_start_s", "cold_questions_s", "ttft_p50_s", "peak_rss_mb") and figures.get("cold_provider") != "local":
            met = None  # these targets are about the local model; without it they are not measured
        out[f"target_{key}_met"] = met
    ours, theirs = _num(figures, "retrieve_p50_ms"), _num(figures, "llamaindex_retrieve_p50_ms")
    out["target_faster_than_llamaindex_met"] = None if ours is None or theirs is None else ours <= theirs
    hit_ours, hit_theirs = _num(figures, "squad_hit5_ours"), _num(figures, "squad_hit5_llamaindex")
    out["target_hit5_above_llamaindex_met"] = None if hit_ours is None or hit_theirs is None else hit_ours > hit_theirs
    return out


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


ROWS = (
    ("warm retrieve, article (ms)", "retrieve", "ms", "retrieve_p50_ms"),
    ("LlamaIndex default retrieve, article (ms)", "llamaindex_retrieve", "ms", None),
    ("index article, fresh `python -m rag index` (s)", "index_article", "s", None),
    ("index article, warm rebuild (s)", "index_article_warm", "s", None),
    ("cold start to ready for questions, model loading (s)", "cold_questions", "s", "cold_questions_s"),
    ("cold start to ready, model loaded (s)", "cold_start", "s", "cold_start_s"),
    ("  interpreter start (s)", "cold_interpreter", "s", None),
    ("  imports (s)", "cold_import", "s", None),
    ("  embedding model load (s)", "cold_embed_load", "s", None),
    ("  index open (s)", "cold_index_open", "s", None),
    ("  first retrieve (s)", "cold_first_retrieve", "s", None),
    ("  local LLM load (s)", "cold_llm_load", "s", None),
    ("spawn to first answer complete (s)", "cold_first_answer", "s", None),
    ("first token, 1st question, fresh server (s)", "ttft", "s", "ttft_p50_s"),
    ("first token, 2nd question, prompt cache warm (s)", "second_ttft", "s", None),
    ("answer total, 1st question (s)", "total", "s", None),
    ("answer total, 2nd question (s)", "second_total", "s", None),
    ("extractive `query` total, warm (ms)", "e2e_extractive_total", "ms", None),
    ("OpenAI first token (s)", "e2e_openai_ttft", "s", None),
)


def _main_table(figures: Figures) -> list[str]:
    verdicts = {key: text for key, _op, _limit, text in TARGETS}
    lines = ["| figure | p50 | p95 | target |", "| --- | ---: | ---: | --- |"]
    for label, stem, unit, target_key in ROWS:
        p50, p95 = figures.get(f"{stem}_p50_{unit}"), figures.get(f"{stem}_p95_{unit}")
        if p50 is None and p95 is None:
            continue
        target = ""
        if target_key:
            target = f"{verdicts[target_key]}: {_fmt(figures.get(f'target_{target_key}_met'))}"
        lines.append(f"| {label} | {_fmt(p50)} | {_fmt(p95)} | {target} |")
    return lines


SINGLES = (
    ("LlamaIndex p50 / ours p50 (speed ratio)", "llamaindex_vs_ours_speed_ratio"),
    ("answer-span hit@5 SQuAD, ours", "squad_hit5_ours"),
    ("answer-span hit@5 SQuAD, LlamaIndex default", "squad_hit5_llamaindex"),
    ("evidence hit@5 article, ours / LlamaIndex", "article_hit5_ratio"),
    ("ingest, larger corpus (passages/s, whole build)", "ingest_passages_per_s"),
    ("embedding alone (passages/s)", "embed_passages_per_s"),
    ("share of ingest time spent embedding", "ingest_embed_share"),
    ("projected real ingest of 100k passages, embedded store (s)", "projected_100k_ingest_embedded_s"),
    ("projected real ingest of 100k passages, server (s)", "projected_100k_ingest_server_s"),
    ("local model: generated tokens/s (p50)", "tokens_per_s_p50"),
    ("local model: prompt read (uncached tokens/s until the first token, p50)", "prefill_tokens_per_s_p50"),
    ("local model: prompt tokens, 1st question (p50)", "prompt_tokens_p50"),
    ("local model: prompt tokens from cache, 2nd question (p50)", "second_prompt_cached_p50"),
    ("peak RSS, app process + model server process (MB)", "peak_rss_mb"),
    ("  of which the app process (MB)", "peak_rss_app_mb"),
    ("  of which the local model server process (MB)", "peak_rss_model_server_mb"),
    ("peak RSS of the bench process (MB)", "bench_process_peak_rss_mb"),
    ("faster than LlamaIndex's default pipeline", "target_faster_than_llamaindex_met"),
    ("higher answer-span hit@5 than LlamaIndex", "target_hit5_above_llamaindex_met"),
    ("peak RSS <= 2.5 GB", "target_peak_rss_mb_met"),
    ("add a 50-page PDF: total, until every vector is written (s)", "add_pdf_total_s"),
    ("  of which embedding (s)", "add_pdf_embed_s"),
    ("  embedding (passages/s)", "add_pdf_passages_per_s"),
    ("  searchable by keyword after (s)", "add_pdf_searchable_s"),
    ("  searchable after, old path: every vector first, same run (s)", "add_pdf_old_path_searchable_s"),
    ("overview: first checked words p50, prompt read ahead (s)", "overview_first_words_p50_s"),
    ("overview: first checked words, nothing read ahead, default article (s)", "overview_cold_first_words_article_s"),
    ("first token p50, judged minus word gate (s)", "answerability_judge_minus_words_first_token_p50_s"),
    ("  the judgement p50 (s)", "answerability_judge_decide_p50_s"),
    ("  the answer's first token after it p50 (s)", "answerability_judge_after_decide_p50_s"),
    ("short document read whole: first checked words p50 (s)", "whole_first_words_s_p50"),
    ("  retrieval path, same questions, same run (s)", "retrieval_first_words_s_p50"),
    ("  ratio whole / retrieval", "whole_vs_retrieval_first_words_ratio"),
    ("short document read whole: whole answer p50 (s)", "whole_total_s_p50"),
    ("  retrieval path, same questions, same run (s)", "retrieval_total_s_p50"),
    ("  ratio whole / retrieval", "whole_vs_retrieval_total_ratio"),
    ("  the answerability judgement p50, whole path (s)", "whole_decide_s_p50"),
    ("  the answerability judgement p50, retrieval path (s)", "retrieval_decide_s_p50"),
    ("  first checked words, judged minus no judgement, same questions p50 (s)", "whole_judgement_adds_first_words_s_p50"),
    ("  first checked words without the judgement p50 (s)", "ungated_first_words_s_p50"),
    ("read whole, each sentence's support judged: first checked words p50 (s)", "judged_first_words_s_p50"),
    ("  ratio judged / words only", "judged_vs_whole_first_words_ratio"),
    ("  whole answer p50 (s)", "judged_total_s_p50"),
    ("  ratio judged / words only", "judged_vs_whole_total_ratio"),
    ("  the support judgements p50 (s)", "judged_support_s_p50"),
    ("whole-document prefix: read fresh p50 (s)", "whole_prefix_read_s_p50"),
    ("  restored after a server restart p50 (s)", "whole_prefix_restored_s_p50"),
    ("  ratio restored / read", "whole_prefix_restored_ratio"),
)


def _singles(figures: Figures) -> list[str]:
    lines = ["| figure | value |", "| --- | ---: |"]
    lines += [f"| {label} | {_fmt(figures.get(key))} |" for label, key in SINGLES if figures.get(key) is not None]
    return lines


def _concurrency(figures: Figures, levels: Sequence[int] = (1, 2, 4, 8)) -> list[str]:
    lines = ["| threads | retrieve/s | retrieve p95 ms | errors | query/s | query p95 ms | errors |"]
    lines.append("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in levels:
        cells = []
        for work in ("retrieve", "query"):
            cells += [_fmt(figures.get(f"concurrency_{work}_{n}_{k}")) for k in ("per_s", "p95_ms", "errors")]
        if any(c != "-" for c in cells):
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return lines if len(lines) > 2 else []


def _scale(figures: Figures) -> list[str]:
    measured = {k.split("_")[1] for k, v in figures.items() if k.startswith("scale_") and v is not None}
    labels = sorted(measured, key=lambda s: int(s.rstrip("k")))
    head = "| passages | store | insert/s | open s | vector query p50 ms | retrieve p50 ms | retrieve p95 ms |"
    lines = [head, "| ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    for label in labels:
        for store in ("embedded", "server"):
            p = f"scale_{label}_{store}"
            keys = ("insert_per_s", "open_s", "vector_query_p50_ms", "retrieve_p50_ms", "retrieve_p95_ms")
            lines.append(
                f"| {label} | Chroma {store} | " + " | ".join(_fmt(figures.get(f"{p}_{k}")) for k in keys) + " |"
            )
        bm25 = f"scale_{label}_bm25"
        lines.append(
            f"| {label} | bm25s alone | {_fmt(figures.get(f'{bm25}_index_per_s'))} | - | - | "
            f"{_fmt(figures.get(f'{bm25}_query_p50_ms'))} | {_fmt(figures.get(f'{bm25}_query_p95_ms'))} |"
        )
    return lines if labels else []


def render(figures: Figures) -> str:
    """The whole report as Markdown tables (also pasted into docs/benchmarks.md)."""
    mode = "quick" if figures.get("quick") else "full"
    parts = [f"Benchmarks ({mode} run, {figures.get('started_at')}, cold provider: {figures.get('cold_provider')})"]
    for block in (_main_table(figures), _singles(figures), _concurrency(figures), _scale(figures)):
        if block:
            parts.append("\n".join(block))
    errors = [f"- {k.removeprefix('error_')}: {v}" for k, v in figures.items() if k.startswith("error_")]
    if errors:
        parts.append("Sections that failed:\n" + "\n".join(errors))
    return "\n\n".join(parts)
