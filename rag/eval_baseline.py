"""The baseline of `python -m rag eval`: LlamaIndex out of the box over Chroma.

VectorStoreIndex with the default SentenceSplitter (1024 tokens, 200 overlap), the same embedding
model as ours, dense top-k only. Its nodes keep start/end offsets, so the same metrics apply.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import Settings
from .embed import llama_embedding


def baseline_search(paths: Sequence[Path], settings: Settings) -> tuple[Any, dict[str, Any]]:
    """A search function (question, k) -> hits over a fresh in-memory Chroma collection, and build info."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings
    from llama_index.core import Document, StorageContext, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from .eval import Hit
    from .ingest import source_id

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

    def search(question: str, k: int) -> list[Hit]:
        nodes = index.as_retriever(similarity_top_k=k).retrieve(question)
        # TextNodes carry their character offsets in the source document.
        return [
            Hit(
                n.node.ref_doc_id or "",
                n.node.get_content(),
                getattr(n.node, "start_char_idx", None) or 0,
                getattr(n.node, "end_char_idx", None) or 0,
            )
            for n in nodes
        ]

    return search, {"passages": collection.count(), "build_s": round(built, 2)}
