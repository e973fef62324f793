"""An assistant message on the page: its notes, the answer (or refusal), a card per citation, and the styles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from rag import Answer, Citation, RagError
from ui import render
from ui.article import show_in_article

CSS = """<style>
.rag-answer, .rag-quote, .rag-article { white-space: pre-wrap; overflow-wrap: anywhere; }
.rag-cite { color: #1565c0; font-weight: 600; font-size: 0.75em; }
.rag-quote { border-left: 3px solid #f5b700; margin: 0.2rem 0; padding: 0.1rem 0.8rem; font-style: italic; }
.rag-article { line-height: 1.65; }
.rag-para { color: #9e9e9e; font-size: 0.7em; margin-right: 0.4em; user-select: none; }
.rag-mark { background: rgba(255, 213, 79, 0.45); color: inherit; border-radius: 3px; padding: 0 1px; }
.rag-mark.rag-focus { background: rgba(255, 152, 0, 0.55); outline: 2px solid rgba(255, 152, 0, 0.9); }
.rag-label { color: #b26a00; font-weight: 700; margin-right: 2px; scroll-margin-top: 5rem; }
.rag-page { display: block; color: #757575; font-size: 0.75em; border-top: 1px dashed #bdbdbd; margin: 0.8em 0 0.3em; user-select: none; }
</style>"""


def show_assistant(msg: dict, idx: int, cited_text: Callable[[Citation], str | None]) -> None:
    if "error" in msg:
        st.error(msg["error"])
        return
    answer: Answer = msg["answer"]
    if msg.get("note"):
        st.caption(render.escape_markdown(msg["note"]))
    if render.rewritten(msg["question"], answer.standalone_question):
        st.caption("Searched for: " + render.escape_markdown(answer.standalone_question))
    note = render.pending_note(answer)
    if note:
        st.caption(render.escape_markdown(note))
    if answer.refused:
        st.info(render.escape_markdown(render.refusal_text(answer.text)), icon=":material/search_off:")
        return
    st.markdown(render.answer_html(answer.text), unsafe_allow_html=True)
    for cite in answer.citations:
        citation_card(cite, idx, cited_text)
    st.caption(render.escape_markdown(render.answer_footer(answer)))


def citation_card(cite: Citation, idx: int, cited_text: Callable[[Citation], str | None]) -> None:
    with st.container(border=True, key=f"card-{idx}-{cite.number}"):
        st.markdown(render.cite_heading(cite, cited_text(cite)))
        st.markdown(render.quote_html(cite.text), unsafe_allow_html=True)
        st.button(
            "Show in article",
            key=f"jump-{idx}-{cite.number}",
            icon=":material/article:",
            type="tertiary",
            on_click=show_in_article,
            args=(idx, cite.number, cite.document),
        )


def cited_text_fn(retriever: Any) -> Callable[[Citation], str | None]:
    """The text a citation's offsets point into (`retriever.document_text`), memoised for this run and never
    raising: positions are a nicety, and the document may have been removed since."""
    cache: dict[str, str | None] = {}

    def cited_text(cite: Citation) -> str | None:
        if cite.document not in cache:
            try:
                cache[cite.document] = retriever.document_text(cite.document) if retriever is not None else None
            except RagError:
                cache[cite.document] = None
        return cache[cite.document]

    return cited_text
