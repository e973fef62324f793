"""`python -m rag eval` (being built)."""

from __future__ import annotations

import argparse

from .config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `python -m rag eval`."""


def run(args: argparse.Namespace, settings: Settings) -> int:
    print("not built yet")
    return 1
