"""Word-level text analysis shared by the sentence checks, the answer-or-refuse decision and the quote choice.

Plain functions over strings: tokens, stems, numbers and names. Sentence boundaries are rag.text's.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable

import simplemma
import Stemmer

from rag.text import sentence_spans

# Hyphens and apostrophes split words, so "Turkish-Russian" yields two names and "Turkey's" yields "Turkey".
# Letters are any script's ("Pérez", "Erdoğan"): ASCII-only words cut "Pérez" into "P" + "rez", and a lone
# capital "P" then counted as a name missing from every passage.
_WORD = re.compile(r"[^\W\d_]+|\d+(?:[.,]\d+)*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_POSSESSIVE = re.compile(r"['’]s\b")

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing done down during each either else ever few for from further
    had has have having he her here hers herself him himself his how i if in into is it its itself just let me
    more most much my myself no nor not now of off on once only or other our ours ourselves out over own per
    quite rather same she should so some such than that the their theirs them themselves then there these they
    this those through thus to too under until up upon us very via was we were what when where whether which
    while who whom whose why will with within without would yet you your yours yourself s t d ll m re ve y
    many one two like made make makes making get got say says said tell told way well even still since among
    however moreover therefore although though despite given according mentioned stated state states
    passage passages article author text answer question write writes wrote describe described explain
    main kind sort thing things lot lots didn doesn don isn wasn aren weren hasn haven couldn wouldn shouldn""".split()  # noqa: SIM905
)

_stemmer = Stemmer.Stemmer("english")


def words(text: str) -> list[str]:
    """Word and number tokens, possessives removed, original case kept."""
    return _WORD.findall(_POSSESSIVE.sub("", text))


@functools.lru_cache(maxsize=20_000)
def stem(word: str) -> str:
    """Snowball stem of the word's dictionary form: the stemmer alone leaves irregular forms apart ("oversaw"
    vs "oversee", "sought" vs "seek"), and simplemma's maintained lexicon maps them to one lemma first.
    Its lemma of a name is capitalised ("eurasia" -> "Eurasia"): lowered again, as stems are compared lowercase."""
    lemma = simplemma.lemmatize(word.lower(), lang="en")
    return str(_stemmer.stemWord(lemma.lower()))


def content_stems(text: str) -> list[str]:
    """Stems of the words that carry meaning (no stopwords, no single letters), in order."""
    return [stem(w) for w in words(text) if len(w) > 1 and w.lower() not in STOPWORDS]


def numbers(text: str) -> set[str]:
    """Numbers written with digits, thousands separators removed ("$1,200" -> "1200")."""
    return {n.replace(",", "").rstrip(".") for n in _NUMBER.findall(text)}


def names(text: str, first_words: bool = True) -> set[str]:
    """Capitalised words (likely names), lowercased. A sentence's first word counts unless it looks like an
    ordinary word put first ("Strengthening", "Expected"): "Greece launched ..." must be checked. Questions pass
    first_words=False: their first word is an instruction ("List", "Summarize"), not a name."""
    found: set[str] = set()
    clauses = (c for s, e in sentence_spans(text) for c in _CLAUSE_BREAK.split(text[s:e]))
    for clause in clauses:
        for i, token in enumerate(words(clause)):
            if not token[0].isupper() or token.lower() in STOPWORDS:
                continue
            if i == 0 and (not first_words or _ORDINARY_START.search(token)):
                continue
            found.add(token.lower())
    return found


_CLAUSE_BREAK = re.compile(r"(?<=[;:])\s+")  # "...: Greece launched" starts afresh like a sentence
_ORDINARY_START = re.compile(r"(?:ing|ed|ly|ies|es|ment|tion|ness|ity)$")


def main_names(source_text: str, min_count: int = 3) -> frozenset[str]:
    """Names the article uses often ("Turkey", "Erdogan"): a sentence may name them where its passage says
    "the two countries", so the name check allows them everywhere. Three mentions: a name said once or twice is
    a detail of one passage and must be found there (hand-set in 42f24e7 on the dev questions)."""
    counts: Counter[str] = Counter()
    for token in words(source_text):
        if token[0].isupper() and token.lower() not in STOPWORDS:
            counts[token.lower()] += 1
    return frozenset(name for name, n in counts.items() if n >= min_count)


@functools.lru_cache(maxsize=64)
def name_stems(names: frozenset[str]) -> frozenset[str]:
    """Stems of the documents' main names: they occur in every passage, so they say nothing about support or
    coverage."""
    return frozenset(stem(n) for n in names)


# Questions asking for an amount ("How many ...?", "What percentage ...?") or a date ("When ...?", "What year ...?").
_AMOUNT = re.compile(r"^\s*how\s+(?:much|many|long|large|big|far|old)\b|\bwhat\s+(?:percentage|share|amount|number)\b", re.I)
_DATE = re.compile(r"^\s*(?:when|what year|in what year|which year)\b", re.I)


def asks_amount(question: str) -> bool:
    return bool(_AMOUNT.search(question))


def asks_date(question: str) -> bool:
    return bool(_DATE.search(question))


def stem_in(target: str, stems: Iterable[str], anywhere: bool = True) -> bool:
    """True when `target` is among `stems`, allowing a longer word that contains it. `anywhere` also matches
    inside a word ("realist" in "unrealist": right for "is the topic covered?"); without it only a word that
    starts with it matches ("strateg" in "strategi"), so a claim can't borrow support from its negation."""
    if len(target) < 4:
        return target in stems
    return any(s == target or (target in s if anywhere else s.startswith(target)) for s in stems)
