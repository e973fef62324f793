"""Pure rendering helpers for the chat UI: escaped HTML, highlighted articles, the Markdown export.

No Streamlit here, so every function is unit-tested directly. Document and answer text are data: every
byte of it goes through `escape_text` (HTML *and* Markdown specials become entities) before it meets
`unsafe_allow_html`, so a document holding `<script>` or `![img](…)` shows as the characters it contains.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from rag.types import NOT_COVERED, Answer, Citation

# Characters that HTML or Streamlit's Markdown (CommonMark + GFM, math, emoji shortcodes, `:color[..]`)
# could interpret. Numeric entities decode back to the same characters when displayed.
_SPECIAL = set("&<>\"'`*_[](){}#+-!|~$:\\=^@")
_MD_SPECIAL = set("\\`*_{}[]()#+-.!|<>~$:^=")
_MARKER = re.compile(r"\[(\d{1,3})\]")
_GAP = '<span class="rag-gap">&#91;…&#93;&#10;&#10;</span>'
ARTICLE_LIMIT = 150_000  # characters of a document shown whole in the article view
_PARA_BREAK = re.compile(r"\n[ \t]*\n\s*")


PROVIDER_LABELS = {
    "local": "Local model (llama.cpp, offline)",
    "openai": "OpenAI",
    "openai-compatible": "OpenAI-compatible server",
    "extractive": "Extractive: quotes only, no language model",
}


@dataclass(frozen=True)
class Mark:
    """A highlighted span of a source text. `label` is shown at its start; `anchor` is the HTML id there."""

    label: str
    start: int
    end: int
    anchor: str
    focused: bool = False


@dataclass(frozen=True)
class Exchange:
    """One question and its finished answer, as the Markdown export needs them."""

    question: str
    answer: Answer


def escape_text(text: str) -> str:
    """Escape for an HTML block inside Markdown: specials become numeric entities, newlines `&#10;`.

    A blank line would end the HTML block and let Markdown parse the rest, so no raw newline survives.
    """
    out = []
    for ch in text:
        if ch == "\n":
            out.append("&#10;")
        elif ch == "\r":
            continue
        elif ch in _SPECIAL:
            out.append(f"&#{ord(ch)};")
        elif ord(ch) < 32 and ch != "\t":
            # Control characters (NUL included) are shown as U+FFFD rather than passed to the browser.
            out.append("\ufffd")
        else:
            out.append(ch)
    return "".join(out)


def escape_markdown(text: str) -> str:
    """Backslash-escape Markdown specials, for text that st.markdown/st.write_stream render (HTML is already
    escaped by Streamlit there). Escaping is per character, so it can be applied to stream deltas one by one."""
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in text).replace("\x00", "\ufffd")


def escape_stream(deltas: Iterable[str]) -> Iterator[str]:
    """The deltas of a streamed answer, Markdown-escaped for `st.write_stream`."""
    for delta in deltas:
        if delta:
            yield escape_markdown(delta)


def paragraph_starts(text: str) -> list[int]:
    """Offsets where paragraphs (blocks separated by a blank line) begin; the first is the first non-space."""
    first = len(text) - len(text.lstrip())
    starts = [first] if first < len(text) else []
    starts += [m.end() for m in _PARA_BREAK.finditer(text) if m.end() < len(text) and m.end() > first]
    return starts


def paragraph_number(text: str, offset: int) -> int:
    """1-based number of the paragraph holding `offset` (offsets before the first paragraph give 1)."""
    count = sum(1 for s in paragraph_starts(text) if s <= offset)
    return max(count, 1)


def locate(text: str | None, start: int, end: int) -> str:
    """Where a span sits, for people: 'paragraph 3 · characters 120–245'."""
    where = f"characters {start:,}–{end:,}"
    if text is None or not 0 <= start <= len(text):
        return where
    first, last = paragraph_number(text, start), paragraph_number(text, max(start, end - 1))
    paras = f"paragraph {first}" if first == last else f"paragraphs {first}–{last}"
    return f"{paras} of {len(paragraph_starts(text))} · {where}"


def place(cite: Citation, text: str | None) -> str:
    """Where a cited passage sits: 'page 2 · characters 1,204–1,388' for paged formats (PDF), else as `locate`."""
    if cite.page is not None:
        return f"page {cite.page} · characters {cite.start:,}–{cite.end:,}"
    return locate(text, cite.start, cite.end)


def cite_heading(cite: Citation, text: str | None) -> str:
    """A citation card's heading (Markdown): '**[1]** Title · page 2 · characters …', the title escaped."""
    name = " ".join(cite.title.split()) or source_name(cite.source)
    return f"**[{cite.number}]** " + escape_markdown(f"{name} · {place(cite, text)}")


