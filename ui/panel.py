"""The Documents tab of the chat: add documents (upload, web address, pasted text), list them, remove one.

Drawn with the `st` module the app passes in (this package never imports Streamlit itself); every piece of
work is a `rag` call. What happened to each document (added, already there, unreadable) is kept in
`st.session_state.doc_notices` and shown until the next change, so a rerun doesn't hide an error unread.
"""

from __future__ import annotations

import functools
import logging
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import rag
from rag import Document, RagError, Settings
from ui import documents as labels
from ui.render import escape_markdown

log = logging.getLogger(__name__)
Add = Callable[[Callable[[float, str], None]], Document]  # one document's add, given a progress callback
UNEXPECTED = "could not be added (an unexpected error; the server log has the details)."


def show(st: Any, settings: Settings, retriever: Any) -> None:
    """The whole tab: the three ways to add, progress and messages, then the library with remove buttons."""
    st.session_state.setdefault("upload_round", 0)
    st.session_state.setdefault("doc_notices", [])
    st.caption("Questions go to every document unless you choose some under **Ask about** in the sidebar.")
    uploads = st.file_uploader(
        "Upload files (PDF, EPUB, Word, HTML, Markdown, text)",
        accept_multiple_files=True,
        key=f"uploader-{st.session_state.upload_round}",
    )
    url = _url_form(st)
    pasted = _paste_form(st)
    allow = labels.allow_private(st.get_option("server.address"))
    if uploads:
        _add_uploads(st, uploads, settings, allow)
    if url is not None:
        add = functools.partial(_add_url, url, settings, allow)
        _run(st, [(url or "The web address", add, "")])
    if pasted is not None:
        title = labels.paste_title(pasted[0], pasted[1])
        _run(st, [(title, functools.partial(_add_text, pasted[1], title, settings), "")])
    for kind, text in st.session_state.doc_notices:
        getattr(st, kind)(text)
    _library(st, settings, retriever)


def _url_form(st: Any) -> str | None:
    """The web address submitted this run (cleared afterwards), or None."""
    with st.form("add-url", clear_on_submit=True, border=False):
        url = st.text_input("Web address", placeholder="https://…", key="doc_url")
        submitted = st.form_submit_button("Add web page", icon=":material/link:")
    return str(url or "").strip() if submitted else None


def _paste_form(st: Any) -> tuple[str, str] | None:
    """(title, text) submitted this run, or None."""
    with st.expander("Paste text"), st.form("add-text", clear_on_submit=True, border=False):
        title = st.text_input("Title", key="paste_title")
        text = st.text_area("Text", key="paste_text", height=180)
        submitted = st.form_submit_button("Add text", icon=":material/content_paste:")
    return (str(title or ""), str(text or "")) if submitted else None


def _add_url(url: str, settings: Settings, allow: bool | None, progress: Callable[[float, str], None]) -> Document:
    if not url:
        raise rag.InputError("Type the web address of the page to add.")
    return rag.add_document(url, settings=settings, progress=progress, allow_private=allow, wait=False)


def _add_text(text: str, title: str, settings: Settings, progress: Callable[[float, str], None]) -> Document:
    return rag.add_text(text, title=title, settings=settings, progress=progress, wait=False)


def _add_uploads(st: Any, uploads: Sequence[Any], settings: Settings, allow: bool | None) -> None:
    """Each new upload written under its own name in a temporary folder, then added; the uploader is reset."""
    done: set[str] = st.session_state.setdefault("uploaded_ids", set())
    fresh = [u for u in uploads if u.file_id not in done]
    if not fresh:
        return
    with tempfile.TemporaryDirectory(prefix="rag-upload-") as tmp:
        jobs = []
        for i, upload in enumerate(fresh):
            folder = Path(tmp) / str(i)  # two uploads may share a name
            folder.mkdir()
            path = folder / labels.upload_name(upload.name)
            path.write_bytes(upload.getvalue())
            add = functools.partial(_add_path, path, settings, allow)
            jobs.append((path.name, add, str(folder)))
        _run(st, jobs)
    done.update(u.file_id for u in fresh)
    st.session_state.upload_round += 1
    st.rerun()  # at once: a fresh, empty uploader (files dropped on the old one would be lost), notices kept


def _add_path(path: Path, settings: Settings, allow: bool | None, progress: Callable[[float, str], None]) -> Document:
    # The upload's own file name is its source (not the temporary folder it was written to).
    # wait=False: searchable by keyword as soon as this returns; the vectors follow in the background (the sidebar
    # shows how far they have got).
    return rag.add_document(path, settings=settings, progress=progress, allow_private=allow, name=path.name,
                            wait=False)  # fmt: skip


def _run(st: Any, jobs: Sequence[tuple[str, Add, str]]) -> None:
    """Add each document with a progress bar; one notice per document, the others added whatever happens."""
    notices: list[tuple[str, str]] = []
    st.session_state.doc_notices = notices
    for name, add, folder in jobs:
        notices.append(_add_one(st, name, add, folder))


def _add_one(st: Any, name: str, add: Add, folder: str) -> tuple[str, str]:
    bar = st.progress(0.0, text=escape_markdown(f"Reading {name}…"))

    def progress(fraction: float, message: str) -> None:
        shown = labels.without_dir(message, folder) if folder else message
        bar.progress(min(max(float(fraction), 0.0), 1.0), text=escape_markdown(shown or name))

    try:
        doc = add(progress)
    except rag.DocumentExistsError as err:
        return "warning", _named(name, str(err), folder)
    except RagError as err:
        return "error", _named(name, str(err), folder)
    except Exception:  # a bug must not take the page (or the library) down; the log keeps the details
        log.exception("adding %s failed", name)
        return "error", escape_markdown(f"{name} {UNEXPECTED}")
    finally:
        bar.empty()
    return "success", escape_markdown(
        f"Added “{doc.title}”: {labels.size_label(doc.chars)}, {doc.passages} passages. You can ask about it now; "
        "its passages are being embedded in the background (progress in the sidebar)."
    )


def _named(name: str, message: str, folder: str) -> str:
    """The message, naming the document even when rag's message doesn't (e.g. the index is busy)."""
    message = labels.without_dir(message, folder) if folder else message
    return escape_markdown(message if name in message else f"{name}: {message}")


def _library(st: Any, settings: Settings, retriever: Any) -> None:
    st.subheader("In the library")
    if retriever is None:
        st.caption("No index available.")
        return
    try:
        docs = retriever.documents()
    except RagError as err:
        st.error(str(err))
        return
    for doc in docs:
        with st.container(border=True, key=f"doc-{doc.id}"):
            text, button = st.columns([6, 1], vertical_alignment="center")
            text.markdown(f"**{escape_markdown(doc.title)}**")
            text.caption(labels.details(doc))
            button.button(
                "Remove",
                key=f"remove-{doc.id}",
                icon=":material/delete:",
                type="tertiary",
                on_click=_remove,
                args=(st, doc.id, doc.title, settings),
                disabled=len(docs) == 1,
                help="Remove this document and its passages (the others stay)",
            )


def _remove(st: Any, doc_id: str, title: str, settings: Settings) -> None:
    try:
        rag.remove_document(doc_id, settings=settings)
    except RagError as err:
        st.session_state.doc_notices = [("error", _named(title, str(err), ""))]
    else:
        st.session_state.doc_notices = [("success", escape_markdown(f"Removed “{title}”."))]
