"""Command line: `rag {model,index,add,docs,remove,search,ask,suggest,eval,bench}` (also `python -m rag ...`).

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

    if args.if_missing and not args.paths:
        from rag.api import open_index

        stats = open_index(settings).stats  # builds the default article only when there is no index yet
        print(f"index ready: {stats.documents} documents, {stats.passages} passages, collection {stats.collection}")
        return 0
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


def _cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    from rag.api import add_document

    failed = 0
    for item in args.items:
        try:
            doc = add_document(item, settings=settings)
        except RagError as err:  # one bad document doesn't stop the others
            print(f"error: {err}", file=sys.stderr)
            failed += 1
            continue
        print(f"added {doc.id}: {doc.title} ({doc.format}, {doc.chars:,} characters, {doc.passages} passages)")
    return 1 if failed else 0


def _cmd_docs(args: argparse.Namespace, settings: Settings) -> int:
    from rag.api import list_documents

    docs = list_documents(settings)
    if args.json:
        print(json.dumps([dataclasses.asdict(d) for d in docs], ensure_ascii=False, indent=2))
        return 0
    for d in docs:
        pages = f", {d.pages} pages" if d.pages else ""
        print(f"{d.id}  {d.title}\n    {d.source} ({d.format}, {d.chars:,} characters, {d.passages} passages{pages})")
    return 0


def _cmd_remove(args: argparse.Namespace, settings: Settings) -> int:
    from rag.api import remove_document

    doc = remove_document(args.id, settings=settings)
    print(f"removed {doc.id}: {doc.title}")
    return 0


def _cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from rag.api import query_stream

    if args.provider:
        settings = dataclasses.replace(settings, provider=args.provider)
    stream = query_stream(args.question, settings=settings, documents=args.doc or None)
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


def _cmd_suggest(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from rag.api import list_documents, suggested_questions

    if args.provider:
        settings = dataclasses.replace(settings, provider=args.provider)
    if settings.resolved_provider == "extractive":
        print("no suggested questions: the extractive provider has no language model to write them", file=sys.stderr)
        return 0
    docs = [d for d in list_documents(settings) if args.doc is None or d.id == args.doc]
    if not docs:
        suggested_questions(args.doc, settings=settings, make=False)  # raises the unknown-document error
    for d in docs:
        started = time.perf_counter()
        questions = suggested_questions(d.id, settings=settings)
        print(f"{d.id}  {d.title}")
        for q in questions or ["(none passed the checks)"]:
            print(f"    {q}")
        print(f"({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    return 0


def _print_answer(answer: Answer, shown: str) -> None:
    """The checked text when it differs from what streamed, then the citations; timing on stderr."""
    if answer.text != shown:
        print(("\n\n" if shown else "") + "Checked answer:\n" + answer.text, end="")
    print()
    for c in answer.citations:
        where = f"page {c.page}, " if c.page else ""
        print(f"\n[{c.number}] {c.title or c.source}: {c.source} ({where}characters {c.start}-{c.end})\n"
              f"    {' '.join(c.text.split())}")  # fmt: skip
    model = f"{answer.provider}" + (f" / {answer.model}" if answer.model else "")
    if answer.vectors_pending:  # a document added in the app moments ago, its vectors still being written
        print(f"\n({answer.vectors_pending} passage(s) still being embedded: found by keyword search only)",
              file=sys.stderr)  # fmt: skip
    print(f"\n({model}; {answer.timings.total:.1f} s)", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("model", help="assemble and verify the local model file").set_defaults(func=_cmd_model)

    p = sub.add_parser("index", help="build the index (default corpus when no paths)")
    p.add_argument("paths", nargs="*")
    p.add_argument("--rebuild", action="store_true", help="build anew even if the content is unchanged")
    p.add_argument("--if-missing", action="store_true", help="build the default article only if there is no index")
    p.set_defaults(func=_cmd_index)

    p = sub.add_parser("add", help="add documents (files or http/https URLs) to the library")
    p.add_argument("items", nargs="+", metavar="URL|PATH")
    p.set_defaults(func=_cmd_add)

    p = sub.add_parser("docs", help="list the library's documents")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_docs)

    p = sub.add_parser("remove", help="remove a document from the library by id")
    p.add_argument("id")
    p.set_defaults(func=_cmd_remove)

    p = sub.add_parser("search", help="show the passages retrieved for a question")
    p.add_argument("question")
    p.add_argument("-k", type=int, default=5)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_search)

    p = sub.add_parser("ask", help="answer a question with cited passages")
    p.add_argument("question")
    p.add_argument("--json", action="store_true")
    p.add_argument("--provider", choices=list(PROVIDERS))
    p.add_argument("--doc", action="append", metavar="ID", help="ask only these documents (repeatable)")
    p.set_defaults(func=_cmd_ask)

    p = sub.add_parser("suggest", help="suggested questions per document (made once per build, then stored)")
    p.add_argument("--doc", metavar="ID", help="only this document")
    p.add_argument("--provider", choices=list(PROVIDERS))
    p.set_defaults(func=_cmd_suggest)

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
