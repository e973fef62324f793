"""Fit and report the answerability threshold on the production judgement (rag/answer/decide.py).

    python tools/answerability_fit.py collect [SET ...]   # scores appended to $OUT/<set>.jsonl (resumable)
    python tools/answerability_fit.py fit [--write]       # threshold on tuning, figures on every split

Each question goes through the product's own parts: its plan (`make_plan`: kind, passages and the answer's
prompt), the judgement request (that prompt plus the yes/no paragraph) to the local model, and the two signals that need no
model (names absent from the whole document; the word-coverage gate, the fallback without probabilities).

Splits. Tuning (fit): dev = tests/data/dev_questions.jsonl, normans = SQuAD Normans (seed-0 sample, answerable
and unanswerable interleaved). Held-out (report only): article = shared article_questions.jsonl, para = the
readers' rewordings of those (tests/data/paraphrases.jsonl), cct = SQuAD Computational_complexity_theory (same
sampling). devpara = rewordings of the dev questions: derived from tuning questions, reported apart, never fitted.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OUT = Path(os.environ.get("ANSWERABILITY_OUT", "/tmp/answerability-prod"))
LIMITS = {"normans": 60, "cct": 60, "devpara": 40}
TUNING, HELD_OUT = ("dev", "normans"), ("article", "para", "cct")


SHARED = Path(os.environ.get("RAG_SHARED", str(ROOT.parent / "shared")))
SQUAD_FILES = {"normans": "Normans.json", "cct": "Computational_complexity_theory.json"}
SAMPLE = 100


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def study_questions(name: str) -> list[dict[str, Any]]:
    """Rows {id, of, question, answerable, corpus} of one set."""
    if name in ("dev", "article", "paraphrases"):
        path = {
            "dev": ROOT / "tests" / "data" / "dev_questions.jsonl",
            "article": SHARED / "eval" / "article_questions.jsonl",
            "paraphrases": ROOT / "tests" / "data" / "paraphrases.jsonl",
        }[name]
        rows = []
        for r in _jsonl(path):
            text = " ".join([*r.get("history", []), r["question"]])
            rows.append({"id": r["id"], "of": r.get("of", r["id"]), "question": text,
                         "answerable": bool(r["answerable"]), "corpus": "article"})  # fmt: skip
        return rows
    data = json.loads((SHARED / "eval" / "squad2" / SQUAD_FILES[name]).read_text(encoding="utf-8"))
    qas = [qa for para in data["data"][0]["paragraphs"] for qa in para["qas"]]
    rng = random.Random(0)
    pos = [qa for qa in qas if not qa["is_impossible"]]
    neg = [qa for qa in qas if qa["is_impossible"]]
    a, b = rng.sample(pos, min(SAMPLE, len(pos))), rng.sample(neg, min(SAMPLE, len(neg)))
    # Interleaved, so any prefix of a run that had to stop early is still a seed-0 sample of both kinds.
    chosen = [qa for pair in zip(a, b, strict=False) for qa in pair] + a[len(b) :] + b[len(a) :]
    return [{"id": qa["id"], "of": qa["id"], "question": qa["question"], "answerable": not qa["is_impossible"],
             "corpus": "squad"} for qa in chosen]  # fmt: skip


def questions(name: str) -> list[dict[str, Any]]:
    if name in ("para", "devpara"):
        rows = [r for r in study_questions("paraphrases") if r["of"].startswith("dev-") == (name == "devpara")]
    else:
        rows = study_questions({"normans": "normans", "cct": "cct"}.get(name, name))
    return rows[: LIMITS.get(name, len(rows))]


def _parts(corpus: str, tmp: Path) -> tuple[Any, Any]:
    import dataclasses

    from rag.config import Settings
    from rag.evaluation.retrieval import load_squad
    from rag.index.build import build_index
    from rag.search.retriever import Retriever

    settings = Settings.from_env(provider="local")
    paths = [settings.corpus_path] if corpus == "article" else load_squad(SHARED, tmp)[0]
    local = dataclasses.replace(
        settings, index_dir=tmp / f"index-{corpus}", chroma_host=None, collection=f"fit{corpus}"
    )
    build_index(paths, settings=local)
    return Retriever(local), local


def score(row: dict[str, Any], retriever: Any, settings: Any, model: Any) -> dict[str, Any]:
    """The production judgement of one question: its plan (kind, passages, the answer's own prompt) with the
    yes/no paragraph; plus the two signals that need no model."""
    from rag.answer.decide import judge, question_coverage, refusal_before
    from rag.answer.plan import make_plan

    plan = make_plan(row["question"], retriever, settings)
    names = question_coverage(plan.question, plan.sources, plan.names).missing_names
    started = time.perf_counter()
    # not judged, as in the pipeline: overviews (never refused) and "other" messages (the word gate decides)
    p = None if plan.kind in ("overview", "other") else judge(model, plan.messages)
    return {**row, "kind": plan.kind, "p": p, "seconds": round(time.perf_counter() - started, 3),
            "names_absent": list(names),
            "words_refuse": refusal_before(plan.question, plan.sources, plan.names) is not None}  # fmt: skip


def collect(sets: list[str]) -> None:
    from rag.models.chat import get_chat_model

    OUT.mkdir(parents=True, exist_ok=True)
    parts: dict[str, tuple[Any, Any]] = {}
    model = None
    with tempfile.TemporaryDirectory(prefix="rag-fit-") as tmp:
        for name in sets:
            path = OUT / f"{name}.jsonl"
            done = {json.loads(x)["id"] for x in path.read_text().splitlines()} if path.exists() else set()
            with path.open("a", encoding="utf-8") as out:
                for row in questions(name):
                    if row["id"] in done:
                        continue
                    corpus = row["corpus"]
                    if corpus not in parts:
                        parts[corpus] = _parts(corpus, Path(tmp))
                    retriever, settings = parts[corpus]
                    model = model or get_chat_model(settings)
                    out.write(json.dumps(score(row, retriever, settings, model)) + "\n")
                    out.flush()
            print(f"{name}: done", flush=True)


def _load(name: str) -> list[dict[str, Any]]:
    path = OUT / f"{name}.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def refuses(row: dict[str, Any], t: float) -> bool:
    if row.get("kind") == "overview":  # never refused before generating
        return False
    if row["names_absent"]:
        return True
    return row["p"] < t if row["p"] is not None else bool(row["words_refuse"])


def figures(rows: list[dict[str, Any]], decide: Any) -> dict[str, Any]:
    pos = [r for r in rows if r["answerable"]]
    neg = [r for r in rows if not r["answerable"]]
    out = {"n": len(rows), "false_refusals": sum(decide(r) for r in pos) / len(pos) if pos else None,
           "refusals_right": sum(decide(r) for r in neg) / len(neg) if neg else None}  # fmt: skip
    groups: dict[str, list[bool]] = {}
    for r in rows:
        groups.setdefault(r["of"], []).append(decide(r))
    multi = [g for g in groups.values() if len(g) > 1]
    out["flips"] = sum(len(set(g)) > 1 for g in multi) / len(multi) if multi else None
    out["auroc"] = _auroc([r["p"] for r in pos if r["p"] is not None], [r["p"] for r in neg if r["p"] is not None])
    return out


def _auroc(pos: list[float], neg: list[float]) -> float | None:
    """P(an answerable question's P(yes) > an unanswerable one's): how well the probability ranks, any threshold."""
    if not pos or not neg:
        return None
    return round(sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg)), 3)


def fit(write: bool) -> None:
    tuning = [r for s in TUNING for r in _load(s)]
    candidates = sorted({round(r["p"], 4) for r in tuning if r["p"] is not None} | {0.5})
    best = max(candidates, key=lambda t: _youden(tuning, t))
    print(f"threshold fitted on tuning ({len(tuning)} questions): {best:.4f}")
    seconds = [r["seconds"] for s in (*TUNING, *HELD_OUT) for r in _load(s)]
    report = {}
    for name in (*TUNING, *HELD_OUT, "devpara", "article+para"):
        rows = _load("article") + _load("para") if name == "article+para" else _load(name)
        if not rows:
            continue
        new = figures(rows, lambda r: refuses(r, best))
        old = figures(rows, lambda r: r.get("kind") != "overview" and bool(r["words_refuse"]))
        old.pop("auroc")
        report[name] = {"judge": new, "word_gate": old}
        print(f"{name:13} judge {_fmt(new)}   | word gate {_fmt(old)}")
    print(f"judgement p50 {statistics.median(seconds):.2f} s over {len(seconds)} questions" if seconds else "")
    if write:
        _write(best, len(tuning), report)


def _youden(rows: list[dict[str, Any]], t: float) -> float:
    f = figures(rows, lambda r: refuses(r, t))
    return float(f["refusals_right"] or 0) - float(f["false_refusals"] or 0)


def _fmt(f: dict[str, Any]) -> str:
    cells = [f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in f.items()]
    return " ".join(cells)


def _write(threshold: float, n: int, report: dict[str, Any]) -> None:
    data = {
        "fitted_on": "tuning split only: tests/data/dev_questions.jsonl + a seed-0 sample of SQuAD 2.0 Normans.json; "
        "never the held-out article questions, their rewordings or Computational_complexity_theory.json",
        "fitted_at": datetime.now(UTC).date().isoformat(),
        "tuning_questions": n,
        "model": "qwen2.5-coder-1.5b-instruct-q4_k_m (local llama.cpp server)",
        "prompt": "answer prompt + answerable_check",
        "criterion": "refuse when a name or number of the question is absent from the document(s), or P(yes) < "
        "threshold (messages of kind 'other': the word gate instead; overviews: never); threshold = max(refusals "
        "right - false refusals) on tuning",
        "thresholds": {"judge": threshold},
        "report": report,
    }
    path = ROOT / "rag" / "answer" / "thresholds.json"
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(f"written to {path}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["collect"]:
        collect(sys.argv[2:] or [*TUNING, *HELD_OUT, "devpara"])
    elif sys.argv[1:2] == ["fit"]:
        fit("--write" in sys.argv)
    else:
        print(__doc__)
        sys.exit(2)
