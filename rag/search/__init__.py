"""Stage 2, searching: hybrid BM25 + dense retrieval over an existing build (searching never builds)."""
