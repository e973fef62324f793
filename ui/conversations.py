"""The sidebar's saved conversations: the list (newest first, titled by the first question), opening one (its id
goes into the `?c=` of the URL), renaming or deleting the open one, starting a new one.

The conversations themselves are `ui.session.Conversations`, one per process and history file (the file's path
is in the session's `history_file`, set by the app from the settings).
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from ui import render
from ui.history import Summary
from ui.session import Conversations


@st.cache_resource
def _conversations(history_file: str) -> Conversations:
    return Conversations.saved_at(history_file)


def store() -> Conversations:
    """This process's conversations, saved in the session's history file."""
    return _conversations(st.session_state.history_file)


def show_saved(box: Any) -> None:
    """The saved conversations, newest first: open one, rename or delete the open one, start a new one."""
    conversations = store()
    if conversations.problem and st.session_state.get("history_warned") != conversations.problem:
        st.warning(conversations.problem, icon=":material/history:")  # once per problem: the chat goes on
        st.session_state.history_warned = conversations.problem
    with box:
        st.subheader("Conversations")
        st.button("New conversation", icon=":material/add:", on_click=_open_conversation, args=(None,))
        if conversations.history is None:
            st.caption("Conversations are not being saved (see the message on the page).")
            return
        saved = conversations.saved()
        if not saved:
            st.caption("Answered conversations are listed here and kept across restarts.")
            return
        current = st.query_params.get("c")
        _listed(saved, current)
        mine = next((item for item in saved if item.id == current), None)
        if mine is not None:
            st.text_input("Rename this conversation", value=mine.title, key=f"rename-{mine.id}", max_chars=200,
                          on_change=_rename_conversation, args=(mine.id,))  # fmt: skip
            st.button("Delete this conversation", key="delete-conversation", icon=":material/delete_forever:",
                      on_click=_delete_conversation, args=(mine.id,))  # fmt: skip


def _listed(saved: list[Summary], current: str | None) -> None:
    # A scrolling box beyond a few entries, so the list never pushes the rest of the sidebar out of sight.
    with st.container(height=320 if len(saved) > 8 else "content", key="saved-conversations"):
        for item in saved:
            last = time.strftime("%Y-%m-%d %H:%M", time.localtime(item.updated))
            st.button(
                render.escape_markdown(item.title),  # the user's own words: shown as text, never as Markdown
                key=f"conv-{item.id}",
                help=f"{item.messages // 2} question(s), last {last}",
                type="secondary" if item.id == current else "tertiary",
                width="stretch",
                on_click=_open_conversation,
                args=(item.id,),
            )


def _open_conversation(conversation_id: str | None) -> None:
    """Show this conversation (a new one for None) and put its id in the URL."""
    conversation_id, messages = store().open(conversation_id)
    st.query_params["c"] = conversation_id
    st.session_state.messages = messages
    st.session_state.highlight = None
    st.session_state.focus = None
    st.session_state.view = "Chat"


def _rename_conversation(conversation_id: str) -> None:
    title = st.session_state.get(f"rename-{conversation_id}") or ""
    if title.strip():
        store().rename(conversation_id, title)


def _delete_conversation(conversation_id: str) -> None:
    store().delete(conversation_id)
    _open_conversation(None)
