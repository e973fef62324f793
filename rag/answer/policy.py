"""How each kind of question is answered: one frozen `Policy` per kind, so no step tests the kind itself.

- factual:  one fact ("What did they agree on in Sochi?"): the top passages, a 1-3 sentence answer.
- open:     reasons, effects, a process ("Why didn't Turkey align with the West?"): more, diverse passages,
            a quoted lead, up to 8 sentences, the reasons the model left out quoted after it.
- overview: the whole document ("What is this article about?"): every passage when they fit the model's
            context (`WHOLE`), else passages spread across it (`SPREAD`); never refused.
A message the kind model calls "other" (chit-chat, an instruction) takes the factual policy, whose checks refuse it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

Quotes = Literal["best", "reasons", "central"]


@dataclass(frozen=True)
class Policy:
    """Budget, lead, sentence acceptance and fallback of one question kind."""

    kind: str  # "factual", "open" or "overview"
    passages: int  # retrieved passages kept at least (the decision, the fallback and citations use them)
    prompt_passages: int  # of which shown to the model
    prompt_chars: int  # characters of passage text in the prompt (0: whole passages)
    sentences: int  # checked sentences kept at most
    dropped: int  # dropped sentences before generation is stopped
    prompt: str  # the user prompt file
    system: str = "answer_system"  # the system prompt file
    diverse: bool = False  # passages: a diverse pick among more candidates, not the plain top k
    excerpts: bool = True  # each passage cut to its sentences most related to the question (else kept whole)
    lead: int = 0  # sentences quoted before the model writes
    quotes: Quotes = "best"  # how the extractive answer, the fallback and the supplement choose sentences
    refusable: bool = True  # judged before generating (an overview is never refused: it asks for no fact)
    relevance: bool = True  # a kept sentence must share the question's words or meaning
    on_topic: bool = False  # a kept sentence may not drift far below the best one's closeness to the question
    keep_fragment: bool = False  # the reply's unfinished last piece is kept (factual replies are often fragments)
    clip_excerpts: bool = False  # each passage's excerpt is held to its share of prompt_chars
    whole: bool = False  # a document read whole: every passage, in document order, the same prompt prefix each time
    per_passage: int = 0  # a sentence citing only passages that already back this many kept ones is dropped (0: no cap)


# Three passages cut to ~1,050 characters keep the uncached prompt near 250 tokens: the first token waits for the
# prompt to be read (~4 s on 2 cores). A factual answer is 1-3 sentences by design (its prompt asks for that);
# after 4 dropped sentences generation stops, a bound on time (each sentence costs ~1 s here), not a fitted value.
FACTUAL = Policy("factual", passages=0, prompt_passages=3, prompt_chars=1050, sentences=3, dropped=4,
                 prompt="answer_user", keep_fragment=True)  # fmt: skip
# The open prompt holds about as many characters as a factual one, over more passages, so reading it costs
# about the same. Up to 8 sentences: quotes fill what the model's six leave, at no model time. Chosen on the tuning
# open questions (local: key points 0.518 at 6, 0.548 at 8; extractive: 0.47 at 5 quotes, 0.503 at 8). The lead
# is the best sentence and up to two after it (tuning key points 0.555 -> 0.679 with two, 0.715 with three).
FIRST_RUN = 2  # sentences quoted after the best one (see quotes._followed)
OPEN = Policy("open", passages=6, prompt_passages=5, prompt_chars=900, sentences=8, dropped=5,
              prompt="answer_user_open", diverse=True, lead=1 + FIRST_RUN, quotes="reasons", on_topic=True,
              clip_excerpts=True)  # fmt: skip
# An overview's sentences: one main point each, up to 6 (the overview prompt asks for that many).
# Read whole, it shares the system prompt and the passages of the factual and open questions (WHOLE_FACTUAL):
# one prompt prefix per document for every kind of question, read once.
WHOLE = Policy("overview", passages=0, prompt_passages=1_000_000, prompt_chars=0, sentences=6, dropped=6,
               prompt="whole_user_overview", system="whole_system", excerpts=False, quotes="central",
               refusable=False, relevance=False, whole=True)  # fmt: skip
SPREAD_PASSAGES = 8  # passages shown when the documents don't fit: about 2,400 characters, as many tokens as WHOLE's cap
# Spread over a long document, the model tends to spend all six sentences on its first parts; two sentences per
# part at most leaves the rest of the budget to the supplement's quotes from the parts no sentence cites.
SPREAD = Policy("overview", passages=0, prompt_passages=SPREAD_PASSAGES, prompt_chars=2400, sentences=6, dropped=6,
                prompt="overview_user", system="overview_system", excerpts=False, quotes="central",
                refusable=False, relevance=False, per_passage=2)  # fmt: skip


# A short document read whole (rag.answer.whole): its passages in document order under one system prompt, so
# llama.cpp's prompt cache reads them once for every factual and open question about it and for the
# judgements that append to that prompt. The answer's shape is asked for after the question.
WHOLE_FACTUAL = replace(FACTUAL, prompt_passages=1_000_000, prompt_chars=0, excerpts=False, whole=True,
                        system="whole_system", prompt="whole_user")  # fmt: skip
WHOLE_OPEN = replace(OPEN, prompt_passages=1_000_000, prompt_chars=0, excerpts=False, clip_excerpts=False,
                     diverse=False, whole=True, system="whole_system", prompt="whole_user_open")  # fmt: skip


def for_kind(kind: str) -> Policy:
    """The retrieval-path policy of a question kind: an overview asked of a retriever that can't list whole
    documents is answered like an open question (plan.py picks WHOLE or SPREAD when it can)."""
    return FACTUAL if kind == "factual" else OPEN


def read_whole(policy: Policy) -> Policy:
    """The whole-document form of a factual or open policy."""
    return WHOLE_FACTUAL if policy.kind == "factual" else WHOLE_OPEN
