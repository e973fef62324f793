"""Prompt files in `prompts/`, loaded by name and filled strictly.

Placeholders are written `$name` (string.Template), so passage text full of braces needs no escaping.
A placeholder without a value, or a value without a placeholder, is a ConfigError: a silently empty
slot would send the model a prompt nobody reviewed.
"""

from __future__ import annotations

import functools
import string
from pathlib import Path

from rag.config import PROMPT_DIR
from rag.errors import ConfigError


@functools.lru_cache(maxsize=32)
def load_prompt(name: str, directory: Path = PROMPT_DIR) -> str:
    """The text of `prompts/<name>.txt` (trailing newline removed)."""
    if not name.replace("_", "").isalnum():
        raise ConfigError(f"Invalid prompt name {name!r}.")
    path = directory / f"{name}.txt"
    try:
        return path.read_text(encoding="utf-8").rstrip("\n")
    except OSError:
        raise ConfigError(f"Prompt file {path} is missing.") from None


def placeholders(template: str) -> set[str]:
    """Names of the `$name` / `${name}` placeholders in a template."""
    names: set[str] = set()
    for match in string.Template.pattern.finditer(template):
        name = match.group("named") or match.group("braced")
        if name:
            names.add(name)
    return names


def render(name: str, directory: Path = PROMPT_DIR, **values: str) -> str:
    """Fill prompt `name` with `values`; every placeholder must get a value and every value a placeholder."""
    template = load_prompt(name, directory)
    wanted = placeholders(template)
    missing = wanted - values.keys()
    if missing:
        raise ConfigError(f"Prompt {name!r} needs a value for: {', '.join(sorted(missing))}.")
    unused = values.keys() - wanted
    if unused:
        raise ConfigError(f"Prompt {name!r} has no placeholder for: {', '.join(sorted(unused))}.")
    # substitute() reads only the template, so `$` or braces inside passage text are left alone.
    return string.Template(template).substitute(values)
