"""Scoring a one-word yes/no reply by its token probabilities (llama.cpp's server and OpenAI both send them).

The score is P(yes) / (P(yes) + P(no)), each summed over the first token's top alternatives that read "yes" or
"no" whatever their case or leading space ("Yes", " yes", "YES"): greedy decoding would give only the top word,
and with a small model that word over-refuses; a probability can be thresholded where held-out data says.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

TOP_LOGPROBS = 10


def first_token_alternatives(response: Any) -> list[tuple[str, float]]:
    """(token, logprob) of the first generated token's top alternatives (else the token itself); [] without."""
    try:
        content = response.choices[0].logprobs.content
    except (AttributeError, IndexError, TypeError):
        return []
    if not content:
        return []
    first = content[0]
    pairs = [(str(t.token), float(t.logprob)) for t in (getattr(first, "top_logprobs", None) or [])]
    if not pairs and getattr(first, "token", None) is not None and getattr(first, "logprob", None) is not None:
        pairs = [(str(first.token), float(first.logprob))]
    return [(token, lp) for token, lp in pairs if math.isfinite(lp)]


def yes_share(top: Sequence[tuple[str, float]]) -> float | None:
    """P(yes) / (P(yes) + P(no)) from (token, logprob) pairs, or None when neither word is among them."""
    p_yes = sum(math.exp(lp) for token, lp in top if token.strip().lower() == "yes")
    p_no = sum(math.exp(lp) for token, lp in top if token.strip().lower() == "no")
    return p_yes / (p_yes + p_no) if p_yes + p_no > 0 else None
