"""Fit the answer-or-refuse thresholds of the whole-document path and of the per-sentence support judgement.

    python tools/support_fit.py collect SET [SET ...]   # records appended to $OUT/<set>.jsonl (resumable)
    python tools/support_fit.py fit [--write]           # thresholds on tuning, figures on every set

Collect runs each question through the product's own pipeline (`answer_stream` with `trace`) with both
thresholds at 0, so nothing is refused by a judgement or dropped by support, and records what the
thresholds would see: the answerability P(yes), each checked sentence's support P(yes), what else was shown
(quotes), and the labels. Fit then replays the decisions for every pair of thresholds: refused when a name is
absent, P(yes) < t_judge, or no sentence reaches t_support; right when the answer holds the expected words.

Sets. Tuning (fit): web-tuning (six pages of shared/corpus/web, tests/data/web_questions.jsonl), dev
(tests/data/dev_questions.jsonl on the default article), normans (SQuAD Normans, seed-0 sample). Held-out
(report only): web-heldout, article (shared article questions and their rewordings), cct (SQuAD
Computational_complexity_theory).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OUT = Path(os.environ.get("SUPPORT_OUT", "/tmp/support-fit"))
TUNING, HELD_OUT = ("web-tuning", "dev", "normans"), ("web-heldout", "article", "cct")
SQUAD = {"normans": "Normans.json", "cct": "Computational_complexity_theory.json"}
PER_KIND = 30
EVERY = int(os.environ.get("SUPPORT_EVERY", "1"))  # every n-th question of a set (2: half, when time is short)
# One false refusal costs as much as this many right refusals: the stated trade-off of the operating point.
FALSE_REFUSAL_COST = float(os.environ.get("SUPPORT_FALSE_REFUSAL_COST", "2.0"))
VARIANT = os.environ.get("SUPPORT_VARIANT", "")  # ".passage": records re-judged against the cited passage


def _questions(name: str, where: Path) -> tuple[Any, list[dict[str, Any]]]:
    """(settings with the set's library, rows with `labels`) for one set."""
    from rag.config import Settings
    from rag.evaluation import answers, web_pages

    settings = dataclasses.replace(Settings.from_env(), provider="local", judge_threshold=0.0,
                                   support_threshold=0.0, index_dir=where / "index", chroma_host=None)  # fmt: skip
    if name.startswith("web-"):
        split = name.removeprefix("web-")
        rows = [r for r in answers.load_questions(web_pages.WEB_QUESTIONS) if r["split"] == split]
        with web_pages.serve(web_pages.PAGES) as base:
            web_pages.add_pages(settings, base, sorted({r["page"] for r in rows}))
        return settings, [{**r, "words": r.get("answer_any", [])} for r in rows]
    if name in SQUAD:
        path = answers.squad_text(SQUAD[name], where)
        indexed = answers._index(settings, [path], where / "index")
        rows = [{"id": q["id"], "question": q["question"], "answerable": not q["is_impossible"],
                 "kind": "answerable" if not q["is_impossible"] else "unanswerable",
                 "golds": [answers.normalise(g["text"]) for g in q["answers"]]}
                for q in answers.squad_sample(SQUAD[name], PER_KIND)]  # fmt: skip
        return indexed, rows
    indexed = answers._index(settings, [settings.corpus_path], where / "index")
    split = "tuning" if name == "dev" else "heldout"
    sets = answers.article_sets(split)
    rows = sets["dev"] if name == "dev" else sets["article+para"]
    return indexed, [{**r, "kind": "answerable" if r["answerable"] else "not_covered",
                      "words": r.get("answer_any", [])} for r in rows]  # fmt: skip


def collect(name: str) -> None:
    """Append one record per question of set `name` to $OUT/<name>.jsonl (questions already there are skipped)."""
    from rag.answer.decide import baseline
    from rag.answer.pipeline import answer_stream
    from rag.answer.plan import prime_documents
    from rag.api import load_chat_model, open_index
    from rag.types import Turn

    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / f"{name}.jsonl"
    done = {json.loads(line)["question"] for line in out.open()} if out.exists() else set()
    with tempfile.TemporaryDirectory(prefix="support-fit-") as tmp:
        settings, rows = _questions(name, Path(tmp))
        rows = rows[:: EVERY]  # a fixed subsample, the same on every run
        retriever, model = open_index(settings), load_chat_model(settings)
        # As the app does when a document is added: its whole-document prefix is read before any question
        # (a first read takes 20-70 s here, past the judgement's request timeout).
        prime_documents(model, retriever, retriever.scope(), settings)
        for i, row in enumerate(rows):
            if row["question"] in done:
                continue
            events: list[tuple[str, Any]] = []
            history = tuple(Turn(q, "") for q in row.get("history", []))
            stream = answer_stream(row["question"], history, settings=settings, retriever=retriever, model=model,
                                   trace=lambda n, v, into=events: into.append((n, v)))  # fmt: skip
            answer = stream.answer
            plan = next(v for n, v in events if n == "plan")
            with out.open("a") as f:  # the content-free P(yes) right after: its prefix is still cached
                f.write(json.dumps({**record(row, events, answer), "baseline": baseline(model, plan)}) + "\n")
            print(f"{name} {i + 1}/{len(rows)} {answer.timings.total:.1f}s", flush=True)


def probe(name: str) -> None:
    """Add the content-free P(yes) (`decide.baseline`) to records collected before it was recorded. The plan is
    made again from the question as asked (a question with history is planned without its condensing)."""
    from rag.answer.decide import baseline
    from rag.answer.plan import make_plan
    from rag.api import load_chat_model, open_index

    path = OUT / f"{name}.jsonl"
    recs = [json.loads(line) for line in path.open()]
    with tempfile.TemporaryDirectory(prefix="support-fit-") as tmp:
        settings, _ = _questions(name, Path(tmp))
        retriever, model = open_index(settings), load_chat_model(settings)
        for i, rec in enumerate(recs):
            if "baseline" not in rec and rec["p_judge"] is not None and model is not None:
                rec["baseline"] = baseline(model, make_plan(rec["question"], retriever, settings))
                print(f"{name} probe {i + 1}/{len(recs)}", flush=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")


def record(row: dict[str, Any], events: list[tuple[str, Any]], answer: Any) -> dict[str, Any]:
    from rag.answer.citations import strip_markers
    from rag.answer.decide import question_coverage

    plan = next(v for n, v in events if n == "plan")
    decision = next(v for n, v in events if n == "decision")
    judged = [(v.claim, v.probability) for n, v in events if n == "support"]
    text = " ".join(strip_markers(answer.text).split())
    rest = text
    for claim, _ in judged:
        rest = rest.replace(" ".join(claim.split()), "")
    t = answer.timings
    scores = [p.score for p in plan.evidence]
    return {
        "id": row.get("id", ""), "question": row["question"], "answerable": bool(row["answerable"]),
        "kind": row.get("kind", ""), "words": row.get("words", []), "golds": row.get("golds", []),
        "reason": decision.reason, "p_judge": decision.probability, "whole": plan.policy.whole,
        "policy": plan.policy.kind, "judged": judged, "quoted": rest.strip(" .") != "" and not answer.refused,
        "refused": answer.refused, "text": text, "marked": answer.text,
        "cited": {str(c.number): c.text for c in answer.citations}, "first_token": t.first_token, "first_shown": t.first_shown,
        "total": t.total, "support_seconds": t.support, "decide_seconds": t.decide,
        "coverage": question_coverage(plan.question, plan.sources, plan.names).ratio,
        "top_score": scores[0] if scores else None,
        "margin": scores[0] - scores[1] if len(scores) > 1 else None,
    }  # fmt: skip


def right(rec: dict[str, Any], text: str) -> bool:
    """The answer holds the expected words (SQuAD: a gold answer)."""
    from rag.evaluation.answers import has_answer_words, normalise

    if rec["golds"]:
        return any(g in normalise(text) for g in rec["golds"])
    return has_answer_words(rec["words"], text) if rec["words"] else True


def replay(rec: dict[str, Any], t_judge: float, t_support: float) -> tuple[bool, bool]:
    """(refused, right) had the thresholds been these."""
    if rec["refused"] and rec["p_judge"] is None:
        return True, False  # refused without a judgement (names absent, no passages, word gate)
    if rec["p_judge"] is not None and rec["p_judge"] < t_judge:
        return True, False
    kept = [c for c, p in rec["judged"] if p is None or p >= t_support]
    if not kept and not rec["quoted"]:
        return True, False
    text = rec["text"]
    for claim, p in rec["judged"]:
        if p is not None and p < t_support:
            text = text.replace(" ".join(claim.split()), "")
    return False, right(rec, text)


def figures(recs: list[dict[str, Any]], t_judge: float, t_support: float) -> dict[str, Any]:
    yes = [r for r in recs if r["answerable"]]
    no = [r for r in recs if not r["answerable"]]
    out = [replay(r, t_judge, t_support) for r in yes]
    refused_no = [replay(r, t_judge, t_support)[0] for r in no]
    return {
        "n": len(recs),
        "refusals_right": round(sum(refused_no) / len(no), 3) if no else None,
        "false_refusals": round(sum(f for f, _ in out) / len(yes), 3) if yes else None,
        "right": round(sum(ok for _, ok in out) / len(yes), 3) if yes else None,
    }


def utility(f: dict[str, Any]) -> float:
    return (f["refusals_right"] or 0.0) - FALSE_REFUSAL_COST * (f["false_refusals"] or 0.0)


def load(name: str) -> list[dict[str, Any]]:
    path = OUT / f"{name}{VARIANT}.jsonl"
    return [json.loads(line) for line in path.open()] if path.exists() else []


def fit(write: bool) -> None:
    """Thresholds maximising (refusals right - 2 x false refusals), averaged over the tuning sets; the judge
    threshold of the whole-document path from the whole-path questions, the support threshold from all."""
    tuning = {n: load(n) for n in TUNING}
    grid = [round(x * 0.02, 2) for x in range(51)]
    best = max(((tj, ts) for tj in grid for ts in grid),
               key=lambda t: (sum(utility(figures(r, *t)) for r in tuning.values() if r), -t[0], -t[1]))  # fmt: skip
    print(f"fitted on {', '.join(n for n in TUNING if tuning[n])}: judge_whole={best[0]} support={best[1]}")
    for name in (*TUNING, *HELD_OUT):
        recs = load(name)
        if recs:
            base = figures(recs, 0.0, 0.0)
            print(f"{name:12} n={len(recs)} fitted {figures(recs, *best)}  no judgement {base}")
    if write:
        path = ROOT / "rag" / "answer" / "thresholds.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        data["thresholds"].update(judge_whole=best[0], support=best[1])
        data["support_fit"] = {
            "fitted_on": "tuning split only: " + ", ".join(TUNING) + " (tools/support_fit.py)",
            "fitted_at": datetime.now(UTC).date().isoformat(),
            "criterion": f"max over tuning sets of refusals right - {FALSE_REFUSAL_COST} x false refusals",
            "report": {n: figures(load(n), *best) for n in (*TUNING, *HELD_OUT) if load(n)},
        }
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def features(rec: dict[str, Any]) -> list[float] | None:
    """The signals one answer-or-refuse decision could combine, or None when no judgement ran (refused by
    names absent or no passages: those stay refusals)."""
    if rec["p_judge"] is None:
        return None
    support = [p for _, p in rec["judged"] if p is not None]
    return [rec["p_judge"], min(support, default=1.0), float(bool(support)), float(rec["policy"] == "open")]


def logistic(rows: list[tuple[list[float], bool]], l2: float = 0.01, steps: int = 4000) -> list[float]:
    """Weights (bias last) of a logistic model of "answerable" over standardised features, by gradient descent
    with numpy; written here because it is a dozen lines and the project has no other use for a fitting library."""
    import numpy as np

    x = np.array([f for f, _ in rows], dtype=float)
    y = np.array([float(a) for _, a in rows])
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = np.hstack([(x - mean) / std, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-z @ w))
        w -= 0.1 * (z.T @ (p - y) / len(y) + l2 * np.r_[w[:-1], 0.0])
    return [*((w[:-1] / std).tolist()), float(w[-1] - (w[:-1] * mean / std).sum())]


def score(weights: list[float], feats: list[float]) -> float:
    import math

    return 1 / (1 + math.exp(-(sum(w * f for w, f in zip(weights, feats, strict=False)) + weights[-1])))


def combined(recs: list[dict[str, Any]], weights: list[float], cut: float) -> dict[str, Any]:
    """Figures when one decision after the sentences were judged answers (all checked sentences) or refuses."""
    yes = [r for r in recs if r["answerable"]]
    no = [r for r in recs if not r["answerable"]]

    def refused(r: dict[str, Any]) -> bool:
        f = features(r)
        return f is None or (not r["judged"] and not r["quoted"]) or score(weights, f) < cut

    return {
        "n": len(recs),
        "refusals_right": round(sum(refused(r) for r in no) / len(no), 3) if no else None,
        "false_refusals": round(sum(refused(r) for r in yes) / len(yes), 3) if yes else None,
        "right": round(sum(not refused(r) and right(r, r["text"]) for r in yes) / len(yes), 3) if yes else None,
    }


def fit_combined() -> None:
    tuning = [r for n in TUNING for r in load(n)]
    rows = [(f, r["answerable"]) for r in tuning if (f := features(r)) is not None]
    weights = logistic(rows)
    cuts = [round(x * 0.02, 2) for x in range(51)]
    best = max(cuts, key=lambda c: (sum(utility(combined(load(n), weights, c)) for n in TUNING if load(n)), -c))
    print(f"combined: weights {[round(w, 3) for w in weights]} (p_judge, min support, judged, open, bias) cut {best}")
    for name in (*TUNING, *HELD_OUT):
        if load(name):
            print(f"{name:12} combined {combined(load(name), weights, best)}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["collect"]:
        for set_name in sys.argv[2:]:
            collect(set_name)
    elif sys.argv[1:2] == ["probe"]:
        for set_name in sys.argv[2:]:
            probe(set_name)
    elif sys.argv[1:2] == ["fit"]:
        fit("--write" in sys.argv)
        fit_combined()
    else:
        raise SystemExit(__doc__)
