"""The layout's rules, checked on this checkout with tools/import_graph.py (imports read with ast, nothing run).

No import cycles; the pipeline never imports rag.evaluation (the CLI loads it for `rag eval`); rag never imports the UI; only rag/index/store.py
(and rag/evaluation) imports chromadb; no module over 400 lines. The same checks run on a small made-up tree
that breaks each rule, so a rule that can no longer fail is noticed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.import_graph import MAX_LINES, scan, violations

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def graph():  # type: ignore[no-untyped-def]
    return scan(ROOT)


def test_the_checkout_keeps_every_layout_rule(graph) -> None:  # type: ignore[no-untyped-def]
    assert violations(graph) == []


def test_the_graph_sees_the_whole_project(graph) -> None:  # type: ignore[no-untyped-def]
    # A scan that found nothing would pass every rule.
    assert {"app", "rag", "rag.api", "rag.index.store", "rag.evaluation.retrieval", "ui.render"} <= set(graph.lines)
    assert ("app", "ui.render") in graph.edges
    assert ("rag.index.store", "chromadb") in graph.external
    assert graph.edges.get(("rag.answer.kinds", "rag.models.embed")) == "function"  # a lazy import counts
    assert graph.edges.get(("rag.cli", "rag.evaluation.retrieval")) == "dynamic"  # so does importlib's


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_every_rule_can_fail(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "rag/__init__.py": "",
            "rag/a.py": "from rag import b\n",
            "rag/b.py": "def f():\n    from rag.a import x\n",  # a cycle through a lazy import
            "rag/c.py": "import rag.c\n",  # a self-import
            "rag/search/__init__.py": "",
            "rag/search/hits.py": "import chromadb\nfrom rag.evaluation import bench\nfrom ui.render import x\n",
            "rag/evaluation/__init__.py": "",
            "rag/evaluation/bench.py": "import chromadb\nfrom rag.index import store\n",  # both allowed
            "rag/index/__init__.py": "",
            "rag/index/store.py": "import chromadb\n",
            "rag/long.py": "x = 1\n" * (MAX_LINES + 1),
            "rag/lazy.py": "import importlib\ndef f():\n    importlib.import_module('rag.evaluation.bench')\n",
            "rag/cli.py": "import importlib\nCOMMANDS = {'bench': 'rag.evaluation.bench'}\n",  # allowed
            "ui/__init__.py": "",
            "ui/render.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import app\n",
            "app.py": "import rag\nfrom ui import render\n",
        },
    )
    found = violations(scan(tmp_path))
    assert found == [
        "import cycle: rag.a <-> rag.b",
        "import cycle: rag.c",
        "rag.lazy imports rag.evaluation.bench (dynamic): the pipeline must not depend on evaluation",
        "rag.search.hits imports rag.evaluation.bench (module): the pipeline must not depend on evaluation",
        "rag.search.hits imports ui.render (module): rag must not depend on the UI",
        "rag.search.hits imports chromadb (module): only rag.index.store talks to Chroma",
        f"rag.long has {MAX_LINES + 1} lines (over {MAX_LINES})",
    ]


def _test_data_strings(root: Path) -> list[str]:
    """String constants naming the tests/ folder in the product's modules (rag/ but its measuring tools, ui/, app.py)."""
    import ast

    files = [p for p in (root / "rag").rglob("*.py") if "evaluation" not in p.parts]
    files += [*(root / "ui").glob("*.py"), *root.glob("app.py")]
    found = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            value = node.value if isinstance(node, ast.Constant) else None
            if isinstance(value, str) and (value == "tests" or value.startswith("tests/")):
                found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_the_product_reads_no_file_under_tests(tmp_path: Path) -> None:
    # Trainers and their example data live in tools/ and tests/data/; the runtime only reads what it ships.
    assert _test_data_strings(ROOT) == []
    _write(tmp_path, {"rag/answer/kinds.py": 'EXAMPLES = ROOT / "tests" / "data" / "q.jsonl"\n', "ui/x.py": "", "app.py": ""})
    assert _test_data_strings(tmp_path) == ["rag/answer/kinds.py:1"]  # the check can fail
