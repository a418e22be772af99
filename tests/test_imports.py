"""The import graph of the package, read from the source with ``ast``: no cycles, and the
layers point one way (models never import matchers; the benchmark's run never imports its report)."""

from __future__ import annotations

import ast
from pathlib import Path

import tmatch

ROOT = Path(tmatch.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = ("tmatch",) + path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """``{module: modules of tmatch it imports}`` (at any depth in the file, so imports inside
    functions count too: a cycle through a lazy import is still a cycle of the design)."""
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                    pkg = pkg[: len(pkg) - node.level + 1]
                    base = ".".join(pkg + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for t in targets:
                if t in modules and t != name:
                    deps.add(t)
        graph[name] = deps
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _is_package_reexport(a: str, b: str) -> bool:
    """``pkg/__init__.py`` importing its own submodule (and the submodule importing a sibling
    through the package) is how re-exports work, not a design cycle."""
    return b.startswith(a + ".") or a.startswith(b + ".")


def test_the_import_graph_has_no_cycles():
    graph = import_graph()
    # Drop the edges from a package to its own submodules (re-exports).
    pruned = {m: {d for d in deps if not _is_package_reexport(m, d)} for m, deps in graph.items()}
    assert find_cycles(pruned) == []


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_models_do_not_import_matchers_and_the_run_does_not_import_the_report():
    graph = import_graph()
    models = {m: d for m, d in graph.items() if m.startswith("tmatch.models")}
    assert not [(m, d) for m, deps in models.items() for d in deps if d.startswith("tmatch.matchers")]
    assert "tmatch.bench.report" not in graph["tmatch.bench.run"]


def test_the_graph_sees_lazy_imports():
    graph = import_graph()
    assert "tmatch.models.presence" in graph["tmatch.train.neural"]
    assert "tmatch.matchers.neural" in graph["tmatch.train.neural"]
