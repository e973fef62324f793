"""Fit the cosine at which a checked sentence counts as relevant by meaning (checks.RELEVANT_COSINE).

    python tools/relevance_fit.py collect [SET ...]   # sentence records to $RELEVANCE_OUT/<set>.jsonl
    python tools/relevance_fit.py fit                 # the threshold from the tuning sets' records

Each question goes through the product's own pipeline (`answer_stream` with the local model); its trace gives,
for every sentence that passed the support check, whether it shares a question word (`shares_words`, the word
rule) and its e5 cosine with the question, so the records show what the meaning rule adds. (The pipeline applies
the current rule while answering, so later sentences of an answer can differ from a run with the word rule
alone; the first fit, in 2026-11, ran the word rule alone.) Labels: a sentence of an unanswerable question
is wrong; one of an answerable question is right when it holds the answer (article sets: a word of every
`answer_any` group; SQuAD: the normalised gold answer); other sentences are unlabelled.

Sets (tools/answerability_fit.py): tuning = dev, devpara (rewordings of dev), normans. Fit on tuning only;
held-out figures come from the end-to-end answers eval (`python -m rag.evaluation.answers`).
"""

from __future__ import annotations

import functools
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

import answerability_fit as sets  # noqa: E402 - the same question sets and samples as the answerability fit

OUT = Path(os.environ.get("RELEVANCE_OUT", "/tmp/relevance-fit"))
TUNING = ("dev", "devpara", "normans")


@functools.cache
def _answer_keys() -> dict[str, dict[str, Any]]:
    """answer_any (article sets) or gold answers (SQuAD) of every question, by id: read once."""
    from rag.evaluation.answers import SHARED

    keys: dict[str, dict[str, Any]] = {}
    for path in (ROOT / "tests/data/dev_questions.jsonl", ROOT / "tests/data/paraphrases.jsonl"):
        for row in sets._jsonl(path):
            keys[row["id"]] = {"answer_any": row.get("answer_any", [])}
    for name in sets.SQUAD_FILES.values():
        data = json.loads((SHARED / "eval" / "squad2" / name).read_text(encoding="utf-8"))["data"][0]
        for para in data["paragraphs"]:
            for qa in para["qas"]:
                keys[qa["id"]] = {"golds": [a["text"] for a in qa["answers"]]}
    return keys


def collect(names: list[str]) -> None:
    from rag.answer.pipeline import SentenceTrace, answer_stream
    from rag.models.chat import get_chat_model

    OUT.mkdir(parents=True, exist_ok=True)
    parts: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="rag-relevance-") as tmp:
        for name in names:
            with (OUT / f"{name}.jsonl").open("w", encoding="utf-8") as out:
                for row in sets.questions(name):
                    if row["corpus"] not in parts:
                        parts[row["corpus"]] = sets._parts(row["corpus"], Path(tmp))
                    retriever, settings = parts[row["corpus"]]
                    records: list[dict[str, Any]] = []

                    def record(name: str, value: Any, records: list[dict[str, Any]] = records) -> None:
                        # every generated sentence that passed support, with the two relevance signals
                        if name == "sentence" and isinstance(value, SentenceTrace) and value.checked is not None:
                            records.append({"claim": value.checked.claim, "words": value.shares_words,
                                            "cosine": value.cosine})  # fmt: skip

                    stream = answer_stream(row["question"], (), settings=settings, retriever=retriever,
                                           model=get_chat_model(settings), trace=record)  # fmt: skip
                    _ = stream.answer  # runs the whole answer; the trace filled `records`
                    out.write(json.dumps({**row, **_answer_keys().get(row["id"], {}), "sentences": records}) + "\n")
            print(f"{name}: done", flush=True)


def label(row: dict[str, Any], claim: str) -> str | None:
    from rag.evaluation.answers import has_answer_words, normalise

    if not row["answerable"]:
        return "wrong"
    if "answer_any" in row:
        return "right" if has_answer_words(row["answer_any"], claim) else None
    return "right" if any(normalise(g) in normalise(claim) for g in row.get("golds", [])) else None


def fit() -> None:
    dropped = []  # (cosine, label) of labelled sentences the word rule dropped
    for name in TUNING:
        path = OUT / f"{name}.jsonl"
        for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
            row = json.loads(line)
            for s in row["sentences"]:
                if not s["words"] and s["cosine"] is not None and (lab := label(row, s["claim"])):
                    dropped.append((s["cosine"], lab))
    right = sum(lab == "right" for _, lab in dropped)
    print(f"tuning: the word rule dropped {right} right and {len(dropped) - right} wrong labelled sentences")
    best: list[float] = []
    score_best = 0
    for t in sorted({round(c, 3) for c, _ in dropped}):
        gain = sum(1 if lab == "right" else -1 for c, lab in dropped if c >= t)
        print(f"  cosine >= {t:.3f}: keeps {sum(lab == 'right' for c, lab in dropped if c >= t)} right, "
              f"{sum(lab == 'wrong' for c, lab in dropped if c >= t)} wrong")  # fmt: skip
        if gain > score_best:
            best, score_best = [t], gain
        elif gain == score_best and best:
            best.append(t)
    if best:
        print(f"best: cosine in [{min(best):.3f}, {max(best):.3f}] (net {score_best} right sentences kept)")


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "collect":
        collect(sys.argv[2:] or list(TUNING))
    elif len(sys.argv) >= 2 and sys.argv[1] == "fit":
        fit()
    else:
        print(__doc__)
