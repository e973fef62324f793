"""Where a document's evidence ranks for questions worded unlike its text, under retrieval variants.

    PYTHONPATH=. python tools/recall_study.py [--sets article,web,squad] [--hyde N] [--json PATH]

Retrieval only (no answer). Every answerable question is searched with: the shipped retriever; passage vectors
re-fused with the shipped score fusion; the best sentence's vector, the passage+sentence mean and max
(sentence-level vectors); and, for the first N questions of each set (`--hyde`), a hypothetical answer sentence
written by the local model and embedded as a second query (HyDE), alone with the question vector or added to
BM25 too. The figure is the evidence's rank: among the 3 passages a factual prompt shows, the 4 it keeps, 6, 12.
Splits (choices are made on tuning, held-out is only reported): article dev questions and their rewordings
(tuning), the shared article questions and their rewordings (held-out); the twelve web pages added by URL into
one library, split by page as tests/data/web_questions.jsonl says; SQuAD Normans (tuning) and
Computational_complexity_theory (held-out), each indexed alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import PROJECT_DIR, Settings
from rag.evaluation.answers import SHARED, load_questions, squad_text
from rag.models.chat import get_chat_model
from rag.models.embed import embed_passages, embed_query, get_embedder
from rag.search.ranking import candidates, ranks, score_fusion
from rag.search.retriever import Retriever
from rag.text import sentence_spans
from rag.types import Passage

ARTICLES = {"Normans.json": "tuning", "Computational_complexity_theory.json": "heldout"}
AT = (1, 3, 4, 6, 12)
HYDE_PROMPT = (
    "Write one sentence, as an encyclopedia article would, that answers the question. If you don't know the "
    "answer, write a plausible one. Reply with the sentence only."
)


def gold(name: str) -> list[tuple[str, list[tuple[int, int]]]]:
    """(question, gold spans in the joined text) of every answerable question of one article."""
    data = json.loads((SHARED / "eval" / "squad2" / name).read_text(encoding="utf-8"))["data"][0]
    out, at = [], 0
    for para in data["paragraphs"]:
        for qa in para["qas"]:
            if not qa["is_impossible"] and qa["answers"]:
                spans = [(at + a["answer_start"], at + a["answer_start"] + len(a["text"])) for a in qa["answers"]]
                out.append((qa["question"], spans))
        at += len(para["context"]) + 2
    return out


def fused_order(cosines: np.ndarray, lexical: np.ndarray, k: int = 12) -> list[int]:
    """The shipped fusion (top dense and BM25 candidates, min-max score fusion) over given cosines."""
    n = min(len(cosines), candidates(k))
    top = np.argsort(-cosines, kind="stable")[:n]
    dense = {int(i): (r, float(cosines[i])) for r, i in enumerate(top, 1)}
    matched = np.flatnonzero(lexical > 0)
    matched = matched[np.argsort(-lexical[matched], kind="stable")][: candidates(k)]
    fused = score_fusion(dense, lexical, ranks(matched))
    return sorted(fused, key=lambda i: (-fused[i], i))[:k]


def sentence_vectors(passages: Sequence[Passage], embedder: Any) -> list[np.ndarray]:
    """Per passage, the (m, dim) vectors of its sentences."""
    out = []
    for p in passages:
        texts = [p.text[a:b] for a, b in sentence_spans(p.text)] or [p.text]
        out.append(embed_passages(embedder, texts))
    return out


def hypothetical(model: Any, question: str) -> str:
    text = ""
    for delta in model.stream([{"role": "system", "content": HYDE_PROMPT}, {"role": "user", "content": question}]):
        text += delta
        if len(text) > 300 or any(text.rstrip().endswith(c) for c in ".!?") and len(text) > 20:
            break
    return text.strip()


Match = Callable[[Passage], bool]


def spans_match(spans: Sequence[tuple[int, int]]) -> Match:
    return lambda p: any(p.start <= s and e <= p.end for s, e in spans)


def evidence_match(evidence: Sequence[str]) -> Match:
    wanted = [" ".join(e.split()) for e in evidence]
    return lambda p: any(e in " ".join(p.text.split()) for e in wanted)


def first_rank(order: Sequence[int], passages: Sequence[Passage], match: Match) -> int | None:
    return next((r for r, idx in enumerate(order, 1) if match(passages[idx])), None)


class Library:
    """One built library's passages, their vectors, their sentences' vectors and BM25, for the variants."""

    def __init__(self, settings: Settings, sources: Sequence[Path | str]) -> None:
        from rag.index.build import build_index

        build_index(list(sources), settings=settings)
        self.retriever = Retriever(settings)
        build = self.retriever._current()  # noqa: SLF001 - a study tool reads the build's BM25 and order
        self.passages = build.passages
        self.lexical = build.lexical.scores
        self.vectors = np.stack([np.asarray(v, dtype=np.float32) for v in self.retriever.passage_vectors(self.passages)])
        self.embedder = get_embedder(settings)
        self.sentences = sentence_vectors(self.passages, self.embedder)
        self.where = {(p.source, p.start, p.end): i for i, p in enumerate(self.passages)}

    def ranks(self, question: str, match: Match, model: Any) -> dict[str, int | None]:
        q = embed_query(self.embedder, question)
        hits = self.retriever.retrieve(question, 12)
        out = {"shipped": first_rank([self.where[(h.source, h.start, h.end)] for h in hits], self.passages, match)}
        pcos = self.vectors @ q
        scos = np.array([float((s @ q).max()) for s in self.sentences])
        lexical = self.lexical(question)
        for name, cos in (("passage vectors", pcos), ("best sentence", scos), ("passage+sentence mean", (pcos + scos) / 2),
                          ("passage, sentence max", np.maximum(pcos, scos))):  # fmt: skip
            out[name] = first_rank(fused_order(cos, lexical), self.passages, match)
        if model is not None:
            h = hypothetical(model, question)
            both = q + embed_passages(self.embedder, [h])[0]
            both = both / np.linalg.norm(both)
            hcos = self.vectors @ both
            hlex = self.lexical(question + " " + h)
            out["hyde: asked (same questions)"] = out["passage vectors"]
            out["hyde: question+answer vector"] = first_rank(fused_order(hcos, lexical), self.passages, match)
            out["hyde: vector and BM25"] = first_rank(fused_order(hcos, hlex), self.passages, match)
            hs = np.array([float((s @ both).max()) for s in self.sentences])
            out["hyde + sentence mean"] = first_rank(fused_order((hcos + hs) / 2, hlex), self.passages, match)
        return out


def tabulate(rows: list[dict[str, int | None]]) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for variant in dict.fromkeys(v for row in rows for v in row):
        rs = [row[variant] for row in rows if variant in row]
        table[variant] = {f"@{k}": round(sum(r is not None and r <= k for r in rs) / len(rs), 3) for k in AT}
        table[variant]["n"] = len(rs)
    return table


def run_set(library: Library, questions: Sequence[tuple[str, Match]], hyde: int, model: Any) -> dict[str, Any]:
    rows = [library.ranks(q, m, model if n < hyde else None) for n, (q, m) in enumerate(questions)]
    return tabulate(rows)


def squad_sets(settings: Settings, where: Path, hyde: int, model: Any) -> dict[str, Any]:
    out = {}
    for name, split in ARTICLES.items():
        local = dataclasses.replace(settings, index_dir=where / name, chroma_host=None, collection="study")
        library = Library(local, [squad_text(name, where)])
        questions = [(q, spans_match(s)) for q, s in gold(name)]
        out[f"squad {name.split('.')[0]} ({split})"] = run_set(library, questions, hyde, model)
    return out


def article_sets(settings: Settings, where: Path, hyde: int, model: Any) -> dict[str, Any]:
    """The default article searched as passages (as a long document would be): dev questions and their
    rewordings (tuning), the shared article questions and their rewordings (held-out)."""
    local = dataclasses.replace(settings, index_dir=where / "article", chroma_host=None, collection="study")
    library = Library(local, [SHARED / "corpus" / "turkey-russia-article.txt"])
    data = PROJECT_DIR / "tests" / "data"
    shared = [r for r in load_questions(SHARED / "eval" / "article_questions.jsonl") if r.get("answerable")]
    para = [r for r in load_questions(data / "paraphrases.jsonl") if r.get("answerable")]
    sets = {
        "article: dev (tuning)": [r for r in load_questions(data / "dev_questions.jsonl") if r.get("answerable")],
        "article: dev rewordings (tuning)": [r for r in para if not r["of"].startswith("pub")],
        "article: shared questions (held-out)": shared,
        "article: shared rewordings (held-out)": [r for r in para if r["of"].startswith("pub")],
    }
    return {name: run_set(library, [(" ".join([*r.get("history", []), r["question"]]), evidence_match(r["evidence"]))
                                    for r in rows], hyde, model) for name, rows in sets.items()}  # fmt: skip


def web_sets(settings: Settings, where: Path, hyde: int, model: Any) -> dict[str, Any]:
    """The twelve saved pages added by URL into one library, every page searched (as users ask)."""
    from rag.evaluation.web_pages import PAGES, WEB_QUESTIONS, serve

    rows = [r for r in load_questions(WEB_QUESTIONS) if r["kind"] == "answerable" and r.get("evidence")]
    local = dataclasses.replace(settings, index_dir=where / "web", chroma_host=None, collection="study")
    with serve(PAGES) as base:
        library = Library(local, [f"{base}/{page}.html" for page in sorted({r["page"] for r in rows})])
    return {f"web ({split})": run_set(library, [(r["question"], evidence_match(r["evidence"])) for r in rows
                                                if r["split"] == split], hyde, model)
            for split in ("tuning", "heldout")}  # fmt: skip


SETS = {"article": article_sets, "web": web_sets, "squad": squad_sets}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hyde", type=int, default=0, help="questions per article also searched with HyDE")
    parser.add_argument("--sets", default="article,web,squad", help="of: " + ", ".join(SETS))
    parser.add_argument("--json", type=Path, default=Path("eval-results/recall-study.json"))
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    # One sentence is all HyDE needs; a stream cut short would still run to max_tokens on the server.
    model = get_chat_model(dataclasses.replace(settings, max_answer_tokens=60)) if args.hyde else None
    out: dict[str, Any] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="recall-") as tmp:
        for collect in (SETS[s] for s in args.sets.split(",")):
            for name, table in collect(settings, Path(tmp), args.hyde, model).items():
                out[name] = table
                print(name, file=sys.stderr)
                for variant, row in table.items():
                    print(f"  {variant:32} " + " ".join(f"{k}={v}" for k, v in row.items()), file=sys.stderr)
    out["seconds"] = round(time.perf_counter() - started, 1)  # type: ignore[assignment]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
