"""Follow-up questions: rewrite "How did they manage that rivalry?" into a question that stands alone,
before retrieval. With a model, a short condense prompt; without one (extractive, or the model failed),
the previous question's key words are carried over so retrieval and sentence scoring still see them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.answer.prompts import render
from rag.answer.terms import STOPWORDS, words
from rag.errors import ModelAuthError, ModelError
from rag.models.chat import ChatModel, Message
from rag.types import Turn

# Words that point back into the conversation; a question without them usually stands alone already.
_ANAPHORA = re.compile(
    r"\b(they|them|their|it|its|this|that|these|those|he|she|his|her|there|then|same|other|else|more|also)\b",
    re.IGNORECASE,
)
_MAX_REWRITE_CHARS = 400  # a rewrite this long is the model rambling: questions are capped far lower in practice


def needs_rewrite(question: str, history: Sequence[Turn]) -> bool:
    if not history:
        return False
    return bool(_ANAPHORA.search(question)) or len(question.split()) < 6 or question.lower().startswith("and ")


def carry_terms(question: str, history: Sequence[Turn]) -> str:
    """The question followed by the previous question's key words it lacks (no model needed)."""
    previous = history[-1].question
    have = {w.lower() for w in words(question)}
    extra = [w for w in dict.fromkeys(words(previous)) if w.lower() not in STOPWORDS and w.lower() not in have]
    return f"{question} ({' '.join(extra)})" if extra else question


def condense(question: str, history: Sequence[Turn], model: ChatModel | None) -> str:
    """The standalone form of `question` (the question itself when it needs none)."""
    if not needs_rewrite(question, history):
        return question
    if model is None:
        return carry_terms(question, history)
    try:
        reply = "".join(model.stream(condense_messages(question, history)))
    except ModelAuthError:
        raise  # a rejected key must be fixed, not hidden behind a weaker rewrite (and a refusal)
    except ModelError:
        return carry_terms(question, history)
    rewritten = _clean(reply)
    # A rewrite that is empty, rambling, or drops every word of the question is worse than carrying terms.
    if not rewritten or len(rewritten) > _MAX_REWRITE_CHARS or not _shares_words(rewritten, question):
        return carry_terms(question, history)
    return rewritten


def condense_messages(question: str, history: Sequence[Turn]) -> list[Message]:
    earlier = "\n".join(f"- {t.question.strip()}" for t in history[-3:])
    return [
        {"role": "system", "content": render("condense_system")},
        {"role": "user", "content": render("condense_user", history=earlier, question=question.strip())},
    ]


def _clean(reply: str) -> str:
    line = reply.strip().splitlines()[0] if reply.strip() else ""
    line = re.sub(r"^(rewritten question|standalone question|question)\s*:\s*", "", line, flags=re.IGNORECASE)
    return line.strip().strip('"“”').strip()


def _shares_words(a: str, b: str) -> bool:
    content_b = {w.lower() for w in words(b) if w.lower() not in STOPWORDS}
    return not content_b or bool(content_b & {w.lower() for w in words(a)})
