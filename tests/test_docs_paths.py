"""Every path the docs name exists (issue 23 item 16): the README, docs/, the model cards and
the package's docstrings name files that were renamed or removed, and nothing noticed.

Checked: repository paths (``tmatch/...``, ``docs/...``, ``benchmarks/...``, ``tests/...``)
anywhere in the README, docs, model cards and Python sources; the folder tree of
``docs/layout.md`` line by line (each entry under its folder, and the ``x.py`` files its
description names, in that folder); the ``x.py`` files a package's docstring names; and every
``x.py`` of the README's layout block somewhere in the package."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PATH = re.compile(r"(?<![\w./-])((?:tmatch|docs|benchmarks|tests|\.ci)/[\w./-]*[\w/])")
PY = re.compile(r"(?<![\w./-])([A-Za-z_]\w*\.py)\b")
#: a path written as a pattern or a placeholder, not a file
PLACEHOLDER = re.compile(r"[<>*{}]|NNNN|/[A-Z][A-Z_]*(?:[./]|$)")


def _doc_files() -> list[Path]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "tmatch").rglob("*.md"))]
    return [f for f in files if f.is_file()]


def _sources() -> list[Path]:
    return sorted(p for d in ("tmatch", "benchmarks", "tests") for p in (ROOT / d).rglob("*.py")
                  if "__pycache__" not in p.parts and p.name != Path(__file__).name)


def _missing(text: str) -> list[str]:
    out = []
    for m in PATH.finditer(text):
        p = m.group(1).rstrip("./")
        if PLACEHOLDER.search(p) or text[m.end():m.end() + 2].lstrip(".")[:1] in ("*", "{", "<") or p.startswith("tests/") and p.count("/") == 0:
            continue
        if not (ROOT / p).exists():
            out.append(p)
    return out


@pytest.mark.parametrize("doc", _doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_repository_path_a_doc_names_exists(doc):
    assert _missing(doc.read_text()) == []


def test_every_repository_path_a_source_names_exists():
    bad = {str(p.relative_to(ROOT)): miss for p in _sources() if (miss := _missing(p.read_text()))}
    assert bad == {}


def _layout_tree() -> list[tuple[int, str, str]]:
    text = (ROOT / "docs" / "layout.md").read_text()
    block = text.split("```", 2)[1]
    rows = []
    for line in block.splitlines()[1:]:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        if indent >= 20:  # a continuation of the previous entry's description
            rows.append((indent, "", line.strip()))
            continue
        head, _, desc = line.strip().partition("  ")
        rows.append((indent, head.strip(), desc.strip()))
    return rows


def test_the_layout_tree_names_only_what_exists():
    stack: list[tuple[int, Path]] = [(-1, ROOT)]
    missing = []
    last_folder = ROOT
    for indent, head, desc in _layout_tree():
        if not head:  # a continuation of the previous entry's description
            names, folder = PY.findall(desc), last_folder
        else:
            while stack and stack[-1][0] >= indent:
                stack.pop()
            parent = stack[-1][1]
            entries = [e.strip() for e in head.split(",") if e.strip()]
            for e in entries:
                target = parent / e.rstrip("/")
                if not target.exists():
                    missing.append(str(target.relative_to(ROOT)))
            first = parent / entries[0].rstrip("/")
            folder = first if entries[0].endswith("/") else parent
            if entries[0].endswith("/") and "/" not in entries[0].rstrip("/"):
                stack.append((indent, first))
            last_folder = folder
            names = PY.findall(desc)
        for name in names:
            if not (folder / name).exists():
                missing.append(str((folder / name).relative_to(ROOT)))
    assert missing == []


def test_a_packages_docstring_names_only_its_own_files():
    bad = []
    for init in sorted((ROOT / "tmatch").rglob("__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        for name in PY.findall(doc):
            if not (init.parent / name).is_file():
                bad.append(f"{init.relative_to(ROOT)}: {name}")
    assert bad == []


def test_the_readme_layout_names_files_that_exist():
    text = (ROOT / "README.md").read_text()
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    known = {p.name for p in (ROOT / "tmatch").rglob("*.py")}
    assert sorted(set(PY.findall(block)) - known) == []


def test_the_checks_see_a_missing_file():
    """The checks themselves: a made-up path and a made-up module are caught."""
    assert _missing("see `tmatch/matchers/nowhere.py` and docs/") == ["tmatch/matchers/nowhere.py"]
    assert PY.findall("ncc.py, neural.py (gone)") == ["ncc.py", "neural.py"]
