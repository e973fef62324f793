"""The answer's own token probabilities as an answer-or-refuse signal: does the model write its first sentence with
more confidence when the document answers the question than when it does not (a copied fact vs a made-up one)?

    python tools/support_fit.py collect SET             # first: answers with every threshold at 0
    python tools/confidence_study.py probe SET          # each judged record's first sentence with its logprobs
    python tools/confidence_study.py report             # AUROC of each signal, alone and with P(yes), per set
    python tools/confidence_study.py fit                # thresholds on tuning, outcomes on every set

`probe` makes each question's plan again through the product's own `make_plan`, holds its prefix as the
pipeline does, and generates the answer greedily (the product's temperature is 0, so this is the answer the
user would see) with `logprobs`, keeping the first sentence's tokens (to its first citation marker) in
<set>.confidence.jsonl. The signal would cost no extra request: the product streams these same tokens. Sets and
splits are wording_study's: tuning = web-tuning, dev; held-out, reported only = web-heldout, article.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

import support_fit as sf  # noqa: E402 - sibling tools, importable once tools/ is on the path
import wording_study as ws  # noqa: E402

from rag.answer.decide import _logit  # noqa: E402 - the product's own log-odds, clipped alike

MAX_TOKENS = 48  # a first sentence; longer ones are cut, which the mean over what was read tolerates
MARKER = re.compile(r"\[\d")  # a citation marker ends the first sentence's claim


def probe(name: str) -> None:
    """Append the first sentence's (token, logprob, top-5 logprobs) for every judged record of `name`."""
    out = sf.OUT / f"{name}.confidence.jsonl"
    done = {json.loads(line)["question"] for line in out.open()} if out.exists() else set()
    for i, rec, plan, model in ws.planned(name, done, "confidence-"):
        # The product's own SDK client: its chat API streams text only, and this needs each token's logprob.
        reply = cast(Any, model)._sdk().chat.completions.create(
            model=model.model, messages=list(plan.messages), max_tokens=MAX_TOKENS, temperature=0.0,
            logprobs=True, top_logprobs=5,
        )  # fmt: skip
        tokens = [[t.token, t.logprob, [a.logprob for a in t.top_logprobs or []]]
                  for t in reply.choices[0].logprobs.content or []]  # fmt: skip
        with out.open("a") as f:
            f.write(json.dumps({"question": rec["question"], "tokens": tokens}) + "\n")
        print(f"{name} {i + 1}", flush=True)


def first_claim(tokens: list[list[Any]]) -> list[list[Any]]:
    """The tokens before the first citation marker (all of them if there is none); a reply that opens with its
    marker ("[2] Coal has ...") is read from after it."""
    if "".join(t[0] for t in tokens[:3]).lstrip().startswith("["):
        close = next((i for i, t in enumerate(tokens) if "]" in t[0]), len(tokens) - 1)
        tokens = tokens[close + 1 :]
    text = ""
    for i, (token, _, _) in enumerate(tokens):
        text += token
        if MARKER.search(text):
            while i > 0 and "[" not in tokens[i][0]:
                i -= 1
            return tokens[:i]  # the '[' token and what follows it are not the claim
    return tokens


def signals(tokens: list[list[Any]]) -> dict[str, float] | None:
    """Mean and minimum logprob over the claim's tokens, and its mean entropy over the top-5 alternatives."""
    claim = [t for t in first_claim(tokens) if t[0].strip()]
    if not claim:
        return None
    logps = [t[1] for t in claim]

    def entropy(alts: list[float]) -> float:
        ps = [math.exp(a) for a in alts]
        return -sum(p * a for p, a in zip(ps, alts, strict=True)) / max(sum(ps), 1e-9)

    return {"mean": sum(logps) / len(logps), "min": min(logps),
            "entropy": -sum(entropy(t[2]) for t in claim) / len(claim)}  # fmt: skip


