"""Time the conversation history: listing 1,000 saved conversations (the target is < 200 ms), saving an
exchange, loading a conversation, and opening the file then listing (a restart).

    python tools/bench_history.py [--conversations 1000] [--exchanges 3] [--runs 20] [--dir DIR]

Every conversation is written through `History.append` (one durable transaction per exchange, as the app
does), each answer carrying three citations and four passages of realistic length. Prints p50 of `--runs`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rag import Answer, Citation, Passage, Timings  # noqa: E402
from ui.history import History  # noqa: E402

TEXT = "Turkey's growing frustration with the West played a strong role in shaping this relationship. " * 3


def _answer(n: int) -> Answer:
    cites = [Citation(i, "turkey-russia-article.txt", TEXT, 1000 * i, 1000 * i + len(TEXT)) for i in (1, 2, 3)]
    passages = [Passage("turkey-russia-article.txt", TEXT, 1000 * i, 1000 * i + len(TEXT), 0.5) for i in range(4)]
    return Answer(f"Answer {n} [1] [2] [3].", cites, passages, provider="extractive", timings=Timings(0.1, None, 0.4))


def _exchange(n: int) -> list[dict[str, Any]]:
    question = f"Question number {n}: why didn't Turkey align with the West?"
    return [{"role": "user", "content": question}, {"role": "assistant", "question": question, "answer": _answer(n)}]


def _p50_ms(fn: Callable[[], Any], runs: int) -> float:
    fn()  # warm-up: the page cache, SQLite's schema parse
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--exchanges", type=int, default=3)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--dir", type=Path, default=None, help="where to write the file (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "history.sqlite3"
        history = History(path)
        started = time.perf_counter()
        for c in range(args.conversations):
            for e in range(args.exchanges):
                history.append(f"conversation-{c:05d}", _exchange(e))
        writes = args.conversations * args.exchanges
        print(f"wrote {args.conversations} conversations x {args.exchanges} exchanges: "
              f"{(time.perf_counter() - started) / writes * 1000:.2f} ms per exchange (mean), "
              f"file {path.stat().st_size / 1e6:.1f} MB (+ WAL)")  # fmt: skip
        n = args.conversations
        listed = history.list(limit=n)
        assert len(listed) == n and listed[0].id == f"conversation-{n - 1:05d}"
        print(f"list {n} conversations: p50 {_p50_ms(lambda: history.list(limit=n), args.runs):.2f} ms")
        print(f"list 200 (the sidebar): p50 {_p50_ms(lambda: history.list(limit=200), args.runs):.2f} ms")
        print(f"load one conversation: p50 {_p50_ms(lambda: history.load('conversation-00000'), args.runs):.2f} ms")
        spare = iter(range(10**6))
        append = lambda: history.append("conversation-new", _exchange(next(spare)))  # noqa: E731
        print(f"save one exchange (durable): p50 {_p50_ms(append, args.runs):.2f} ms")

        def reopen() -> None:
            fresh = History(path)
            fresh.list(limit=n)
            fresh.close()

        print(f"open the file and list {n} (a restart): p50 {_p50_ms(reopen, args.runs):.2f} ms")
        history.close()


if __name__ == "__main__":
    main()
