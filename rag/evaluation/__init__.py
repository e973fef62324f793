"""Measuring tools (`python -m rag eval`, `python -m rag bench`): nothing in the pipeline imports this package."""
