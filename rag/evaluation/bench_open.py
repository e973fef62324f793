"""First checked words of an open answer against today's first token, on one warm local model server.

`python -m rag.evaluation.bench_open [--limit N] [--rounds R]`: for each open question about the default
article, alternately answered the way a factual question is (today's path: top-k passages, 3 in the prompt,
1-3 sentences; the question kind forced to "factual") and the open way (diverse passages, longer answer), in
alternating order so neither profits from llama.cpp's prompt cache more often. Reported per path, p50 seconds
from the call: `prep` (condense, kind, retrieval, diverse pick), `first_token`, `first_words` (the first checked
text that streamed), `total`, and the user prompt's length in characters.
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
from rag.evaluation.open_answers import OPEN_QUESTIONS
from rag.evaluation.procs import report


def _one(question: str, settings: Settings, path: str = "open") -> dict[str, Any]:
    """One answer through the pipeline's own steps; `path` "today" plans it as a factual question, "open" lets
    the kind model decide."""
    from rag.answer.pipeline import AnswerStream, respond
    from rag.answer.plan import make_plan
    from rag.api import load_chat_model, open_index

    retriever, model = open_index(settings), load_chat_model(settings)
    started = time.perf_counter()
    plan = make_plan(question, retriever, settings, started=started, kind="factual" if path == "today" else None)
    stream = AnswerStream(respond(plan, settings, retriever, model, started=started))
    first = None
    for delta in stream:
        if first is None and delta.strip():
            first = time.perf_counter() - started
    answer = stream.answer
    return {"prep": answer.timings.retrieve, "decide": answer.timings.decide,
            "first_token": answer.timings.first_token, "first_words": first,
            "total": answer.timings.total, "prompt_chars": len(plan.messages[1]["content"]),
            "sentences": answer.text.count("["), "provider": answer.provider}  # fmt: skip


def run(settings: Settings, limit: int, rounds: int) -> dict[str, Any]:
    rows = [r for r in load_questions(OPEN_QUESTIONS) if r["document"] == "article" and r.get("answerable", True)]
    rows = rows[: limit or None]
    settings = dataclasses.replace(settings, provider="local")
    runs: dict[str, list[dict[str, Any]]] = {"today": [], "open": []}
    with tempfile.TemporaryDirectory(prefix="rag-bench-open-") as tmp:
        indexed = _index(settings, [settings.corpus_path], Path(tmp) / "index")
        _one("What did Erdogan and Putin agree on in Sochi?", indexed, "today")  # warm-up: server, caches
        for r in range(rounds):
            for i, row in enumerate(rows):
                order = ("today", "open") if (i + r) % 2 == 0 else ("open", "today")
                for name in order:
                    record = _one(row["question"], indexed, name)
                    runs[name].append(record | {"id": row["id"]})
                    print(name, row["id"], json.dumps(record), flush=True)

    def p50(name: str, key: str) -> float | None:
        values = [x[key] for x in runs[name] if x[key] is not None]
        return round(statistics.median(values), 2) if values else None

    keys = ("prep", "first_token", "first_words", "total", "prompt_chars")
    summary = {name: {k: p50(name, k) for k in keys} for name in runs}
    words, token = summary["open"]["first_words"], summary["today"]["first_token"]
    bound = round(token + 1, 2) if token is not None else None
    summary["target"] = {"open_first_words_p50": words, "today_first_token_p50_plus_1s": bound,
                         "met": words is not None and bound is not None and words <= bound}
    return {"summary": summary, "runs": runs}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.evaluation.bench_open", description=__doc__)
    parser.add_argument("--limit", type=int, default=0, help="article open questions to use (default all)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = run(Settings.from_env(), args.limit, args.rounds)
    return report(result["summary"], result, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
