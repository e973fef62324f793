"""Fit one answer-or-refuse decision over several signals, from the records `tools/support_fit.py collect` wrote.

    python tools/decision_fit.py [--signals=p_judge,calibrated,...] [--write]

Each record holds what the decision sees before anything is generated (`rag.answer.decide.signals`): the
answerability P(yes), question-word coverage, the retrieval margin, the question's kind and whether the document
was read whole. A logistic model of "the question is answerable" is fitted with numpy on the tuning sets, the
cut chosen there for the stated trade-off (refusals right - FALSE_REFUSAL_COST x false refusals, averaged over the
tuning sets), and every set is reported: the shipped single threshold, the combined model, and the model with each
signal left out (a signal that doesn't earn its weight on the held-out sets is dropped). --write stores the
weights with where and when they were fitted in rag/answer/thresholds.json ("decision").
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.support_fit import FALSE_REFUSAL_COST, HELD_OUT, TUNING, load, right  # noqa: E402

Rec = dict[str, Any]


def logistic(x: Sequence[Sequence[float]], y: Sequence[bool], l2: float = 0.01, steps: int = 4000) -> list[float]:
    """Weights (bias last) of a logistic model over standardised features, by gradient descent with numpy;
    written here because it is a dozen lines and the project has no other use for a fitting library."""
    import numpy as np

    a = np.array(x, dtype=float)
    t = np.array([float(v) for v in y])
    mean, std = a.mean(axis=0), a.std(axis=0) + 1e-9
    z = np.hstack([(a - mean) / std, np.ones((len(a), 1))])
    w = np.zeros(z.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-z @ w))
        w -= 0.1 * (z.T @ (p - t) / len(t) + l2 * np.r_[w[:-1], 0.0])
    return [*((w[:-1] / std).tolist()), float(w[-1] - (w[:-1] * mean / std).sum())]


def with_signals(rec: Rec) -> Rec:
    """The record with the decision's signals computed by the product's own function from what was recorded
    (None when no judgement ran: its refusal or answer stands)."""
    from rag.answer.decide import signal_values

    if rec["p_judge"] is None:
        return {**rec, "signals": None}
    values = signal_values(rec["p_judge"], rec.get("baseline"), rec["coverage"], rec["margin"], rec["policy"],
                           rec["whole"])  # fmt: skip
    return {**rec, "signals": values}


def vector(rec: Rec, names: Sequence[str]) -> list[float] | None:
    """The record's signals named `names`, or None when no judgement ran."""
    s = rec["signals"]
    return None if s is None else [float(s[n]) for n in names]


def outcome(rec: Rec, refuse: Callable[[Rec], bool]) -> tuple[bool, bool]:
    """(refused, right) when the decision before generating is `refuse`; what came after is as recorded."""
    if rec["signals"] is None or rec["refused"]:
        return rec["refused"], not rec["refused"] and right(rec, rec["text"])
    if refuse(rec):
        return True, False
    return False, right(rec, rec["text"])


def figures(recs: Sequence[Rec], refuse: Callable[[Rec], bool]) -> dict[str, Any]:
    yes = [outcome(r, refuse) for r in recs if r["answerable"]]
    no = [outcome(r, refuse)[0] for r in recs if not r["answerable"]]
    return {
        "n": len(recs),
        "refusals_right": round(sum(no) / len(no), 3) if no else None,
        "false_refusals": round(sum(f for f, _ in yes) / len(yes), 3) if yes else None,
        "right": round(sum(ok for _, ok in yes) / len(yes), 3) if yes else None,
    }


def utility(f: dict[str, Any]) -> float:
    return (f["refusals_right"] or 0.0) - FALSE_REFUSAL_COST * (f["false_refusals"] or 0.0)


def probability(weights: Sequence[float], feats: Sequence[float]) -> float:
    z = sum(w * f for w, f in zip(weights, feats, strict=False)) + weights[-1]
    return 1 / (1 + math.exp(-max(-50.0, min(50.0, z))))


