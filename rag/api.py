"""The public functions: the one place that validates input, chooses the parts and decides when to build.

Scripts, the CLI and the chat app all come through here: `open_index` (opens the index, building the
default article's on first use, with a progress callback), `retrieve`, `query`, `query_stream`, and the
document library: `add_document`, `add_text`, `list_documents`, `remove_document`, and each document's
`suggested_questions`.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.answer.pipeline import AnswerStream, PassageSource, answer_stream
from rag.answer.plan import prime_documents as prime_whole
from rag.answer.plan import prime_overview as prime
from rag.config import Settings
from rag.errors import IndexMissingError, InputError, ModelAuthError, ModelError
from rag.index import library, vectors
from rag.index.build import Progress, build_index
from rag.inputs import validate_history, validate_k, validate_question
from rag.models.chat import ChatModel, get_chat_model
from rag.search.retriever import Retriever, open_retriever
from rag.types import Answer, Document, Passage, Turn, VectorProgress

DEFAULT_CORPUS = next(f.default for f in dataclasses.fields(Settings) if f.name == "corpus_path")


def open_index(
    settings: Settings | None = None, *, progress: Progress | None = None, any_corpus: bool = False
) -> Retriever:
    """The retriever over the current index. When none exists, `settings.corpus_path` is built first
    (reporting to `progress`) if it is the bundled default article, or any corpus with `any_corpus` (the
    app, whose user chose RAG_CORPUS_PATH); otherwise `IndexMissingError` says to run `python -m rag index`."""
    settings = settings or Settings.from_env()
    try:
        return open_retriever(settings)
    except IndexMissingError:
        if settings.corpus_path != DEFAULT_CORPUS and not any_corpus:
            raise
    build_index(settings=settings, progress=progress)
    return open_retriever(settings)


def retrieve(
    question: str, k: int = 5, *, settings: Settings | None = None, documents: Sequence[str] | None = None
) -> list[Passage]:
    """The k passages that best answer `question` (hybrid BM25 + dense, fused score in Passage.score),
    only from the documents with these ids when `documents` is given."""
    settings = settings or Settings.from_env()
    text = validate_question(question, settings)
    k = validate_k(k)  # before open_index, which may build the default index first
    retriever = open_index(settings)
    return retriever.retrieve(text, k, _known(documents, retriever))


def add_document(
    path_or_url: str | Path, *, settings: Settings | None = None, progress: Progress | None = None,
    allow_private: bool | None = None, name: str | None = None, wait: bool = True,
) -> Document:  # fmt: skip
    """Read a file (PDF, EPUB, DOCX, HTML, Markdown, text) or an http(s) URL and add it to the library.
    `allow_private` None allows URLs on loopback/private networks unless the caller is the app on a public
    address (it passes False); `RAG_ALLOW_PRIVATE_URLS` allows them always. `name` replaces the file's path
    as its source (an uploaded file's own name rather than the temporary file it was saved to).

    The document is keyword-searchable as soon as it is read; its vectors come after. `wait` (the default)
    returns once they are written too (progress covers both); `wait=False` returns at once and leaves them to
    a background pass in this process (`embedding_status` reports on it). Interrupted while waiting (Ctrl-C),
    the document stays in the library, keyword-searchable, and the next pass writes the rest of its vectors."""
    settings = settings or Settings.from_env()
    allow = settings.allow_private_urls or (True if allow_private is None else allow_private)
    report = progress or _no_progress
    doc = library.add_document(path_or_url, settings=settings, progress=_share(report, 0.1), allow_private=allow,
                               name=name)  # fmt: skip
    return _then_embed(doc, settings, report, wait)


def add_text(
    text: str, *, title: str, settings: Settings | None = None, progress: Progress | None = None, wait: bool = True
) -> Document:
    """Add pasted text as a document titled `title` (`wait` as for `add_document`)."""
    settings = settings or Settings.from_env()
    report = progress or _no_progress
    doc = library.add_text(text, title=title, settings=settings, progress=_share(report, 0.1))
    return _then_embed(doc, settings, report, wait)


def _no_progress(fraction: float, message: str) -> None:
    pass


def _share(progress: Progress, upto: float) -> Progress:
    """The reading-and-storing step's progress, scaled into 0..`upto` (the vectors take the rest)."""
    return lambda fraction, message: progress(upto * fraction, message)


def _then_embed(doc: Document, settings: Settings, progress: Progress, wait: bool) -> Document:
    if wait:
        vectors.finish(settings, counted=vectors.as_progress(progress, 0.1))
        progress(1.0, "Index ready")
    else:
        vectors.JOBS.start(settings)
        progress(1.0, "Searchable by keyword; embedding its passages in the background")
    return doc


def resume_embedding(settings: Settings | None = None) -> VectorProgress | None:
    """Start writing the vectors still missing from the current build (a document added just before the app
    stopped) in a background pass of this process; None when none are missing. The app calls this whenever
    it opens the index; a pass already running is joined, not doubled."""
    settings = settings or Settings.from_env()
    if vectors.pending(settings) == 0:
        return None
    return vectors.JOBS.start(settings)


def embedding_status(settings: Settings | None = None) -> VectorProgress | None:
    """The background vector pass of this process for `settings`' store: running or finished, how far it got
    (None: none was started)."""
    return vectors.JOBS.status(settings or Settings.from_env())


def list_documents(settings: Settings | None = None) -> list[Document]:
    """The library's documents, oldest first."""
    return open_index(settings).documents()


def remove_document(doc_id: str, *, settings: Settings | None = None) -> Document:
    """Remove one document (by id) and its passages; the others stay as they are."""
    if not isinstance(doc_id, str) or not doc_id.strip():
        raise InputError("Give the id of the document to remove (see `rag docs`).")
    return library.remove_document(doc_id.strip(), settings=settings or Settings.from_env())


def _known(documents: Sequence[str] | None, retriever: Retriever) -> tuple[str, ...] | None:
    """The ids asked for, checked against the library (None: all documents)."""
    if documents is None:
        return None
    if isinstance(documents, str) or not all(isinstance(d, str) for d in documents) or not documents:
        raise InputError("`documents` must be a non-empty list of document ids (see `rag docs`).")
    ids = {d.id for d in retriever.documents()}
    unknown = [d for d in documents if d not in ids]
    if unknown:
        raise InputError(f"No document with id {unknown[0]!r} in the library (see `rag docs`).")
    return tuple(documents)


@dataclass(frozen=True)
class _Only:
    """A retriever restricted to some documents, for the answering pipeline."""

    retriever: Retriever
    documents: tuple[str, ...]

    def retrieve(self, question: str, k: int = 5) -> list[Passage]:
        return self.retriever.retrieve(question, k, self.documents)

    def passage_vectors(self, passages: Sequence[Passage]) -> list[Any]:
        return self.retriever.passage_vectors(passages)

    def scope(self) -> list[str]:
        return list(self.documents)

    def document_passages(self, doc_id: str) -> tuple[list[Passage], Any]:
        return self.retriever.document_passages(doc_id)

    def source_text(self, source: str) -> str:
        return self.retriever.source_text(source)


def query(
    question: str,
    *,
    history: Sequence[Turn] = (),
    settings: Settings | None = None,
    retriever: PassageSource | None = None,
    model: ChatModel | None = None,
    documents: Sequence[str] | None = None,
) -> Answer:
    """Answer `question` (a follow-up of `history`) about the indexed documents (or only `documents`, by id),
    with checked citations."""
    stream = query_stream(question, history=history, settings=settings, retriever=retriever, model=model,
                          documents=documents)  # fmt: skip
    return stream.answer


def query_stream(
    question: str,
    *,
    history: Sequence[Turn] = (),
    settings: Settings | None = None,
    retriever: PassageSource | None = None,
    model: ChatModel | None = None,
    documents: Sequence[str] | None = None,
) -> AnswerStream:
    """Like `query`, streaming: iterate for text, then `.answer`. Bad input raises InputError right here."""
    settings = settings or Settings.from_env()
    text = validate_question(question, settings)
    turns = validate_history(history, settings)
    if retriever is None:
        retriever = open_index(settings)
    if documents is not None:
        if not isinstance(retriever, Retriever):
            raise InputError("`documents` needs the library's own retriever (leave `retriever` unset).")
        retriever = _Only(retriever, _known(documents, retriever) or ())
    if model is None and settings.resolved_provider != "extractive":
        model = load_chat_model(settings)
    stream = answer_stream(text, turns, settings=settings, retriever=retriever, model=model)
    return _noting_pending(stream, retriever)


def _noting_pending(stream: AnswerStream, retriever: PassageSource) -> AnswerStream:
    """The answer, saying how many passages in scope had no vector yet (counted as it is asked: retrieval comes
    right after, so the count is at most a batch high). Other retrievers (a caller's own) always have them."""
    library_retriever = retriever.retriever if isinstance(retriever, _Only) else retriever
    if not isinstance(library_retriever, Retriever):
        return stream
    pending = library_retriever.vectors_pending(retriever.documents if isinstance(retriever, _Only) else None)
    if not pending:
        return stream

    def steps() -> Generator[str, None, Answer]:
        yield from stream
        return dataclasses.replace(stream.answer, vectors_pending=pending)

    return AnswerStream(steps())


def prime_overview(documents: Sequence[str] | None = None, *, settings: Settings | None = None,
                   model: ChatModel | None = None) -> bool:  # fmt: skip
    """Have the local model read the whole text of `documents` (None: the library) now, in the background of a
    session, so a first "What is this about?" answers in seconds rather than reading ~2,000 tokens first
    (rag.answer.plan). True when a prompt was read; False when nothing applies (another provider, or
    documents too long to read whole)."""
    settings = settings or Settings.from_env()
    if settings.resolved_provider != "local":
        return False  # remote servers bill the prompt; their reading is fast anyway
    retriever = open_index(settings)
    scope: Any = retriever if documents is None else _Only(retriever, _known(documents, retriever) or ())
    model = model or load_chat_model(settings)
    return model is not None and prime(model, scope, settings)


def prime_documents(documents: Sequence[str] | None = None, *, settings: Settings | None = None,
                    model: ChatModel | None = None) -> int:  # fmt: skip
    """Have the local model hold the whole-document prompt of each of `documents` (None: the library) that is
    short enough to be read whole: restored from the state saved the first time (well under a second), else
    read now (20-70 s on 2 cores: call this in the background when a document is added). Then a question about
    it reads only its own words. The number of documents primed (0 for another provider)."""
    settings = settings or Settings.from_env()
    if settings.resolved_provider != "local" or not settings.whole_documents:
        return 0
    retriever = open_index(settings)
    ids = list(documents) if documents is not None else retriever.scope()
    model = model or load_chat_model(settings)
    return 0 if model is None else prime_whole(model, retriever, _known(ids, retriever) or (), settings)


def load_chat_model(settings: Settings) -> ChatModel | None:
    """The chat model, or None (answers quote passages) when it fails and the extractive fallback is on."""
    try:
        return get_chat_model(settings)
    except ModelAuthError:
        raise  # a rejected key must be fixed, not hidden behind the fallback
    except ModelError:
        if settings.fallback_extractive:
            return None
        raise


_making = threading.Lock()  # one document's suggestions at a time per process: they share the model


def suggested_questions(
    doc_id: str | None = None, *, settings: Settings | None = None, make: bool = True, model: ChatModel | None = None
) -> list[str]:
    """Questions about a document (None: every document, in library order) that were each answered with valid
    citations. Made once per build and stored with it: the first call makes the missing ones with the chat
    model (minutes on a CPU), later calls only read them; `make=False` never makes any. The extractive provider
    (no chat model) has none."""
    settings = settings or Settings.from_env()
    retriever = open_index(settings)
    ids = [d.id for d in retriever.documents()] if doc_id is None else list(_known([doc_id], retriever) or ())
    if settings.resolved_provider == "extractive":
        return []
    return [q for one in ids for q in _suggestions(one, retriever, settings, make, model)]


def _suggestions(
    doc_id: str, retriever: Retriever, settings: Settings, make: bool, model: ChatModel | None
) -> list[str]:
    build = retriever.stats.collection
    stored = library.stored_suggestions(settings, build, doc_id)
    if stored is not None or not make:
        return stored or []
    with _making:
        stored = library.stored_suggestions(settings, build, doc_id)  # made by another thread meanwhile?
        if stored is not None:
            return stored
        model = model or load_chat_model(settings)
        if model is None:  # the model failed and answers fall back to quoting: nothing to make, nothing stored
            return []
        doc = next(d for d in retriever.documents() if d.id == doc_id)
        passages, vectors = retriever.document_passages(doc_id)
        text = retriever.document_text(doc_id)

        def ask(question: str) -> Answer:
            return query(question, settings=settings, model=model, documents=[doc_id])

        from rag.suggest import make_suggestions  # a library feature over answering, loaded when first asked

        questions = make_suggestions(doc_id, doc.title, text, passages, vectors, model=model, ask=ask)
        library.store_suggestions(settings, build, doc_id, questions, f"{model.provider}/{model.model}")
    return questions