def source_name(source: str) -> str:
    """A URL as given, a file by its name."""
    if re.match(r"^https?://", source, re.IGNORECASE):
        return source
    return source.rsplit("/", 1)[-1] or source


def answer_html(text: str) -> str:
    """The answer, escaped, with its [n] markers set as small citation badges (the brackets stay in the text)."""
    parts: list[str] = []
    pos = 0
    for m in _MARKER.finditer(text):
        parts.append(escape_text(text[pos : m.start()]))
        parts.append(f'<sup class="rag-cite">&#91;{int(m.group(1))}&#93;</sup>')
        pos = m.end()
    parts.append(escape_text(text[pos:]))
    return f'<div class="rag-answer">{"".join(parts)}</div>'


def quote_html(text: str) -> str:
    """A quoted passage, escaped, as an HTML block."""
    return f'<blockquote class="rag-quote">{escape_text(text.strip())}</blockquote>'


def article_html(
    text: str, marks: Sequence[Mark], spans: Sequence[tuple[int, int]] | None = None, pages: Sequence[int] = ()
) -> str:
    """The text, escaped, paragraphs numbered in the margin, marked spans highlighted and labelled.

    Overlapping marks are fine: the text is cut at every boundary and each piece is highlighted once.
    `spans` limits what is shown (see `shown_spans`); skipped stretches become a "[…]" gap. `pages` are
    the offsets where pages start (PDF): each gets a "page N" marker.
    """
    valid = [m for m in marks if 0 <= m.start < m.end <= len(text)]
    shown = [(max(a, 0), min(b, len(text))) for a, b in (spans or [(0, len(text))])]
    paras = paragraph_starts(text)
    para_no = {s: i for i, s in enumerate(paras, 1)}
    page_no = {s: i for i, s in enumerate(pages, 1) if 0 <= s < len(text)}
    bounds = {x for span in shown for x in span}
    cuts = sorted({0, len(text), *paras, *page_no, *bounds, *(m.start for m in valid), *(m.end for m in valid)})
    out: list[str] = []
    gap = False
    for a, b in zip(cuts, cuts[1:], strict=False):
        if not any(s <= a and b <= e for s, e in shown):
            gap = True
            continue
        if gap:
            out.append(_GAP)
        gap = False
        if a in page_no:
            out.append(f'<span class="rag-page" id="page-{page_no[a]}">page {page_no[a]}</span>')
        out.extend(_piece(text, a, b, valid, para_no))
    if gap:
        out.append(_GAP)
    return f'<div class="rag-article">{"".join(out)}</div>'


def _piece(text: str, a: int, b: int, marks: Sequence[Mark], para_no: dict[int, int]) -> list[str]:
    out = []
    if a in para_no:
        out.append(f'<span class="rag-para" title="paragraph {para_no[a]}">{para_no[a]}</span>')
    for m in marks:
        if m.start == a:
            cls = "rag-label rag-focus" if m.focused else "rag-label"
            out.append(f'<sup class="{cls}" id="{_attr(m.anchor)}">{escape_text(m.label)}</sup>')
    raw = text[a:b]
    active = [m for m in marks if m.start <= a and b <= m.end]
    core = raw.strip()
    if not active or not core:
        out.append(escape_text(raw))
        return out
    # Surrounding whitespace (the blank line between two cited paragraphs) stays unhighlighted.
    lead = raw[: len(raw) - len(raw.lstrip())]
    trail = raw[len(raw.rstrip()) :]
    cls = "rag-mark rag-focus" if any(m.focused for m in active) else "rag-mark"
    labels = ", ".join(m.label for m in active)
    out.append(f'{escape_text(lead)}<mark class="{cls}" title="cited {escape_text(labels)}">{escape_text(core)}</mark>')
    out.append(escape_text(trail))
    return out