def fit(names: Sequence[str], sets: dict[str, list[Rec]]) -> tuple[list[float], float]:
    """(weights, cut) fitted on the tuning sets."""
    rows = [(v, r["answerable"]) for n in TUNING for r in sets[n] if (v := vector(r, names)) is not None]
    weights = logistic([v for v, _ in rows], [a for _, a in rows])
    cuts = [round(c * 0.02, 2) for c in range(51)]

    def total(cut: float) -> float:
        rule = refuser(names, weights, cut)
        return sum(utility(figures(sets[n], rule)) for n in TUNING if sets[n])

    return weights, max(cuts, key=lambda c: (total(c), -c))


def refuser(names: Sequence[str], weights: Sequence[float], cut: float) -> Callable[[Rec], bool]:
    def refuse(rec: Rec) -> bool:
        v = vector(rec, names)
        return v is not None and probability(weights, v) < cut

    return refuse


def shipped(rec: Rec) -> bool:
    """The single fitted threshold on P(yes) in force today."""
    from rag.answer.decide import threshold

    p = rec["p_judge"]
    return p is not None and p < threshold("judge_whole" if rec["whole"] else "judge")


def report(sets: dict[str, list[Rec]], rule: Callable[[Rec], bool]) -> dict[str, Any]:
    out: dict[str, Any] = {n: figures(sets[n], rule) for n in (*TUNING, *HELD_OUT) if sets[n]}
    held = [f for n, f in out.items() if n in HELD_OUT]
    out["held-out utility"] = round(sum(utility(f) for f in held) / len(held), 3) if held else None
    return out


def auroc(recs: Sequence[Rec], names: Sequence[str], weights: Sequence[float]) -> float | None:
    """How well the model's probability ranks answerable above unanswerable questions (ties count half)."""
    scored = [(probability(weights, v), r["answerable"]) for r in recs if (v := vector(r, names)) is not None]
    pos, neg = [p for p, a in scored if a], [p for p, a in scored if not a]
    if not pos or not neg:
        return None
    return round(sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / len(pos) / len(neg), 3)


def main(write: bool, chosen: Sequence[str] | None) -> None:
    from rag.answer.decide import SIGNALS as CANDIDATES

    SIGNALS = tuple(chosen or CANDIDATES)  # noqa: N806 - the signals this fit uses: all candidates, or --signals

    sets = {n: [with_signals(r) for r in load(n) if "coverage" in r] for n in (*TUNING, *HELD_OUT)}
    print("shipped threshold", json.dumps(report(sets, shipped)))
    weights, cut = fit(SIGNALS, sets)
    print(f"all signals {dict(zip(SIGNALS, (round(w, 3) for w in weights), strict=False))} "
          f"bias {weights[-1]:.3f} cut {cut}")  # fmt: skip
    print("  ", json.dumps(report(sets, refuser(SIGNALS, weights, cut))))
    print("   AUROC", {n: auroc(sets[n], SIGNALS, weights) for n in (*TUNING, *HELD_OUT)})
    for left in SIGNALS:
        names = [n for n in SIGNALS if n != left]
        w, c = fit(names, sets)
        print(f"without {left}: cut {c}", json.dumps(report(sets, refuser(names, w, c))))
    if write:
        path = ROOT / "rag" / "answer" / "thresholds.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        data["decision"] = {
            "fitted_on": "tuning split only: " + ", ".join(TUNING) + " (tools/decision_fit.py, records of "
                         "tools/support_fit.py); never " + ", ".join(HELD_OUT),  # fmt: skip
            "model": "qwen2.5-coder-1.5b-instruct-q4_k_m (local llama.cpp server)",
            "fitted_at": datetime.now(UTC).date().isoformat(),
            "criterion": f"logistic model of answerable; cut = max over tuning sets of refusals right - "
                         f"{FALSE_REFUSAL_COST} x false refusals",  # fmt: skip
            "signals": list(SIGNALS), "weights": weights[:-1], "bias": weights[-1], "cut": cut,
            "report": report(sets, refuser(SIGNALS, weights, cut)),
        }  # fmt: skip
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    picked = next((a.split("=", 1)[1].split(",") for a in sys.argv if a.startswith("--signals=")), None)
    main("--write" in sys.argv, picked)
