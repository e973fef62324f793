"""Command line: `python -m rag {model,index,search,ask,eval,bench}`.

Each subcommand is a short function calling the public API; eval and bench own their arguments
(`add_arguments(parser)` / `run(args, settings) -> int`) in their own modules.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence

from .config import Settings
from .errors import RagError


def _cmd_model(args: argparse.Namespace, settings: Settings) -> int:
    from .llm import ensure_model

    path = ensure_model(settings)
    print(f"model ready: {path}")
    return 0


def _cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    from .ingest import build_index

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
    from .retrieve import retrieve

    passages = retrieve(args.question, k=args.k, settings=settings)
    if args.json:
        print(json.dumps([dataclasses.asdict(p) for p in passages], ensure_ascii=False, indent=2))
        return 0
    for rank, p in enumerate(passages, 1):
        print(f"[{rank}] {p.source} {p.start}-{p.end} score={p.score:.4f}\n    {p.text}\n")
    return 0


def _cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from .answer import render_answer_cli

    if args.provider:
        settings = dataclasses.replace(settings, provider=args.provider)
    return render_answer_cli(args.question, settings=settings, as_json=args.json)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rag", description=__doc__)
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
    p.add_argument("--provider", choices=["auto", "local", "openai", "extractive"])
    p.set_defaults(func=_cmd_ask)

    for name, help_ in (("eval", "retrieval and answer metrics"), ("bench", "speed and memory benchmarks")):
        p = sub.add_parser(name, help=help_)
        module = __import__(f"rag.{name}", fromlist=["add_arguments"])
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


if __name__ == "__main__":
    sys.exit(main())
