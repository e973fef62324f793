"""What the answerability judgement costs before the first token, on one warm local model server.

`python -m rag.evaluation.bench_answerability [--limit N]`: the answerable questions about the default article
(the shared set, tests/data/dev_questions.jsonl and the rewordings of both), no history, each asked once, alternately decided
by the word gate (`RAG_ANSWERABILITY=words`) and by the judgement over the answer's own prompt (`judge`). Each
question is asked once only: a second asking would find its whole prompt in llama.cpp's cache and compare
nothing. Reported per path: p50 seconds to the first token and to the first checked words, and refusals. The
judgement reads the answer's prompt first and the answer then reuses the cached prefix, so the difference
should be the ~20-token yes/no paragraph, one generated token and a round trip.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.config import PROJECT_DIR, Settings
from rag.evaluation.answers import _index
from rag.evaluation.bench_open import _one
from rag.evaluation.bench_pipeline import SHARED_DIR
from rag.evaluation.procs import report

PATHS = ("words", "judge")


def questions(shared: Path, limit: int) -> list[str]:
    data = PROJECT_DIR / "tests" / "data"
    paths = (shared / "eval" / "article_questions.jsonl", data / "dev_questions.jsonl", data / "paraphrases.jsonl")
    rows = [json.loads(x) for path in paths if path.is_file() for x in path.read_text().splitlines() if x.strip()]
    return [r["question"] for r in rows if r["answerable"] and not r.get("history")][: limit or None]


def run(settings: Settings, shared: Path, limit: int) -> dict[str, Any]:
    asked = questions(shared, limit)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in PATHS}
    with tempfile.TemporaryDirectory(prefix="rag-bench-judge-") as tmp:
        indexed = _index(dataclasses.replace(settings, provider="local"), [settings.corpus_path], Path(tmp) / "i")
        _one("What did Erdogan and Putin agree on in Sochi?", indexed)  # warm-up: server, caches
        for i, question in enumerate(asked):
            name = PATHS[i % 2]
            record = _one(question, dataclasses.replace(indexed, answerability=name))
            runs[name].append(record | {"question": question})
            print(name, json.dumps(record), flush=True)

    def p50(name: str, key: str) -> float | None:
        values = [x[key] for x in runs[name] if x.get(key) is not None]
        return round(statistics.median(values), 2) if values else None

    for record in runs["judge"]:  # after the judgement: reading the rest of the prompt, then the first token
        if record["first_token"] is not None:
            record["after_decide"] = record["first_token"] - record["prep"] - record["decide"]
    summary: dict[str, Any] = {
        name: {"first_token": p50(name, "first_token"), "first_words": p50(name, "first_words"),
               "total": p50(name, "total"), "decide": p50(name, "decide"), "after_decide": p50(name, "after_decide"),
               "answers": len(runs[name]), "refused": sum(x["first_token"] is None for x in runs[name])}  # fmt: skip
        for name in PATHS
    }
    words, judge = summary["words"]["first_token"], summary["judge"]["first_token"]
    summary["judge_minus_words_first_token_p50"] = round(judge - words, 2) if words and judge else None
    return {"summary": summary, "runs": runs}


def figures(settings: Settings, shared: Path, limit: int) -> dict[str, Any]:
    """The flat figures `python -m rag bench --only answerability` reports."""
    summary = run(settings, shared, limit)["summary"]
    flat = {f"answerability_{path}_{k}_p50_s": summary[path][k] for path in PATHS for k in ("first_token", "decide")}
    flat["answerability_judge_after_decide_p50_s"] = summary["judge"]["after_decide"]
    flat["answerability_judge_minus_words_first_token_p50_s"] = summary["judge_minus_words_first_token_p50"]
    return flat


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.evaluation.bench_answerability", description=__doc__)
    parser.add_argument("--limit", type=int, default=0, help="questions to ask (default: every answerable one)")
    parser.add_argument("--shared", type=Path, default=SHARED_DIR)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = run(Settings.from_env(), args.shared, args.limit)
    return report(result["summary"], result, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
