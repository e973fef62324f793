"""pyproject.toml declares what the code imports, and requirements.txt pins it at versions in the declared ranges.

No network, no install: pyproject.toml and requirements.txt are read as text, the code's imports with `ast`,
and `importlib.metadata` says which installed distribution provides each imported module.

- Every dependency declared in pyproject.toml (and every tool of its `test` extra) is pinned in
  requirements.txt, the lock that `make` installs, at a version its range accepts.
- Every third-party module that rag/, ui/ or app.py imports (at the top of a file or inside a function) is
  provided by a distribution that pyproject.toml declares itself. Arriving as some other dependency's
  dependency is not enough: that one may drop it, or name it through an extra that pip does not match (justext
  asks for lxml[html_clean] and a fresh venv gets no lxml_html_clean). The standard library
  (sys.stdlib_module_names) and the project's own packages are left out. The `test` extra (pytest, hypothesis,
  playwright, ...) is not a runtime dependency: the code of the wheel importing one of those fails here.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from functools import cache
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
CODE = [ROOT / "rag", ROOT / "ui", ROOT / "app.py"]
FIRST_PARTY = {"rag", "ui", "app"}


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def declared() -> list[Requirement]:
    return [Requirement(line) for line in _project()["dependencies"]]


def _test_extra() -> list[Requirement]:
    return [Requirement(line) for line in _project()["optional-dependencies"]["test"]]


def lock(text: str | None = None) -> dict[str, Version]:
    """requirements.txt as {canonical name: pinned version}; every line must be an exact pin."""
    text = (ROOT / "requirements.txt").read_text(encoding="utf-8") if text is None else text
    pins: dict[str, Version] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"requirements.txt: {raw!r} is not an exact pin"
        pins[canonicalize_name(req.name)] = Version(specs[0].version)
    return pins


def unpinned(requirements: list[Requirement], pins: dict[str, Version]) -> list[str]:
    """The requirements that the lock leaves out or pins outside their range, each with the reason."""
    problems = []
    for req in requirements:
        if req.marker is not None and not req.marker.evaluate():
            continue
        pinned = pins.get(canonicalize_name(req.name))
        if pinned is None:
            problems.append(f"{req}: not pinned in requirements.txt")
        elif not req.specifier.contains(pinned, prereleases=True):
            problems.append(f"{req}: requirements.txt pins {pinned}, outside the range")
    return problems


def imports(paths: list[Path] = CODE) -> dict[str, set[str]]:
    """Absolute imports of the code, {dotted module: files importing it}, third-party ones only."""
    found: dict[str, set[str]] = {}
    files = [f for p in paths for f in ([p] if p.is_file() else sorted(p.rglob("*.py")))]
    for file in files:
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top not in sys.stdlib_module_names and top not in FIRST_PARTY:
                    found.setdefault(module, set()).add(str(file.relative_to(ROOT)))
    return found


@cache
def _top_level() -> dict[str, list[str]]:
    return packages_distributions()


@cache
def _files(dist: str) -> frozenset[str]:
    return frozenset(str(f) for f in distribution(dist).files or ())


def providers(module: str) -> set[str]:
    """The installed distributions (canonical names) that provide `module`. A namespace package such as
    llama_index is shared by several: the ones holding the imported submodule (llama_index/core/...) count."""
    top = module.split(".")[0]
    dists = set(_top_level().get(top, ()))
    parts = module.split(".")
    for depth in range(len(parts), 1, -1):
        if len(dists) <= 1:
            break
        prefix = "/".join(parts[:depth])
        try:
            holding = {d for d in dists if any(f.startswith(prefix + "/") or f == prefix + ".py" for f in _files(d))}
        except PackageNotFoundError:
            break
        if holding:
            dists = holding
            break
    return {canonicalize_name(d) for d in dists}


def undeclared(found: dict[str, set[str]], requirements: list[Requirement]) -> list[str]:
    """The imported modules that no declared requirement provides, each with where it is imported."""
    names = {canonicalize_name(r.name) for r in requirements}
    problems = []
    for module, where in sorted(found.items()):
        dists = providers(module)
        if not dists:
            problems.append(f"{module} (imported in {', '.join(sorted(where))}): no installed distribution provides it")
        elif not dists & names:
            problems.append(
                f"{module} (imported in {', '.join(sorted(where))}): provided by {', '.join(sorted(dists))}, "
                "which pyproject.toml does not declare"
            )
    return problems


def test_every_declared_dependency_is_pinned_in_range() -> None:
    problems = unpinned(declared() + _test_extra(), lock())
    assert not problems, "\n".join(problems)


def test_every_imported_distribution_is_declared() -> None:
    found = imports()
    # The scan sees the readers and the models' clients, lazy imports inside functions included.
    assert {"trafilatura", "pypdf", "docx", "ebooklib", "markdown_it", "llama_index.llms.openai_like"} <= set(found)
    problems = undeclared(found, declared())
    assert not problems, "\n".join(problems)


def test_the_checks_catch_a_missing_or_wrong_declaration() -> None:
    """The two checks above fail when pyproject.toml or requirements.txt goes wrong (not only when run by hand)."""
    found = imports()
    without_pypdf = [r for r in declared() if canonicalize_name(r.name) != "pypdf"]
    assert [p for p in undeclared(found, without_pypdf) if p.startswith("pypdf")], "a missing pypdf went unseen"
    # Only as a dependency's dependency: lxml comes with trafilatura, yet office.py imports it itself.
    without_lxml = [r for r in declared() if canonicalize_name(r.name) != "lxml"]
    assert [p for p in undeclared(found, without_lxml) if p.startswith("lxml")]
    # A namespace package counts per submodule: llama-index-core does not stand in for the openai-like LLM.
    without_like = [r for r in declared() if canonicalize_name(r.name) != "llama-index-llms-openai-like"]
    assert [p for p in undeclared(found, without_like) if p.startswith("llama_index.llms.openai_like")]
    pins = lock()
    too_new = unpinned([Requirement("trafilatura>=99")], pins)
    assert too_new == [f"trafilatura>=99: requirements.txt pins {pins['trafilatura']}, outside the range"]
    del pins["pypdf"]
    assert "pypdf>=7: not pinned in requirements.txt" in unpinned([Requirement("pypdf>=7")], pins)
