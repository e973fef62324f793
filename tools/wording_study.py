"""The whole-document answerability question asked in other wordings (and of the finished answer), over answers
already collected: does one wording, or two averaged, tell answerable from unanswerable questions better than the
shipped `prompts/answerable_check.txt`, and at which threshold?

    python tools/support_fit.py collect SET                  # first: answers with every threshold at 0
    python tools/wording_study.py probe SET [--wordings a,b]  # each wording's P(yes) for SET's records
    python tools/wording_study.py report                     # AUROC of each wording and pair, per set
    python tools/wording_study.py fit [--pair a,b]           # thresholds on tuning, outcomes on every set
    python tools/wording_study.py veto                       # the finished answer's check as a second cut
    python tools/wording_study.py reference SET [SET ...]    # P(yes) centred on a per-page level, label-free

Records are those of `tools/support_fit.py collect` ($SUPPORT_OUT/<set>.jsonl). `probe` makes each question's
plan again through the product's own `make_plan`, holds its document's prefix as the pipeline does, and asks
each wording after the same answer prompt (as `decide.check_messages` appends the shipped one), appending
{question, wording: P(yes)} to <set>.wordings.jsonl; `answer` asks about the recorded answer (answered records
only). `fit` picks a threshold for the shipped wording alone and for the pair averaged (their log-odds, as a
decision over both would), each by support_fit's criterion (refusals right - 2 x false refusals) and by the
product's first promise (fewest false refusals with no more wrong answers shown than the shipped threshold),
on the tuning sets only, and prints every set's outcomes at those thresholds. Sets and splits are support_fit's:
tuning = web-tuning, dev (answered from the whole document); held-out, reported only = web-heldout, article.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

import support_fit as sf  # noqa: E402 - sibling tools, importable once tools/ is on the path
from answerability_fit import _auroc as ranked  # noqa: E402

from rag.answer.decide import _logit  # noqa: E402 - the product's own log-odds, clipped alike

SHIPPED = "answerable_check"  # prompts/answerable_check.txt
WORDINGS = {
    SHIPPED: None,  # read from its prompt file
    "written": "Is the answer to this question written in the passages? Reply yes or no.",
    "contains": "Do the passages contain the information needed to answer this question? Reply yes or no.",
    "premise": "Is everything the question takes for granted true according to the passages, and do they give "
    "its answer? Reply yes or no.",
    "answer": "Proposed answer: $answer\n\nUsing only what the passages say, is the proposed answer a correct "
    "answer to the question? Reply yes or no.",
}
SETS = ("web-tuning", "dev", "web-heldout", "article")
TUNING = ("web-tuning", "dev")


def planned(name: str, done: set[str], prefix: str) -> Iterator[tuple[int, dict[str, Any], Any, Any]]:
    """(index, record, plan, model) for each judged record of `name` not in `done`: the plan made again through the
    product's own `make_plan`, its document's prefix held as the pipeline does."""
    from rag.answer.plan import hold_prefix, make_plan
    from rag.api import load_chat_model, open_index

    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        settings, _ = sf._questions(name, Path(tmp))
        retriever, model = open_index(settings), load_chat_model(settings)
        if model is None:
            raise SystemExit("the local model did not load")
        for i, rec in enumerate(sf.load(name)):
            if rec["question"] in done or rec["p_judge"] is None:
                continue
            plan = make_plan(rec["question"], retriever, settings)
            hold_prefix(plan, model)
            yield i, rec, plan, model


def probe(name: str, wordings: list[str]) -> None:
    """Append the P(yes) of each of `wordings` for every judged record of set `name` (resumable)."""
    from rag.answer.prompts import render
    from rag.models.chat import Message

    out = sf.OUT / f"{name}.wordings.jsonl"
    rows = [json.loads(line) for line in out.open()] if out.exists() else []
    done = {r["question"] for r in rows if all(w in r for w in wordings)}  # those asked every wording wanted
    for i, rec, plan, model in planned(name, done, "wording-"):
        row: dict[str, Any] = {"question": rec["question"]}
        for wording in wordings:
            text = WORDINGS[wording] or render(wording)
            if "$answer" in text and (rec["refused"] or not rec["text"]):
                continue
            *head, last = plan.messages
            asked: Message = {**last, "content": f"{last['content']}\n\n{text.replace('$answer', rec['text'])}"}
            row[wording] = model.yes_probability([*head, asked])
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{name} {i + 1}", flush=True)


def load(name: str) -> list[dict[str, Any]]:
    """support_fit's records of `name` with each wording's P(yes) merged in (a wording asked in several probe
    runs: the last)."""
    recs = {r["question"]: dict(r) for r in sf.load(name)}
    path = sf.OUT / f"{name}.wordings.jsonl"
    for line in path.open() if path.exists() else []:
        row = json.loads(line)
        if row["question"] in recs:
            recs[row["question"]].update({k: v for k, v in row.items() if k != "question"})
    return list(recs.values())


def averaged(rec: dict[str, Any], wordings: tuple[str, ...]) -> float | None:
    """P(yes) with the wordings' log-odds averaged; None if one is missing."""
    odds = [_logit(v) for v in (rec.get(w) for w in wordings) if v is not None]
    return 1 / (1 + math.exp(-sum(odds) / len(odds))) if odds and len(odds) == len(wordings) else None


