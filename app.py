"""Streamlit chat about the article: UI only (session state and rendering); every piece of work happens in `rag`.

Run with `make run` (binds 127.0.0.1). Document and answer text are data: they reach the page only through
`ui.render`'s escaping helpers, never as markup.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import streamlit as st

import rag
from rag import RagError, Settings, Turn
from rag.models.loading import ModelStatus
from ui import cards, panel, render
from ui import documents as labels
from ui import model as models
from ui import suggestions as suggested
from ui.article import show_article
from ui.conversations import show_saved, store
from ui.history import history_path
from ui.session import UNEXPECTED

HISTORY_TURNS = 10  # follow-ups need the recent conversation, not all of it



def main() -> None:
    st.set_page_config(page_title="Ask the article", page_icon="📰")
    st.html(cards.CSS)
    settings = _settings()
    _init_state(settings)
    side = _sidebar_slots()
    settings = _retrieval_controls(side["controls"], settings)
    question = st.chat_input("Ask a question about your documents") or st.session_state.pop("pending", None)
    if question:
        st.session_state.view = "Chat"
    st.title("Ask the article")
    _rebuild_button(side["rebuild"], settings)
    models.start(settings)  # the local model loads in the background, beside the index opening below
    retriever = _retriever(settings)
    status = models.current(settings)
    model = status.model
    _show_status(side["status"], settings, retriever, status)
    _model_problem(settings, status)
    chat_tab, article_tab, documents_tab = st.tabs(["Chat", "Article", "Documents"], key="view", on_change="rerun")
    if documents_tab.open:  # first: "Ask about" lists what was just added or removed
        with documents_tab:
            panel.show(st, settings, retriever)
    documents = _ask_about(side["documents"], retriever)
    if retriever is not None:
        suggested.prime(settings, retriever, model, documents)  # background: overview questions answer sooner
    if article_tab.open:  # before the chat: the open article must not wait for an answer still being written
        with article_tab:
            show_article(retriever)
    with chat_tab:
        _show_history(retriever)
        if question:
            _ask(question, settings, retriever, status, documents)
        elif not st.session_state.messages:
            _starters(settings, retriever, model, documents)
    _conversation_controls(side["conversation"], retriever)
    show_saved(side["conversation"])


# ---------------------------------------------------------------- state and resources


def _init_state(settings: Settings) -> None:
    st.session_state.setdefault("history_file", str(history_path(settings.index_dir)))
    if "messages" not in st.session_state:
        # The conversation lives in the process-wide store under the id in the URL, so a reload finds it again
        # (and in the history file beside the index, so a restart does too).
        conversation_id, messages = store().open(st.query_params.get("c"))
        st.query_params["c"] = conversation_id
        st.session_state.messages = messages  # dicts: user {content}; assistant {question, answer|error|pending, note?}
    st.session_state.setdefault("highlight", None)  # index of the answer whose citations the article shows
    st.session_state.setdefault("focus", None)  # anchor id of the citation chosen with "Show in article"


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
    try:
        rag.resume_embedding(settings)  # vectors of a document added just before the app last stopped
    except RagError as err:
        st.warning(str(err), icon=":material/warning:")
    return retriever


def _model_problem(settings: Settings, status: ModelStatus) -> None:
    """Why the model did not load, on the page: a warning when answers still come by quoting, else an error."""
    if status.error is None:
        return
    if models.quoting(settings, status):  # answers still come, by quoting passages (rag falls back the same way)
        st.warning(f"{status.error} Answering by quoting passages instead.", icon=":material/warning:")
    else:
        st.error(str(status.error))


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
        return {name: st.container() for name in ("status", "rebuild", "controls", "documents", "conversation")}


def _show_status(box: Any, settings: Settings, retriever: Any, status: ModelStatus) -> None:
    model = status.model
    with box:
        st.subheader("Answering with")
        if model is not None:
            st.markdown(f"**{render.provider_label(model.provider)}**")
            st.caption(render.escape_markdown(str(model.model)))
        elif status.loading:
            st.markdown(f"**{render.provider_label(settings.resolved_provider)}**")
            st.caption(models.LOADING_STATUS)
            _when_loaded(settings)
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
        if stats.vectors_pending:
            _embedding_progress(settings)


@st.fragment(run_every=2)
def _embedding_progress(settings: Settings) -> None:
    """The background pass writing new passages' vectors, polled; once it has ended the page reruns (the index
    status, the suggestions and the answers' notes all change then)."""
    status = rag.embedding_status(settings)
    if status is None:  # being written elsewhere (another process): nothing here to follow
        st.caption("Some passages are still being embedded; keyword search finds them already.")
        return
    if status.error:
        st.warning(render.escape_markdown(status.error), icon=":material/warning:")
        return
    if not status.running:
        st.rerun()
    st.progress(min(max(status.fraction, 0.0), 1.0), text=render.embedding_label(status.done, status.total))


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


