"""Streamlit chat about the article: UI only (session state and rendering); every piece of work happens in `rag`.

Run with `make run` (binds 127.0.0.1). Document and answer text are data: they reach the page only through
`ui.render`'s escaping helpers, never as markup.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

import rag
from rag import Answer, Citation, RagError, Settings, Turn
from rag.models.chat import get_chat_model
from ui import render
from ui.history import history_path
from ui.session import UNEXPECTED, Conversations

STARTERS = (
    "Why didn't Turkey align with the West?",
    "What did Erdogan and Putin agree on in Sochi?",
    "What trade volume target did the two presidents set?",
    "Where do Turkey and Russia compete?",
)
ALL = -1  # "highlight the citations of every answer"
HISTORY_TURNS = 10  # follow-ups need the recent conversation, not all of it
CSS = """<style>
.rag-answer, .rag-quote, .rag-article { white-space: pre-wrap; overflow-wrap: anywhere; }
.rag-cite { color: #1565c0; font-weight: 600; font-size: 0.75em; }
.rag-quote { border-left: 3px solid #f5b700; margin: 0.2rem 0; padding: 0.1rem 0.8rem; font-style: italic; }
.rag-article { line-height: 1.65; }
.rag-para { color: #9e9e9e; font-size: 0.7em; margin-right: 0.4em; user-select: none; }
.rag-mark { background: rgba(255, 213, 79, 0.45); color: inherit; border-radius: 3px; padding: 0 1px; }
.rag-mark.rag-focus { background: rgba(255, 152, 0, 0.55); outline: 2px solid rgba(255, 152, 0, 0.9); }
.rag-label { color: #b26a00; font-weight: 700; margin-right: 2px; scroll-margin-top: 5rem; }
</style>"""


def main() -> None:
    st.set_page_config(page_title="Ask the article", page_icon="📰")
    st.html(CSS)
    settings = _settings()
    _init_state(settings)
    side = _sidebar_slots()
    settings = _retrieval_controls(side["controls"], settings)
    question = st.chat_input("Ask a question about the article") or st.session_state.pop("pending", None)
    if question:
        st.session_state.view = "Chat"
    st.title("Ask the article")
    _rebuild_button(side["rebuild"], settings)
    retriever = _retriever(settings)
    model = _chat_model(settings) if retriever is not None else None
    _show_status(side["status"], settings, retriever, model)
    chat_tab, article_tab = st.tabs(["Chat", "Article"], key="view", on_change="rerun")
    if article_tab.open:  # first: the open article must not wait for an answer still being written in the chat
        with article_tab:
            _show_article(retriever)
    with chat_tab:
        _show_history(retriever)
        if question:
            _ask(question, settings, retriever, model)
        elif not st.session_state.messages:
            _starters()
    _conversation_controls(side["conversation"], retriever)
    _saved_conversations(side["conversation"])


# ---------------------------------------------------------------- state and resources


def _init_state(settings: Settings) -> None:
    st.session_state.setdefault("history_file", str(history_path(settings.index_dir)))
    if "messages" not in st.session_state:
        # The conversation lives in the process-wide store under the id in the URL, so a reload finds it again
        # (and in the history file beside the index, so a restart does too).
        conversation_id, messages = _store().open(st.query_params.get("c"))
        st.query_params["c"] = conversation_id
        st.session_state.messages = messages  # dicts: user {content}; assistant {question, answer|error|pending}
    st.session_state.setdefault("highlight", None)  # index of the answer whose citations the article shows
    st.session_state.setdefault("focus", None)  # anchor id of the citation chosen with "Show in article"


@st.cache_resource
def _conversations(history_file: str) -> Conversations:
    return Conversations.saved_at(history_file)


def _store() -> Conversations:
    return _conversations(st.session_state.history_file)


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except RagError as err:
        st.error(str(err))
        st.stop()
        raise


def _retriever(settings: Settings) -> Any:
    """The shared retriever (rag keeps one per process); the very first run builds the index with a progress bar."""
    bar: list[Any] = []

    def progress(fraction: float, message: str) -> None:
        if not bar:
            bar.append(st.progress(0.0, text="Building the index for the first time…"))
        bar[0].progress(min(max(float(fraction), 0.0), 1.0), text=render.escape_markdown(message))

    try:
        with st.spinner("Loading the embedding model and opening the index…"):
            retriever = rag.open_index(settings, progress=progress, any_corpus=True)
    except RagError as err:
        st.error(str(err))
        return None
    for shown in bar:
        shown.empty()
    return retriever


def _chat_model(settings: Settings) -> Any:
    if settings.resolved_provider == "extractive":
        return None
    try:
        with st.spinner("Loading the language model (first time only)…"):
            return get_chat_model(settings)
    except rag.ModelAuthError as err:
        st.error(str(err))
    except rag.ModelError as err:
        if not settings.fallback_extractive:
            st.error(str(err))
        else:  # answers still come, by quoting passages (rag falls back the same way)
            st.warning(f"{err} Answering by quoting passages instead.", icon=":material/warning:")
    except RagError as err:
        st.error(str(err))
    return None


def _build(where: Any, settings: Settings, *, rebuild: bool, label: str) -> None:
    bar = where.progress(0.0, text=label)

    def progress(fraction: float, message: str) -> None:
        bar.progress(min(max(float(fraction), 0.0), 1.0), text=render.escape_markdown(message or label))

    stats = rag.build_index(settings=settings, rebuild=rebuild, progress=progress)
    bar.empty()  # the open retriever notices the new build on its next question
    for problem in stats.errors:
        where.warning(str(problem))


# ---------------------------------------------------------------- sidebar


def _sidebar_slots() -> dict[str, Any]:
    """Sidebar sections in display order; filled later, when their data exists."""
    with st.sidebar:
        st.header("Article chat")
        return {name: st.container() for name in ("status", "rebuild", "controls", "conversation")}


def _show_status(box: Any, settings: Settings, retriever: Any, model: Any) -> None:
    with box:
        st.subheader("Answering with")
        if model is not None:
            st.markdown(f"**{render.provider_label(model.provider)}**")
            st.caption(render.escape_markdown(str(model.model)))
        elif settings.resolved_provider == "extractive":
            st.markdown(f"**{render.provider_label('extractive')}**")
        else:
            st.caption("The language model is not loaded (see the message on the page).")
        st.subheader("Index")
        if retriever is None:
            st.caption("No index available.")
            return
        try:
            stats = retriever.stats
        except RagError as err:  # e.g. the store vanished since it was opened
            st.error(str(err))
            return
        st.markdown(f"{stats.documents} document(s), {stats.passages} passages")
        st.caption(render.escape_markdown(f"Embeddings: {stats.embed_model}"))
        if stats.built_at:
            st.caption(render.escape_markdown(f"Built: {render.when(stats.built_at)}"))


def _rebuild_button(box: Any, settings: Settings) -> None:
    if not box.button("Rebuild index", icon=":material/refresh:", help="Re-read the documents and embed them again"):
        return
    try:
        _build(box, settings, rebuild=True, label="Rebuilding the index…")
        box.success("Index rebuilt.")
    except RagError as err:
        box.error(str(err))


def _retrieval_controls(box: Any, settings: Settings) -> Settings:
    top = max(12, settings.top_k)
    k = box.slider("Passages to retrieve", 1, top, value=settings.top_k, key="top_k")
    return dataclasses.replace(settings, top_k=int(k))


def _conversation_controls(box: Any, retriever: Any) -> None:
    exchanges = [render.Exchange(m["question"], m["answer"]) for m in st.session_state.messages if "answer" in m]
    source_text = _source_text_fn(retriever)
    with box:
        st.subheader("Conversation")
        st.button("Clear chat", icon=":material/delete:", on_click=_clear_chat, disabled=not st.session_state.messages)
        st.download_button(
            "Download as Markdown",
            data=render.conversation_markdown(exchanges, source_text),
            file_name="conversation.md",
            mime="text/markdown",
            icon=":material/download:",
            on_click="ignore",
            disabled=not exchanges,
        )


def _clear_chat() -> None:
    _store().clear(st.query_params["c"], st.session_state.messages)  # the same list as in the store
    st.session_state.highlight = None
    st.session_state.focus = None


# ---------------------------------------------------------------- chat


def _starters() -> None:
    st.markdown("Ask anything about the article, or start with one of these:")
    for i, text in enumerate(STARTERS):
        st.button(text, key=f"starter-{i}", on_click=_set_pending, args=(text,))


def _set_pending(text: str) -> None:
    st.session_state.pending = text


def _show_history(retriever: Any) -> None:
    source_text = _source_text_fn(retriever)
    for idx, msg in enumerate(st.session_state.messages):
        with st.chat_message(msg["role"]):
            if msg["role"] == "user":
                st.markdown(render.escape_markdown(msg["content"]))
            else:
                _settle(msg)
                _show_assistant(msg, idx, source_text)


def _history() -> list[Turn]:
    """Earlier answered exchanges, for follow-up questions (errors are not part of the conversation)."""
    turns = [Turn(m["question"], m["answer"].text) for m in st.session_state.messages if "answer" in m]
    return turns[-HISTORY_TURNS:]


def _ask(question: str, settings: Settings, retriever: Any, model: Any) -> None:
    history = _history()
    messages = st.session_state.messages

    def produce() -> Any:
        return rag.query_stream(question, history=history, settings=settings, retriever=retriever, model=model)

    # Computed on its own thread: a rerun (a click, a tab switch) stops this run but not the answer; the store
    # saves the exchange once the answer is finished.
    msg = _store().ask(st.query_params["c"], messages, question, produce)
    with st.chat_message("user"):
        st.markdown(render.escape_markdown(question))
    with st.chat_message("assistant"):
        _settle(msg)
        idx = len(messages) - 1
        if "answer" in msg and msg["answer"].citations:
            st.session_state.highlight = idx
            st.session_state.focus = None
        _show_assistant(msg, idx, _source_text_fn(retriever))


def _settle(msg: dict) -> None:
    """Stream a pending answer into a placeholder until it is finished, then store the checked result."""
    job = msg.get("pending")
    if job is None:
        return
    if not job.done:
        live = st.empty()
        with live.container():
            deltas = render.escape_stream(job.follow())
            # The first checked sentence can take a while on a laptop: say what is happening meanwhile.
            with st.spinner("Reading the article and writing the answer…"):
                first = next(deltas, None)
            if first is not None:
                st.write_stream(itertools.chain([first], deltas))
        # The streamed text may differ from the checked answer (renumbered, repaired): show only the latter.
        live.empty()
    job.wait()
    if job.answer is not None:
        msg["answer"] = job.answer
    else:
        msg["error"] = job.error or UNEXPECTED
    msg.pop("pending", None)


def _show_assistant(msg: dict, idx: int, source_text: Callable[[str], str | None]) -> None:
    if "error" in msg:
        st.error(msg["error"])
        return
    answer: Answer = msg["answer"]
    if render.rewritten(msg["question"], answer.standalone_question):
        st.caption("Searched for: " + render.escape_markdown(answer.standalone_question))
    if answer.refused:
        st.info(render.escape_markdown(render.refusal_text(answer.text)), icon=":material/search_off:")
        return
    st.markdown(render.answer_html(answer.text), unsafe_allow_html=True)
    for cite in answer.citations:
        _citation_card(cite, idx, source_text)
    st.caption(render.escape_markdown(render.answer_footer(answer)))


def _citation_card(cite: Citation, idx: int, source_text: Callable[[str], str | None]) -> None:
    with st.container(border=True, key=f"card-{idx}-{cite.number}"):
        where = render.locate(source_text(cite.source), cite.start, cite.end)
        st.markdown(f"**[{cite.number}]** " + render.escape_markdown(f"{Path(cite.source).name} · {where}"))
        st.markdown(render.quote_html(cite.text), unsafe_allow_html=True)
        st.button(
            "Show in article",
            key=f"jump-{idx}-{cite.number}",
            icon=":material/article:",
            type="tertiary",
            on_click=_jump,
            args=(idx, cite.number, cite.source),
        )


def _jump(idx: int, number: int, source: str) -> None:
    st.session_state.view = "Article"
    st.session_state.highlight = idx
    st.session_state.focus = _anchor(idx, number)
    st.session_state.article_source = source
    st.session_state.jumps = st.session_state.get("jumps", 0) + 1
    st.session_state.scroll_once = st.session_state.jumps


def _anchor(idx: int, number: int) -> str:
    return f"cite-{idx}-{number}"


def _source_text_fn(retriever: Any) -> Callable[[str], str | None]:
    """`retriever.source_text`, memoised for this run and never raising (positions are a nicety)."""
    cache: dict[str, str | None] = {}

    def source_text(source: str) -> str | None:
        if source not in cache:
            try:
                cache[source] = retriever.source_text(source) if retriever is not None else None
            except RagError:
                cache[source] = None
        return cache[source]

    return source_text


# ---------------------------------------------------------------- article view


def _show_article(retriever: Any) -> None:
    if retriever is None:
        st.info("The article shows here once the index is available.")
        return
    try:
        sources = list(retriever.sources())
    except RagError as err:
        st.error(str(err))
        return
    if not sources:
        st.info("The index holds no documents.")
        return
    source = _pick_source(sources)
    answered = [i for i, m in enumerate(st.session_state.messages) if "answer" in m and m["answer"].citations]
    chosen = _pick_answer(answered)
    marks = _marks(chosen, source)
    try:
        text = retriever.source_text(source)
    except RagError as err:
        st.error(str(err))
        return
    spans = render.shown_spans(text, marks)
    if spans != [(0, len(text))]:
        st.caption(f"A long document ({len(text):,} characters): showing the paragraphs around the citations.")
    elif not marks:
        st.caption("Passages cited in the chat are highlighted here.")
    st.markdown(render.article_html(text, marks, spans), unsafe_allow_html=True)
    nonce = st.session_state.pop("scroll_once", 0)
    if nonce and st.session_state.focus:
        _scroll_to(st.session_state.focus, nonce)


def _pick_source(sources: list[str]) -> str:
    if st.session_state.get("article_source") not in sources:
        st.session_state.article_source = sources[0]
    if len(sources) == 1:
        return sources[0]
    return str(st.selectbox("Document", sources, key="article_source"))


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
    return int(choice)


def _marks(chosen: int | None, source: str) -> list[render.Mark]:
    """Marks for the chosen answer's citations, numbered as in its text ([2]); for all answers, [answer.n]."""
    if chosen is None:
        return []
    answered = [i for i, m in enumerate(st.session_state.messages) if "answer" in m]
    marks = []
    for k, idx in enumerate(answered, 1):
        if chosen not in (idx, ALL):
            continue
        for c in st.session_state.messages[idx]["answer"].citations:
            if c.source != source:
                continue
            label = f"[{k}.{c.number}]" if chosen == ALL else f"[{c.number}]"
            anchor = _anchor(idx, c.number)
            marks.append(render.Mark(label, c.start, c.end, anchor, focused=st.session_state.focus == anchor))
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


# ---------------------------------------------------------------- saved conversations


def _saved_conversations(box: Any) -> None:
    """The saved conversations, newest first: open one, rename or delete the open one, start a new one."""
    store = _store()
    if store.problem and st.session_state.get("history_warned") != store.problem:
        st.warning(store.problem, icon=":material/history:")  # once per problem: the chat itself goes on
        st.session_state.history_warned = store.problem
    with box:
        st.subheader("Conversations")
        st.button("New conversation", icon=":material/add:", on_click=_open_conversation, args=(None,))
        if store.history is None:
            st.caption("Conversations are not being saved (see the message on the page).")
            return
        saved = store.saved()
        if not saved:
            st.caption("Answered conversations are listed here and kept across restarts.")
            return
        current = st.query_params.get("c")
        with st.container(height=320 if len(saved) > 8 else "content", key="saved-conversations"):
            for item in saved:
                st.button(
                    render.escape_markdown(item.title),
                    key=f"conv-{item.id}",
                    help=f"{item.messages // 2} question(s), last {time.strftime('%Y-%m-%d %H:%M', time.localtime(item.updated))}",
                    type="secondary" if item.id == current else "tertiary",
                    width="stretch",
                    on_click=_open_conversation,
                    args=(item.id,),
                )
        mine = next((item for item in saved if item.id == current), None)
        if mine is not None:
            st.text_input("Rename this conversation", value=mine.title, key=f"rename-{mine.id}", max_chars=200,
                          on_change=_rename_conversation, args=(mine.id,))  # fmt: skip
            st.button("Delete this conversation", key="delete-conversation", icon=":material/delete_forever:",
                      on_click=_delete_conversation, args=(mine.id,))  # fmt: skip


def _open_conversation(conversation_id: str | None) -> None:
    """Show this conversation (a new one for None) and put its id in the URL."""
    conversation_id, messages = _store().open(conversation_id)
    st.query_params["c"] = conversation_id
    st.session_state.messages = messages
    st.session_state.highlight = None
    st.session_state.focus = None
    st.session_state.view = "Chat"


def _rename_conversation(conversation_id: str) -> None:
    title = st.session_state.get(f"rename-{conversation_id}") or ""
    if title.strip():
        _store().rename(conversation_id, title)


def _delete_conversation(conversation_id: str) -> None:
    _store().delete(conversation_id)
    _open_conversation(None)


main()