def auroc(recs: list[dict[str, Any]], wordings: tuple[str, ...]) -> float | None:
    scored = [(averaged(r, wordings), r["answerable"]) for r in recs]
    return _auroc([(s, a) for s, a in scored if s is not None])


def report() -> None:
    """AUROC (answerable vs not) per wording and per pair, on the records that have every pre-answer wording."""
    names = tuple(w for w, text in WORDINGS.items() if "$answer" not in (text or ""))
    for name in SETS:
        recs = [r for r in load(name) if all(r.get(w) is not None for w in names)]
        if recs:
            cells = {"+".join(c): auroc(recs, c) for k in (1, 2) for c in combinations(names, k)}
            print(f"{name} ({len(recs)}): {json.dumps(cells)}")


def outcome(rec: dict[str, Any], wordings: tuple[str, ...], threshold: float, twins: dict[str, Any]) -> str:
    """What the user would have seen had P(yes) (these wordings averaged) been cut at `threshold`: right,
    corrected (a false premise answered with its twin's answer and evidence), refused_right, false_refusal,
    wrong (an answer without the expected words, or an unanswerable question answered and not corrected)."""
    probability = averaged(rec, wordings) if rec["p_judge"] is not None else None
    refused, right = sf.replay({**rec, "p_judge": probability}, threshold, 0.0)  # support not judged (default)
    if refused:
        return "false_refusal" if rec["answerable"] else "refused_right"
    if rec["answerable"]:
        return "right" if right else "wrong"
    from rag.evaluation.web_pages import corrects_text

    twin = twins.get(rec["id"])
    fixed = twin is not None and corrects_text(rec["text"], list(rec.get("cited", {}).values()), rec["question"], twin)
    return "corrected" if fixed else "wrong"


def _twins() -> dict[str, Any]:
    from rag.evaluation.answers import load_questions
    from rag.evaluation.web_pages import WEB_QUESTIONS

    rows = {r["id"]: r for r in load_questions(WEB_QUESTIONS)}
    return {i: rows[r["twin_of"]] for i, r in rows.items() if r.get("kind") == "false_premise" and r.get("twin_of") in rows}


def replayed(recs: list[dict[str, Any]], wordings: tuple[str, ...], threshold: float) -> dict[str, Any]:
    """support_fit's figures with these wordings averaged in place of the recorded P(yes), support not judged."""
    swapped = [{**r, "p_judge": averaged(r, wordings) if r["p_judge"] is not None else None} for r in recs]
    return sf.figures(swapped, threshold, 0.0)


def fit(pair: tuple[str, ...]) -> None:
    """Thresholds for the shipped wording and for `pair` averaged, chosen on tuning two ways; outcomes per set."""
    from rag.answer.decide import threshold

    twins, grid = _twins(), [round(x * 0.01, 2) for x in range(40, 81)]
    sets = {n: [r for r in load(n) if r["p_judge"] is None or averaged(r, pair) is not None] for n in SETS}
    counts = {(w, t): {n: Counter(outcome(r, w, t, twins) for r in recs) for n, recs in sets.items()}
              for w in ((SHIPPED,), pair) for t in grid}  # fmt: skip
    shipped = threshold("judge_whole")
    ceiling = sum(counts[(SHIPPED,), shipped][n]["wrong"] for n in TUNING)  # wrong answers shown on tuning now

    def criterion(w: tuple[str, ...], t: float) -> float:  # support_fit's, summed over the tuning sets
        return sum(sf.utility(replayed(sets[n], w, t)) for n in TUNING if sets[n])

    def false_refusals(w: tuple[str, ...], t: float) -> float:
        return sum(replayed(sets[n], w, t)["false_refusals"] or 0.0 for n in TUNING if sets[n])

    for wordings in ((SHIPPED,), pair):
        by_criterion = max(grid, key=lambda t: criterion(wordings, t))
        allowed = [t for t in grid if sum(counts[wordings, t][n]["wrong"] for n in TUNING) <= ceiling]
        by_promise = min(allowed, key=lambda t: (false_refusals(wordings, t), -t)) if allowed else None
        for label, t in (("criterion", by_criterion), ("first promise", by_promise)):
            if t is not None:
                print(f"{' + '.join(wordings)} at {t} ({label}):")
                for n in SETS:
                    print(f"  {n:12} {dict(sorted(counts[wordings, t][n].items()))}")
    print(f"shipped: {SHIPPED} at {shipped}; wrong answers shown on tuning then: {ceiling}")