def shown_spans(text: str, marks: Sequence[Mark], limit: int = ARTICLE_LIMIT) -> list[tuple[int, int]]:
    """What of a document to show: all of it when short; else the paragraphs around each mark (one either side),
    each stretch at most `limit` characters, or the opening when nothing is marked. A browser can't lay out
    megabytes of text in one element, and a long document is read through its citations anyway."""
    if len(text) <= limit:
        return [(0, len(text))]
    starts = paragraph_starts(text) or [0]
    bounds = [*starts, len(text)]
    spans = []
    for m in marks:
        if not 0 <= m.start < m.end <= len(text):
            continue
        first = max(bisect.bisect_right(starts, m.start) - 2, 0)
        last = min(bisect.bisect_right(starts, m.end - 1) + 1, len(bounds) - 1)
        a, b = bounds[first], bounds[last]
        if b - a > limit:
            a, b = max(a, m.start - limit // 2), min(b, m.end + limit // 2)
        spans.append((a, b))
    if not spans:
        return [(0, limit)]
    spans.sort()
    merged = [spans[0]]
    for a, b in spans[1:]:
        if a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def _attr(value: str) -> str:
    """Ids are ours, but keep them to a safe alphabet anyway."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", value)


def conversation_markdown(
    exchanges: Sequence[Exchange], cited_text: Callable[[Citation], str | None] | None = None, *, title: str = ""
) -> str:
    """The conversation as Markdown; each [n] marker becomes a footnote quoting its passage, its document and
    the place in it. `cited_text(cite)` is the text the citation's offsets point into (None: unknown)."""
    lines = [f"# {title or 'Conversation about the article'}", ""]
    notes: list[str] = []
    for turn, ex in enumerate(exchanges, 1):
        lines += [f"## Question {turn}", "", _one_line(ex.question), ""]
        if ex.answer.standalone_question and _differs(ex.answer.standalone_question, ex.question):
            lines += [f"_Searched for: {_one_line(ex.answer.standalone_question)}_", ""]
        if ex.answer.refused:
            lines += [f"**Answer:** {NOT_COVERED}", ""]
            if ex.answer.text.strip():
                lines += [f"> {_one_line(ex.answer.text)}", ""]
            continue
        by_number = {c.number: c for c in ex.answer.citations}
        local: dict[int, int] = {}

        def footnote(
            m: re.Match[str], by_number: dict[int, Citation] = by_number, local: dict[int, int] = local
        ) -> str:
            number = int(m.group(1))
            cite = by_number.get(number)
            if cite is None:
                return m.group(0)
            if number not in local:
                local[number] = len(notes) + 1
                notes.append(_footnote_text(local[number], cite, cited_text))
            return f"[^{local[number]}]"

        lines += ["**Answer:** " + _MARKER.sub(footnote, ex.answer.text.strip()), ""]
        for number in sorted(set(by_number) - set(local)):
            # Cited but never marked in the text (shouldn't happen): still listed, so nothing is lost.
            notes.append(_footnote_text(len(notes) + 1, by_number[number], cited_text))
    if notes:
        lines += ["---", "", *notes, ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _footnote_text(n: int, cite: Citation, cited_text: Callable[[Citation], str | None] | None) -> str:
    where = place(cite, cited_text(cite) if cited_text else None)
    title = _one_line(cite.title)
    name = f"{title}, {_one_line(cite.source)}" if title and title != cite.source else _one_line(cite.source)
    return f'[^{n}]: "{_one_line(cite.text)}" ({name}, {where})'


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _differs(a: str, b: str) -> bool:
    return _one_line(a).casefold().rstrip("?.! ") != _one_line(b).casefold().rstrip("?.! ")


def rewritten(question: str, standalone: str) -> bool:
    """True when retrieval used a rewritten question worth showing (not just the same words)."""
    return bool(standalone.strip()) and _differs(standalone, question)


def provider_label(provider: str) -> str:
    return PROVIDER_LABELS.get(provider, provider)


def refusal_text(text: str) -> str:
    """What a refusal says: always the plain 'doesn't cover this', plus the reason given, never twice."""
    text = _one_line(text)
    if text.casefold().startswith(NOT_COVERED.rstrip(".").casefold()):
        return text
    return f"{NOT_COVERED} {text}".strip()


def answer_footer(answer: Answer) -> str:
    """Who answered and how long it took: 'Local model · qwen… · first words after 2.1 s · 4.0 s in all'."""
    parts = [provider_label(answer.provider).split(":")[0].split(" (")[0], answer.model]
    if answer.timings.first_token is not None:
        parts.append(f"first words after {answer.timings.first_token:.1f} s")
    parts.append(f"{answer.timings.total:.1f} s in all")
    return " · ".join(p for p in parts if p)


def pending_note(answer: Answer) -> str | None:
    """What an answer says when some passages it searched had no vector yet (None: all had theirs)."""
    n = answer.vectors_pending
    if not n:
        return None
    return f"{n} passage{'s are' if n != 1 else ' is'} still being embedded: this answer used keyword search for {'them' if n != 1 else 'it'}."


def embedding_label(done: int, total: int) -> str:
    """The text of the background embedding's progress bar."""
    return f"Embedding new passages: {done} of {total} (keyword search finds them already)"


def when(iso: str) -> str:
    """'2026-11-23T22:10:44+00:00' as '2026-11-23 22:10 UTC'; anything unparsable as given."""
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    return moment.strftime("%Y-%m-%d %H:%M")
