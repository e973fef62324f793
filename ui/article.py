"""The chat's *Article* tab: a document with the passages cited in the chat highlighted and numbered.

Which answer's citations show is the session's `highlight` (an answer's index, or ALL); "Show in article" sets
it, with `focus` (the chosen citation's anchor), the document to show (`article_want`) and a `scroll_once`
nonce that scrolls there once.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

import streamlit as st

from rag import Document, RagError
from ui import documents, render

ALL = -1  # "highlight the citations of every answer"


def anchor(idx: int, number: int) -> str:
    """The HTML id of citation `number` of answer `idx` in the article view."""
    return f"cite-{idx}-{number}"


def show_in_article(idx: int, number: int, document: str) -> None:
    """The "Show in article" button of citation `number` of answer `idx`: open the tab there, scrolled to it."""
    st.session_state.view = "Article"
    st.session_state.highlight = idx
    st.session_state.focus = anchor(idx, number)
    st.session_state.article_want = document
    st.session_state.jumps = st.session_state.get("jumps", 0) + 1
    st.session_state.scroll_once = st.session_state.jumps


def show_article(retriever: Any) -> None:
    """The Article tab: the chosen document with the chosen answer's citations highlighted."""
    if retriever is None:
        st.info("The article shows here once the index is available.")
        return
    try:
        docs = retriever.documents()
    except RagError as err:
        st.error(str(err))
        return
    if not docs:
        st.info("The index holds no documents.")
        return
    answered = [i for i, m in enumerate(st.session_state.messages) if "answer" in m and m["answer"].citations]
    chosen = _pick_answer(answered)
    doc = _pick_document(docs)
    marks = _marks(chosen, doc.id)
    try:
        text, pages = retriever.document_text(doc.id), retriever.page_starts(doc.id)
    except RagError as err:
        st.error(str(err))
        return
    spans = render.shown_spans(text, marks)
    if spans != [(0, len(text))]:
        st.caption(f"A long document ({len(text):,} characters): showing the paragraphs around the citations.")
    elif not marks:
        st.caption("Passages cited in the chat are highlighted here.")
    st.markdown(render.article_html(text, marks, spans, pages), unsafe_allow_html=True)
    nonce = st.session_state.pop("scroll_once", 0)
    if nonce and st.session_state.focus:
        _scroll_to(st.session_state.focus, nonce)


def _pick_document(docs: list[Document]) -> Document:
    """The document shown: the one chosen, or the one cited by the answer just asked or jumped to."""
    by_id = {d.id: d for d in docs}
    wanted = st.session_state.pop("article_want", None)
    if wanted in by_id:
        st.session_state.article_doc = wanted
    elif st.session_state.get("article_doc") not in by_id:
        st.session_state.article_doc = _cited_document(st.session_state.highlight, by_id) or docs[0].id
    if len(docs) == 1:
        return docs[0]
    titles = {d.id: documents.title_label(d) for d in docs}
    chosen = st.selectbox("Document", list(by_id), key="article_doc", format_func=lambda i: titles.get(i, i))
    return by_id[chosen]


def _cited_document(idx: int | None, known: Container[str] | None = None) -> str | None:
    """The first document (of `known`, if given) that the answer at `idx` cites."""
    messages = st.session_state.messages
    if idx is None or not 0 <= idx < len(messages) or "answer" not in messages[idx]:
        return None
    cited = (c.document for c in messages[idx]["answer"].citations)
    return next((d for d in cited if known is None or d in known), None)


def _pick_answer(answered: list[int]) -> int | None:
    """Which answer's citations to highlight: one answer (default: the latest) or ALL of them."""
    if not answered:
        return None
    options = [*answered, ALL] if len(answered) > 1 else answered
    if st.session_state.highlight not in options:
        st.session_state.highlight = answered[-1]
    messages = st.session_state.messages
    choice = st.selectbox(
        "Highlight the passages cited in",
        options,
        index=options.index(st.session_state.highlight),
        format_func=lambda i: (
            "All answers" if i == ALL else f"Answer {answered.index(i) + 1}: {messages[i]['question'][:80]}"
        ),
    )
    if choice != st.session_state.highlight:
        st.session_state.highlight = choice
        st.session_state.focus = None
        st.session_state.article_want = _cited_document(choice)
    return int(choice)


def _marks(chosen: int | None, document: str) -> list[render.Mark]:
    """Marks for the chosen answer's citations, numbered as in its text ([2]); for all answers, [answer.n]."""
    if chosen is None:
        return []
    answered = [i for i, m in enumerate(st.session_state.messages) if "answer" in m]
    marks = []
    for k, idx in enumerate(answered, 1):
        if chosen not in (idx, ALL):
            continue
        for c in st.session_state.messages[idx]["answer"].citations:
            if c.document != document:
                continue
            label = f"[{k}.{c.number}]" if chosen == ALL else f"[{c.number}]"
            where = anchor(idx, c.number)
            marks.append(render.Mark(label, c.start, c.end, where, focused=st.session_state.focus == where))
    return marks


def _scroll_to(anchor: str, nonce: int) -> None:
    # Our own short script (no document text in it: the anchor is built from two integers). Streamlit keeps a
    # chat page pinned to its bottom while it settles, so scroll a few times; the nonce makes a repeat click
    # run it again (identical HTML is not re-rendered).
    script = (
        f"<script>/*{nonce}*/[300,900,1800].forEach(function(t){{setTimeout(function(){{"
        f"var e=document.getElementById({anchor!r});if(e){{e.scrollIntoView({{block:'center'}});}}}},t);}});</script>"
    )
    st.html(script, unsafe_allow_javascript=True)
