"""First checked words of an overview answer with the local model, on one server, as a session would see them.

`python -m rag.evaluation.bench_overview [--rounds R]`: the default article alone, then the two shared SQuAD
articles (each longer than the model's context) in one library. Per document: `prime` s (reading its overview
prompt cold, what the app does in the background when a session opens), then each overview question of
tests/data/overview_questions.jsonl about it, each asked right after a factual question about the same
document, so the overview prompt's cached state must survive another prompt in between (llama.cpp's RAM prompt
cache). Reported: p50 of `first_words` (first checked text streamed), `first_token`, `total`, and the cold
first words of one overview question asked with nothing primed.
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

from rag.config import Settings
from rag.evaluation.answers import _index, load_questions
from rag.evaluation.open_answers import OVERVIEW_QUESTIONS, _ask, _squad_sources, document_ids
from rag.evaluation.procs import report

FACTUAL = {"article": "What did Erdogan and Putin agree on in Sochi?",
           "Normans": "Who was the duke in the Battle of Hastings?",
           "Computational_complexity_theory": "What is a Turing machine?"}  # fmt: skip


def _timed(question: str, settings: Settings, ids: list[str]) -> dict[str, Any]:
    answer, first = _ask(question, settings, ids)
    return {"first_words": first, "first_token": answer.timings.first_token, "total": answer.timings.total,
            "provider": answer.provider, "citations": len(answer.citations)}  # fmt: skip


def run(settings: Settings, rounds: int) -> dict[str, Any]:
    from rag.api import prime_overview

    rows = load_questions(OVERVIEW_QUESTIONS)
    settings = dataclasses.replace(settings, provider="local")
    out: dict[str, Any] = {"prime": {}, "cold": {}, "runs": []}
    with tempfile.TemporaryDirectory(prefix="rag-bench-overview-") as tmp:
        libraries = [(_index(settings, [settings.corpus_path], Path(tmp) / "article"), ["article"]),
                     (_index(settings, _squad_sources(Path(tmp)), Path(tmp) / "squad"),
                      ["Normans", "Computational_complexity_theory"])]  # fmt: skip
        for indexed, names in libraries:
            for name in names:
                ids = document_ids(indexed, name)
                questions = [r["question"] for r in rows if r["document"] == name]
                out["cold"][name] = _timed(questions[-1], indexed, ids)  # nothing primed: the worst case
                started = time.perf_counter()
                prime_overview(ids, settings=indexed)
                out["prime"][name] = round(time.perf_counter() - started, 2)
                for _ in range(rounds):
                    for question in questions:
                        _timed(FACTUAL[name], indexed, ids)  # another prompt in between
                        record = _timed(question, indexed, ids) | {"document": name, "question": question}
                        out["runs"].append(record)
                        print(json.dumps(record), flush=True)

    def p50(key: str) -> float | None:
        values = [r[key] for r in out["runs"] if r[key] is not None]
        return round(statistics.median(values), 2) if values else None

    out["summary"] = {k: p50(k) for k in ("first_words", "first_token", "total")}
    out["summary"]["target_first_words_p50_6s_met"] = (out["summary"]["first_words"] or 99) <= 6.0
    return out


def figures(settings: Settings, rounds: int = 1) -> dict[str, Any]:
    """The flat figures `python -m rag bench --only overview` reports."""
    result = run(settings, rounds)
    flat = {f"overview_{k}_p50_s": v for k, v in result["summary"].items() if k != "target_first_words_p50_6s_met"}
    flat |= {f"overview_prime_{name}_s": v for name, v in result["prime"].items()}
    flat |= {f"overview_cold_first_words_{name}_s": r["first_words"] for name, r in result["cold"].items()}
    return flat


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.evaluation.bench_overview", description=__doc__)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = run(Settings.from_env(), args.rounds)
    return report({k: result[k] for k in ("summary", "prime", "cold")}, result, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
