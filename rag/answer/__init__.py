"""Answering helpers that judge by meaning rather than by surface words (answerability scoring)."""
