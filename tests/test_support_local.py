"""The checks against cited falsehoods with the real local model: the support judgement on swapped and
paraphrased sentences (cases on the default article, tuning split), and a false premise on a real web page."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from rag import Settings, add_document, query
from rag.answer.checks import SupportChecker
from rag.answer.decide import threshold
from rag.answer.support import judge_claim
from rag.api import load_chat_model, open_index
from rag.evaluation.web_pages import PAGES, serve

# (true sentence, the same with a word swapped for its opposite). Swaps the judgement misses on the same article
# are listed in docs/decisions.md (2026-12-02): it is a partial check, not a proof.
CASES = [
    ("Erdogan and Putin agreed in Sochi to strengthen the partnership between their countries on many levels, "
     "including the economy and trade.",
     "Erdogan and Putin agreed in Sochi to weaken the partnership between their countries on many levels, "
     "including the economy and trade."),
    ("Turkey's growing frustration with the West played a strong role in shaping its relationship with Russia.",
     "Turkey's growing satisfaction with the West played a strong role in shaping its relationship with Russia."),
]  # fmt: skip


@pytest.mark.llm
@pytest.mark.parametrize(("true", "swapped"), CASES)
def test_a_swapped_word_is_judged_unsupported_and_the_true_sentence_supported(
    article_settings: Settings, true: str, swapped: str
) -> None:
    settings = dataclasses.replace(article_settings, provider="local")
    model = load_chat_model(settings)
    assert model is not None
    passages = [p for d in open_index(settings).scope() for p in open_index(settings).document_passages(d)[0]]
    # The passage retrieval and overlap would cite: overlap alone can't tell the two sentences apart.
    cited = max(passages, key=lambda p: len(SupportChecker().terms_found(true, p.text)))
    kept, dropped = judge_claim(model, [cited], true), judge_claim(model, [cited], swapped)
    assert kept.probability is not None and dropped.probability is not None
    assert kept.passes(threshold("support")) and not dropped.passes(threshold("support"))


@pytest.mark.llm
def test_a_false_premise_gets_the_pages_own_statement_or_a_refusal(tmp_path: Path) -> None:
    # A tuning-split page; the question assumes "twice as much" where the page says "half as much".
    settings = Settings(provider="local", index_dir=tmp_path / "index")
    with serve(PAGES) as base:
        add_document(f"{base}/salon.com.emissions.html", settings=settings)
    answer = query("Why does the US now generate twice as much coal-fired electricity as in 2009?", settings=settings)
    assert answer.refused or ("half" in answer.text and "twice" not in answer.text), answer.text