def _ask_about(box: Any, retriever: Any) -> list[str] | None:
    """The documents questions go to (default: all, and each new one joins); None means all of them."""
    try:
        docs = retriever.documents() if retriever is not None else []
    except RagError:  # the status above already says what is wrong with the index
        docs = []
    if not docs:
        return None
    ids = [d.id for d in docs]
    state = st.session_state
    state.ask_about = labels.reconcile(state.get("ask_about", []), state.get("known_documents", []), ids)
    state.known_documents = ids
    titles = {d.id: labels.title_label(d) for d in docs}
    chosen = box.multiselect(
        "Ask about", ids, key="ask_about", format_func=lambda i: titles.get(i, i),
        help="Questions go to these documents only (default: all of them). Add or remove documents in the Documents tab.",
    )  # fmt: skip
    if not chosen:
        box.warning("Choose at least one document to ask about.", icon=":material/warning:")
    return labels.restriction(chosen, ids)


def _conversation_controls(box: Any, retriever: Any) -> None:
    exchanges = [render.Exchange(m["question"], m["answer"]) for m in st.session_state.messages if "answer" in m]
    source_text = cards.cited_text_fn(retriever)
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
    store().clear(st.query_params["c"], st.session_state.messages)  # the same list as in the store
    st.session_state.highlight = None
    st.session_state.focus = None


# ---------------------------------------------------------------- chat


def _starters(settings: Settings, retriever: Any, model: Any, documents: list[str] | None) -> None:
    """The empty chat: suggested questions about the documents asked about (stored with the index, each one
    answered with citations when it was made); made in the background the first time, shown when ready."""
    ids = documents if documents is not None else st.session_state.get("known_documents", [])
    questions, pending = suggested.suggestions(settings, retriever, model, ids) if retriever is not None else ([], [])
    if not questions:
        st.markdown("Ask anything about your documents.")
    else:
        st.markdown("Ask anything about your documents, or start with one of these:")
    for i, text in enumerate(questions):
        st.button(text, key=f"starter-{i}", on_click=_set_pending, args=(text,))
    if pending:
        st.caption("Finding questions these documents answer…")
        _when_made(pending)


@st.fragment(run_every=3)
def _when_made(pending: list[Any]) -> None:
    """Polls the background makers; once they are done, the whole page reruns to show the new buttons."""
    if not suggested.MAKERS.busy(pending):
        st.rerun()


@st.fragment(run_every=1)  # a status check: cheap, and answers switch to the model within a second of its load
def _when_loaded(settings: Settings) -> None:
    """Polls the background load; once it ends, the whole page reruns: answers use the model from then on."""
    if not models.current(settings).loading:
        st.rerun()


def _set_pending(text: str) -> None:
    st.session_state.pending = text


def _show_history(retriever: Any) -> None:
    source_text = cards.cited_text_fn(retriever)
    for idx, msg in enumerate(st.session_state.messages):
        with st.chat_message(msg["role"]):
            if msg["role"] == "user":
                st.markdown(render.escape_markdown(msg["content"]))
            else:
                _settle(msg)
                cards.show_assistant(msg, idx, source_text)


def _history() -> list[Turn]:
    """Earlier answered exchanges, for follow-up questions (errors are not part of the conversation)."""
    turns = [Turn(m["question"], m["answer"].text) for m in st.session_state.messages if "answer" in m]
    return turns[-HISTORY_TURNS:]


def _ask(question: str, settings: Settings, retriever: Any, status: ModelStatus, documents: list[str] | None) -> None:
    history = _history()
    messages = st.session_state.messages
    quoting = models.quoting(settings, status)
    answer_with = models.answer_settings(settings, status)

    def produce() -> Any:
        if status.error is not None and not quoting:
            raise status.error  # the load failed and must not be hidden behind quotes: the answer says why
        return rag.query_stream(
            question, history=history, settings=answer_with, retriever=retriever, model=status.model,
            documents=documents,
        )  # fmt: skip

    # Computed on its own thread: a rerun (a click, a tab switch) stops this run but not the answer; the store
    # saves the exchange once the answer is finished.
    note = models.LOADING_NOTE if status.loading else None
    msg = store().ask(st.query_params["c"], messages, question, produce, note=note)
    with st.chat_message("user"):
        st.markdown(render.escape_markdown(question))
    with st.chat_message("assistant"):
        _settle(msg)
        idx = len(messages) - 1
        if "answer" in msg and msg["answer"].citations:
            st.session_state.highlight = idx
            st.session_state.focus = None
            st.session_state.article_want = msg["answer"].citations[0].document
        cards.show_assistant(msg, idx, cards.cited_text_fn(retriever))


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


main()
