"""Command line: `rag {model,index,search,ask,eval,bench}` (also `python -m rag ...`).

Each subcommand is a short function calling the public API; eval and bench own their arguments
(`add_arguments(parser)` / `run(args, settings) -> int`) in `rag.evaluation`, imported only when asked for.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
from collections.abc import Sequence

from rag.config import PROVIDERS, Settings
from rag.errors import RagError
from rag.types import Answer

MEASURING = {"eval": ("rag.evaluation.retrieval", "retrieval and answer metrics"),
             "bench": ("rag.evaluation.bench", "speed and memory benchmarks")}  # fmt: skip


def _cmd_model(args: argparse.Namespace, settings: Settings) -> int:
    from rag.models.weights import ensure_model

    print(f"model ready: {ensure_model(settings)}")
    return 0


def _cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    from rag.index.build import build_index

    stats = build_index(args.paths or None, settings=settings, rebuild=args.rebuild)
    for err in stats.errors:
        print(f"skipped: {err}", file=sys.stderr)
    state = "built" if stats.built else "unchanged"
    print(
        f"index {state}: {stats.documents} documents, {stats.passages} passages, "
        f"collection {stats.collection}, embeddings {stats.embed_model}, {stats.seconds:.2f} s"
    )
    return 1 if stats.errors and stats.documents == 0 else 0


def _cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from rag.api import retrieve

    passages = retrieve(args.question, k=args.k, settings=settings)
    if args.json:
        print(json.dumps([dataclasses.asdict(p) for p in passages], ensure_ascii=False, indent=2))
        return 0
    for rank, p in enumerate(passages, 1):
        print(f"[{rank}] {p.source} {p.start}-{p.end} score={p.score:.4f}\n    {p.text}\n")
    return 0


def _cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from rag.api import query_stream

    if args.provider:
        settings = dataclasses.replace(settings, provider=args.provider)
    stream = query_stream(args.question, settings=settings)
    if args.json:
        print(json.dumps(dataclasses.asdict(stream.answer), ensure_ascii=False, indent=2))
        return 0
    shown = ""
    for delta in stream:
        shown += delta
        sys.stdout.write(delta)
        sys.stdout.flush()
    _print_answer(stream.answer, shown)
    return 0


def _print_answer(answer: Answer, shown: str) -> None:
    """The checked text when it differs from what streamed, then the citations; timing on stderr."""
    if answer.text != shown:
        print(("\n\n" if shown else "") + "Checked answer:\n" + answer.text, end="")
    print()
    for c in answer.citations:
        print(f"\n[{c.number}] {c.source} (characters {c.start}-{c.end})\n    {' '.join(c.text.split())}")
    model = f"{answer.provider}" + (f" / {answer.model}" if answer.model else "")
    print(f"\n({model}; {answer.timings.total:.1f} s)", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("model", help="assemble and verify the local model file").set_defaults(func=_cmd_model)

    p = sub.add_parser("index", help="build the index (default corpus when no paths)")
    p.add_argument("paths", nargs="*")
    p.add_argument("--rebuild", action="store_true", help="build anew even if the content is unchanged")
    p.set_defaults(func=_cmd_index)

    p = sub.add_parser("search", help="show the passages retrieved for a question")
    p.add_argument("question")
    p.add_argument("-k", type=int, default=5)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_search)

    p = sub.add_parser("ask", help="answer a question with cited passages")
    p.add_argument("question")
    p.add_argument("--json", action="store_true")
    p.add_argument("--provider", choices=list(PROVIDERS))
    p.set_defaults(func=_cmd_ask)

    for name, (module_name, help_) in MEASURING.items():
        p = sub.add_parser(name, help=help_)
        module = importlib.import_module(module_name)
        module.add_arguments(p)
        p.set_defaults(func=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        return int(args.func(args, settings))
    except RagError as err:
        # Expected failures get one line, never a traceback.
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