def load(name: str) -> list[dict[str, Any]]:
    """wording_study's records with the confidence signals merged in (None when not probed)."""
    recs = {r["question"]: r for r in ws.load(name)}
    path = sf.OUT / f"{name}.confidence.jsonl"
    for line in path.open() if path.exists() else []:
        row = json.loads(line)
        if row["question"] in recs and (found := signals(row["tokens"])):
            recs[row["question"]].update(found)
    return list(recs.values())


def features(rec: dict[str, Any], names: tuple[str, ...]) -> list[float]:
    return [_logit(rec[ws.SHIPPED]) if n == "p_yes" else rec[n] for n in names]


def fit_logistic(names: tuple[str, ...]) -> list[float]:
    """support_fit's numpy logistic over `names` on the tuning records (it standardises the features itself)."""
    return sf.logistic([(features(r, names), r["answerable"]) for n in ws.TUNING for r in load(n) if usable(r, names)])


def usable(rec: dict[str, Any], names: tuple[str, ...]) -> bool:
    return rec["p_judge"] is not None and all(rec.get(ws.SHIPPED if n == "p_yes" else n) is not None for n in names)


def scorer(names: tuple[str, ...]) -> Any:
    weights = fit_logistic(names)
    return lambda rec: sf.score(weights, features(rec, names))


SETS_OF_SIGNALS = (("p_yes",), ("mean",), ("min",), ("entropy",), ("p_yes", "mean"), ("p_yes", "min"),
                   ("p_yes", "entropy"), ("p_yes", "mean", "min", "entropy"))  # fmt: skip


def report() -> None:
    """AUROC per signal set (logistic fitted on tuning; one signal alone is its own ranking), per set."""
    for names in SETS_OF_SIGNALS:
        score = scorer(names)
        cells = {}
        for n in ws.SETS:
            recs = [r for r in load(n) if usable(r, names)]
            cells[n] = ws._auroc([(score(r), r["answerable"]) for r in recs]), len(recs)
        print(" + ".join(names), json.dumps(cells))


def fit(names: tuple[str, ...]) -> None:
    """Cut on the fitted score chosen on tuning by the first promise (fewest false refusals with no more wrong
    answers shown than the shipped threshold); outcomes per set, against the shipped decision."""
    from rag.answer.decide import threshold

    twins, score = ws._twins(), scorer(names)
    sets = {n: [r for r in load(n) if r["p_judge"] is None or usable(r, names)] for n in ws.SETS}

    def seen(rec: dict[str, Any], cut: float | None) -> str:
        if cut is None or rec["p_judge"] is None:
            return ws.outcome(rec, (ws.SHIPPED,), threshold("judge_whole"), twins)
        return ws.outcome({**rec, "p_fit": score(rec)}, ("p_fit",), cut, twins)

    shipped = {n: Counter(seen(r, None) for r in recs) for n, recs in sets.items()}
    ceiling = sum(shipped[n]["wrong"] for n in ws.TUNING)
    tried = {c / 100: {n: Counter(seen(r, c / 100) for r in sets[n]) for n in ws.TUNING} for c in range(5, 96)}
    allowed = [c for c, by in tried.items() if sum(by[n]["wrong"] for n in ws.TUNING) <= ceiling]
    best = min(allowed, key=lambda c: (sum(tried[c][n]["false_refusal"] for n in ws.TUNING), -c))
    print(f"{' + '.join(names)}: cut {best} (first promise on tuning; wrong shown on tuning now {ceiling})")
    for n, recs in sets.items():
        print(f"  {n:12} shipped {dict(sorted(shipped[n].items()))}")
        print(f"  {'':12} fitted  {dict(sorted(Counter(seen(r, best) for r in recs).items()))}")


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "probe":
        probe(args[1])
    elif args[:1] == ["report"]:
        report()
    elif args[:1] == ["fit"]:
        fit(tuple(args[1].split(",")) if len(args) > 1 else ("p_yes", "mean"))
    else:
        sys.exit(__doc__)
