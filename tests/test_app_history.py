"""Saved conversations through streamlit.testing.v1.AppTest: the real app, the real index (tmp dir, real
embeddings, extractive answers) and the real history file beside it. A "restart" is a new AppTest after
clearing Streamlit's resource cache, so nothing but the file carries the conversation over."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from streamlit.testing.v1 import AppTest

from rag import Settings
from tests.helpers import app_ask, start_app
from ui import render
from ui.history import History, history_path

QUESTION = "Why didn't Turkey align with the West?"
FOLLOW_UP = "What did Erdogan and Putin agree on in Sochi?"


def _restart(conversation: str | None = None) -> AppTest:
    """A new app process, as far as conversations go: the in-memory store is dropped."""
    st.cache_resource.clear()
    return start_app(180, conversation)


def _conversation_id(at: AppTest) -> str:
    value = at.query_params["c"]
    return str(value[0] if isinstance(value, list) else value)


def _listed(at: AppTest) -> dict[str, str]:
    """The sidebar's saved conversations: id -> label, in display order."""
    return {b.key.removeprefix("conv-"): b.label for b in at.sidebar.button if b.key and b.key.startswith("conv-")}


def _assert_cards(at: AppTest, idx: int) -> None:
    answer = at.session_state["messages"][idx]["answer"]
    assert answer.citations
    shown = [m.value for m in at.markdown]
    for cite in answer.citations:
        assert render.quote_html(cite.text) in shown
    keys = [b.key for b in at.button if b.key and b.key.startswith(f"jump-{idx}-")]
    assert len(keys) == len(answer.citations)


def test_a_conversation_survives_a_restart_with_its_citations(env: Settings) -> None:
    at = app_ask(_restart(), QUESTION)
    conv_id = _conversation_id(at)
    asked = at.session_state["messages"][1]["answer"]
    assert _listed(at) == {conv_id: render.escape_markdown(QUESTION)}  # listed as soon as it is answered

    at = _restart()  # a fresh page after the restart: a new, empty conversation, the old one in the sidebar
    assert at.session_state["messages"] == [] and conv_id in _listed(at)
    at.sidebar.button(key=f"conv-{conv_id}").click().run()
    assert not at.exception, at.exception
    messages = at.session_state["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"] and messages[1]["answer"] == asked
    _assert_cards(at, 1)
    cite = asked.citations[0]
    at.button(key=f"jump-1-{cite.number}").click().run()  # "Show in article" works on the reopened answer
    article = [m.value for m in at.markdown if m.value.startswith('<div class="rag-article">')]
    assert at.session_state["view"] == "Article" and f'id="cite-1-{cite.number}"' in article[0]

    app_ask(at, FOLLOW_UP)  # continuing it: saved under the same id, now the newest
    at = _restart(conv_id)  # the ?c= link after another restart
    assert [m.get("content") for m in at.session_state["messages"][::2]] == [QUESTION, FOLLOW_UP]
    assert next(iter(_listed(at))) == conv_id
    _assert_cards(at, 3)


def test_rename_and_delete_from_the_sidebar(env: Settings) -> None:
    at = app_ask(_restart(), "Where do Turkey and Russia compete?")
    conv_id = _conversation_id(at)
    at.sidebar.text_input(key=f"rename-{conv_id}").input("Rivals in Syria").run()
    assert _listed(at)[conv_id] == "Rivals in Syria"
    at = _restart()
    assert _listed(at)[conv_id] == "Rivals in Syria"
    at.sidebar.button(key=f"conv-{conv_id}").click().run()
    at.sidebar.button(key="delete-conversation").click().run()
    assert not at.exception, at.exception
    assert conv_id not in _listed(at) and at.session_state["messages"] == []
    assert _conversation_id(at) != conv_id
    assert History(history_path(env.index_dir)).load(conv_id) is None


def test_a_damaged_history_file_is_a_warning_and_the_chat_still_works(env: Settings) -> None:
    path = history_path(env.index_dir)
    _restart()  # the index exists (this test may run alone)
    kept = path.with_suffix(".kept")
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{path}{suffix}").exists():
            Path(f"{path}{suffix}").rename(f"{kept}{suffix}")
    path.write_bytes(b"not a database " * 100)
    try:
        at = _restart()
        assert len(at.warning) == 1 and "damaged" in at.warning[0].value and str(path) in at.warning[0].value
        app_ask(at, QUESTION)
        assert at.session_state["messages"][1]["answer"].citations and not at.error
        assert len(at.warning) == 0  # shown once, not on every rerun
        assert any("not being saved" in c.value for c in at.sidebar.caption)
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
            if Path(f"{kept}{suffix}").exists():
                Path(f"{kept}{suffix}").rename(f"{path}{suffix}")
        st.cache_resource.clear()