def veto() -> None:
    """The shipped judgement, then the finished answer refused when P(yes) of `answer` is below a second cut: both
    cuts chosen on web-tuning (dev has no `answer` probe) for the fewest false refusals with no more wrong answers
    shown than the shipped threshold; outcomes on the web sets."""
    from rag.answer.decide import threshold

    twins, sets = _twins(), {n: load(n) for n in ("web-tuning", "web-heldout")}

    def seen(rec: dict[str, Any], cut: float, cut_answer: float) -> str:
        shown = outcome(rec, (SHIPPED,), cut, twins)
        if shown in ("false_refusal", "refused_right") or rec.get("answer") is None or rec["answer"] >= cut_answer:
            return shown
        return "false_refusal" if rec["answerable"] else "refused_right"

    shipped = threshold("judge_whole")
    base = Counter(seen(r, shipped, 0.0) for r in sets["web-tuning"])
    grid = [(c / 100, a / 100) for c in range(50, 70) for a in range(0, 90, 2)]
    tried = {cuts: Counter(seen(r, *cuts) for r in sets["web-tuning"]) for cuts in grid}
    allowed = [cuts for cuts, c in tried.items() if c["wrong"] <= base["wrong"]]
    best = min(allowed, key=lambda cuts: (tried[cuts]["false_refusal"], -tried[cuts]["refused_right"]))
    for label, cuts in (("shipped", (shipped, 0.0)), ("with the veto", best)):
        print(f"{label} {cuts}: " + "; ".join(f"{n} {dict(sorted(Counter(seen(r, *cuts) for r in recs).items()))}"
                                              for n, recs in sets.items()))  # fmt: skip


def reference(names: list[str]) -> None:
    """A label-free per-page level: P(yes) (shipped wording) of questions the model writes about each page's
    central passages (`rag.suggest.candidate`, the app's suggested questions before they are asked); each eval
    question's log-odds less its page's mean, AUROC pooled against the raw log-odds."""
    from rag.answer.decide import judge
    from rag.answer.plan import hold_prefix, make_plan
    from rag.api import load_chat_model, open_index
    from rag.suggest import candidate, try_order

    levels: dict[str, float] = {}
    for name in names:
        with tempfile.TemporaryDirectory(prefix="wording-") as tmp:
            settings, rows = sf._questions(name, Path(tmp))
            retriever, model = open_index(settings), load_chat_model(settings)
            if model is None:
                raise SystemExit("the local model did not load")
            for doc in retriever.scope():
                passages, vectors = retriever.document_passages(doc)
                asked = [q for p in try_order(passages, vectors)[:4] if (q := candidate(model, passages[0].title or "", p))]
                odds = []
                for question in asked:
                    plan = make_plan(question, retriever, settings, kind="factual")
                    hold_prefix(plan, model)
                    if (p_yes := judge(model, plan.messages)) is not None:
                        odds.append(_logit(p_yes))
                if odds:
                    levels[passages[0].source.rsplit("/", 1)[-1].removesuffix(".html")] = sum(odds) / len(odds)
        page: dict[str, str] = {r["id"]: r["page"] for r in rows if "page" in r}  # web sets only
        recs = [r for r in load(name) if r.get(SHIPPED) is not None and page.get(r["id"]) in levels]
        raw = [(_logit(r[SHIPPED]), r["answerable"]) for r in recs]
        centred = [(_logit(r[SHIPPED]) - levels[page[r["id"]]], r["answerable"]) for r in recs]
        print(f"{name} ({len(recs)}): pooled {_auroc(raw)}, centred on the page's level {_auroc(centred)}")


def _auroc(scored: list[tuple[float, bool]]) -> float | None:
    return ranked([s for s, a in scored if a], [s for s, a in scored if not a])


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "probe":
        chosen = args[args.index("--wordings") + 1].split(",") if "--wordings" in args else list(WORDINGS)
        probe(args[1], chosen)
    elif args[:1] == ["report"]:
        report()
    elif args[:1] == ["veto"]:
        veto()
    elif len(args) >= 2 and args[0] == "reference":
        reference(args[1:])
    elif args[:1] == ["fit"]:
        fit(tuple(args[args.index("--pair") + 1].split(",")) if "--pair" in args else (SHIPPED, "written"))
    else:
        sys.exit(__doc__)
