"""The project's import graph: modules, import edges between them, import cycles, and the layout's rules.

    python tools/import_graph.py [ROOT]     # ROOT: a checkout or an exported tree (default: this checkout)

The project's modules are rag/, ui/ and app.py. Imports are read with `ast`, never by running the code:
  * module-level imports and imports inside functions (lazy ones) both count as edges, and are told apart;
  * imports under `if TYPE_CHECKING:` never run: listed apart, left out of edges and cycles;
  * `import rag.a.b` and `from rag.a import b` (b a module) are an edge to rag.a.b, not to the packages around
    it; `from rag.a import name` is an edge to rag.a;
  * a string that is exactly another project module's name ("rag.evaluation.bench", for importlib) is a
    dynamic edge: counted apart, and in the cycles and rules like the others (a `python -m` name counts too).
A cycle is a strongly connected component of more than one module, or a module importing itself.
The rules it checks (tests/test_layout.py asserts them): no cycles; nothing in rag/ imports rag.evaluation
but rag.evaluation itself and the CLI (which loads it for `rag eval` / `rag bench`); nothing in rag/ imports
ui or app; chromadb is imported only by rag/index/store.py (and by rag/evaluation, for its baseline and
bench); no module is over MAX_LINES lines.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ("rag", "ui")
SCRIPTS = ("app.py",)
MAX_LINES = 400
CHROMA_ALLOWED = ("rag.index.store", "rag.evaluation")
EVALUATION_ALLOWED = ("rag.evaluation", "rag.cli")  # the CLI loads its eval and bench commands when asked
KINDS = ("module", "function", "dynamic", "type-checking")
_MODULE_STRING = re.compile(r"(?:rag|ui)(?:\.\w+)+")


@dataclass
class Graph:
    root: Path
    lines: dict[str, int] = field(default_factory=dict)  # module -> line count
    # (importer, imported) -> kind; the project's modules only. A pair imported two ways keeps "module".
    edges: dict[tuple[str, str], str] = field(default_factory=dict)
    # (importer, top-level external package) -> kind: chromadb, streamlit, ...
    external: dict[tuple[str, str], str] = field(default_factory=dict)

    def runtime_edges(self) -> set[tuple[str, str]]:
        return {pair for pair, kind in self.edges.items() if kind != "type-checking"}

    def cycles(self) -> list[list[str]]:
        """Strongly connected components of the runtime edges with more than one module, or a self-import."""
        components = _strongly_connected(sorted(self.lines), self.runtime_edges())
        return sorted(sorted(c) for c in components if len(c) > 1 or (c[0], c[0]) in self.edges)


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_files(root: Path) -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted((root / package).rglob("*.py"))
    for script in SCRIPTS:
        if (root / script).is_file():
            yield root / script


def scan(root: Path) -> Graph:
    graph = Graph(root)
    files = {module_name(root, p): p for p in project_files(root)}
    for name, path in files.items():
        source = path.read_text(encoding="utf-8")
        graph.lines[name] = len(source.splitlines())
        is_package = path.name == "__init__.py"
        for target, kind in _imports(ast.parse(source, str(path)), name, is_package):
            resolved = _resolve(target, files) if kind != "dynamic" else (target if target in files else None)
            if kind == "dynamic" and resolved in (None, name):  # not a module, or its own name (`-m` in a message)
                continue
            table, key = (graph.edges, (name, resolved)) if resolved else (graph.external, (name, target.split(".")[0]))
            if key not in table or KINDS.index(kind) < KINDS.index(table[key]):
                table[key] = kind
    return graph


def _imports(tree: ast.Module, module: str, is_package: bool) -> Iterator[tuple[str, str]]:
    """(dotted target, kind) for every imported name; `from a import b` yields a.b, a module or a name in a."""
    package = module if is_package else module.rpartition(".")[0]

    def visit(node: ast.AST, kind: str) -> Iterator[tuple[str, str]]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_STRING.fullmatch(node.value):
            yield node.value, "dynamic"  # a module named in a string, for importlib (the CLI's measuring commands)
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, kind
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield (f"{base}.{alias.name}" if alias.name != "*" else base), kind
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                yield from visit(child, "function" if kind == "module" else kind)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    yield from visit(stmt, "type-checking")
                for stmt in child.orelse:
                    yield from visit(stmt, kind)
            else:
                yield from visit(child, kind)

    yield from visit(tree, "module")


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(target: str, modules: dict[str, Path]) -> str | None:
    """The project module `target` names: itself, or for `from pkg import name`, the longest module prefix."""
    parts = target.split(".")
    if parts[0] not in (*PACKAGES, *(Path(s).stem for s in SCRIPTS)):
        return None
    while parts:
        if ".".join(parts) in modules:
            return ".".join(parts)
        parts.pop()
    return None


def _strongly_connected(nodes: list[str], edges: set[tuple[str, str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative."""
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in sorted(edges):
        succ.setdefault(a, []).append(b)
        succ.setdefault(b, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in succ:
        if start in index:
            continue
        work = [(start, iter(succ[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        component.append(top)
                        if top == node:
                            break
                    found.append(component)
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(succ[child])))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def violations(graph: Graph) -> list[str]:
    """Every broken layout rule, one line each; [] when the layout holds."""
    found = [f"import cycle: {' <-> '.join(c)}" for c in graph.cycles()]
    for (importer, imported), kind in sorted(graph.edges.items()):
        if not _within(importer, "rag"):
            continue
        if _within(imported, "rag.evaluation") and not any(_within(importer, a) for a in EVALUATION_ALLOWED):
            found.append(f"{importer} imports {imported} ({kind}): the pipeline must not depend on evaluation")
        if _within(imported, "ui") or imported == "app":
            found.append(f"{importer} imports {imported} ({kind}): rag must not depend on the UI")
    for (importer, package), kind in sorted(graph.external.items()):
        if package == "chromadb" and not any(_within(importer, allowed) for allowed in CHROMA_ALLOWED):
            found.append(f"{importer} imports chromadb ({kind}): only rag.index.store talks to Chroma")
    found += [f"{m} has {n} lines (over {MAX_LINES})" for m, n in sorted(graph.lines.items()) if n > MAX_LINES]
    return found


def report(graph: Graph) -> str:
    kinds = {k: sum(1 for v in graph.edges.values() if v == k) for k in KINDS}
    by_top: dict[str, int] = {}
    for name in graph.lines:
        by_top[name.split(".")[0]] = by_top.get(name.split(".")[0], 0) + 1
    cycles = graph.cycles()
    lines = [
        f"tree: {graph.root}",
        f"modules: {len(graph.lines)} ({', '.join(f'{k} {v}' for k, v in sorted(by_top.items()))})",
        f"import edges between them: {len(graph.runtime_edges())} "
        f"(module-level {kinds['module']}, only inside functions {kinds['function']}, "
        f"dynamic: a module's name in a string {kinds['dynamic']}); "
        f"under TYPE_CHECKING only, not counted: {kinds['type-checking']}",
        f"import cycles (module-level and function-level edges): {len(cycles)}",
        *(f"  {' <-> '.join(c)}" for c in cycles),
    ]
    broken = violations(graph)
    lines.append(f"layout rules broken: {len(broken)}")
    lines += [f"  {v}" for v in broken]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", nargs="?", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args(argv)
    print(report(scan(args.root.resolve())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
