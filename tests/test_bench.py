"""The benchmark's cheapest pieces on tiny sizes: JSON keys and shape, never wall time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.__main__ import main
from rag.config import Settings
from rag.evaluation import bench_cold, bench_report, bench_scale
from rag.evaluation.procs import pct, percentile


def _flat(figures: dict[str, object]) -> bool:
    return all(v is None or isinstance(v, bool | int | float | str) for v in figures.values())


def test_percentiles_interpolate_and_convert_units() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([0.0, 10.0], 95) == pytest.approx(9.5)
    assert pct("x", [0.001, 0.003]) == {"x_p50_ms": 2.0, "x_p95_ms": 2.9}
    assert pct("y", [], "s") == {"y_p50_s": None, "y_p95_s": None}


def test_derived_projects_ingest_and_judges_targets() -> None:
    figures: dict[str, object] = {
        "embed_passages_per_s": 100.0,
        "scale_1k_server_insert_per_s": 2000.0,
        "scale_100k_server_insert_per_s": 1000.0,
        "retrieve_p50_ms": 12.0,
        "llamaindex_retrieve_p50_ms": 10.0,
        "cold_start_s": 9.0,
        "cold_provider": "extractive",
    }
    out = bench_report.derived(figures)  # type: ignore[arg-type]
    # 100k passages: 1000 s of embedding + 100 s of inserts at the slowest measured rate.
    assert out["projected_100k_ingest_server_s"] == 1100.0
    assert out["projected_100k_ingest_embedded_s"] is None
    assert out["target_retrieve_p50_ms_met"] is True
    assert out["target_faster_than_llamaindex_met"] is False
    assert out["target_cold_start_s_met"] is None  # measured without the local model: no verdict
    assert out["target_cold_questions_s_met"] is None
    assert out["target_scale_100k_query_p50_ms_met"] is None


def test_cli_quick_sections_write_flat_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--only", "answer,threads", "--json", str(out)]) == 0
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert _flat(figures)
    assert set(bench_report.REQUIRED_KEYS) <= set(figures)
    assert figures["retrieve_p50_ms"] is None  # its section did not run: null, not missing
    assert figures["e2e_extractive_total_p50_ms"] > 0
    for n in (1, 2, 4, 8):
        assert figures[f"concurrency_retrieve_{n}_errors"] == 0
        assert figures[f"concurrency_query_{n}_errors"] == 0
        assert figures[f"concurrency_query_{n}_per_s"] > 0
    assert not [k for k in figures if k.startswith("error_")]


@pytest.mark.parametrize("option", [["--only", "index,nope"], ["--scale-sizes", "1k"], ["--cold-runs", "0"]])
def test_bad_options_fail_fast_with_one_line(option: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", *option]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")


def test_cold_run_without_model_reports_stages(article_settings: Settings) -> None:
    figures = bench_cold.cold_runs(article_settings.index_dir, "extractive", ["What did they agree in Sochi?"], 1)
    assert _flat(figures)
    assert figures["cold_start_s"] is not None and figures["cold_start_s"] > 0
    # No model to wait for: ready for questions is ready (the same moment, or a hair before it).
    assert 0 < figures["cold_questions_s"] <= figures["cold_start_s"]
    for stage in ("import", "embed_load", "index_open", "first_retrieve"):
        assert figures[f"cold_{stage}_p50_s"] is not None
    assert figures["cold_llm_load_p50_s"] is None
    assert figures.get("ttft_p50_s") is None  # the headline first-token figure is the local model's only
    assert 0 < figures["extractive_ttft_p50_s"] <= figures["extractive_total_p50_s"]
    assert figures["peak_rss_mb"] > 0


@pytest.mark.server
def test_scale_tiny_embedded_and_server(article_settings: Settings) -> None:
    vocabulary = bench_scale.article_vocabulary(article_settings.corpus_path)
    figures = bench_scale.scale_one(300, vocabulary, 4, article_settings)
    assert _flat(figures)
    for store in ("embedded", "server"):
        assert figures[f"scale_300_{store}_insert_per_s"] > 0
        assert figures[f"scale_300_{store}_retrieve_p50_ms"] > 0
        assert figures[f"scale_300_{store}_retrieve_p95_ms"] >= figures[f"scale_300_{store}_retrieve_p50_ms"]
    assert figures["scale_300_bm25_query_p50_ms"] is not None
    assert figures["scale_300_query_p50_ms"] == figures["scale_300_server_retrieve_p50_ms"]


def test_synthetic_build_spans_match_sources() -> None:
    corpus = bench_scale.synthetic_corpus(2500, ["alpha", "beta", "gamma", "delta"], 3)
    docs, metas = bench_scale._sources(corpus.texts)
    assert len(docs) == 3 and len(metas) == 2500
    for text, meta in zip(corpus.texts, metas, strict=True):
        assert docs[meta["source"]][meta["start"] : meta["end"]] == text
