"""The import graph of the project's own code: imports flow one way, run_bench.py (and its cli/
package) -> reports -> bench -> archs (a layer may skip layers below it), and no module imports itself back through
others. Imports inside functions count as much as those at the top of a file."""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

REPO = Path(__file__).resolve().parents[1]
LAYERS = {"archs": 0, "bench": 1, "reports": 2, "run_bench": 3, "cli": 3}  # lower never imports higher


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    files = [REPO / "run_bench.py"]
    for top in ("archs", "bench", "reports", "cli"):
        files += sorted((REPO / top).rglob("*.py"))
    return {_module_name(p): p for p in files if "__pycache__" not in p.parts}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module ``name`` refers to (its nearest existing parent), or None outside it."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph() -> nx.DiGraph:
    modules = project_modules()
    g = nx.DiGraph()
    g.add_nodes_from(modules)
    for mod, path in modules.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*up, base] if base else up)
                # ``from pkg import sub`` imports the submodule when there is one
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for t in targets:
                dep = _resolve(t, modules)
                if dep and dep != mod:
                    g.add_edge(mod, dep, line=node.lineno)
    return g


def _layer(mod: str) -> int:
    return LAYERS[mod.split(".")[0]]


def test_graph_sees_known_imports():
    g = import_graph()
    assert g.has_edge("cli.common", "bench.run.jobs")  # inside a function
    assert g.has_edge("run_bench", "cli.parser")
    assert g.has_edge("cli.runs", "bench.gate.check")
    assert g.has_edge("bench.run.adapters", "bench.run.jobs")  # relative, at the top
    assert g.has_edge("archs", "archs.registry")
    # the sub-packages of bench/ (issue 18's layout)
    assert g.has_edge("bench.arm.counts", "bench.arm.runner")
    assert g.has_edge("bench.train.loop", "bench.measure.accuracy")
    assert g.has_edge("bench.data.datasets", "bench.data.samples")
    assert not {"bench.arm_counts", "bench.latency", "bench.data.data", "bench.train.train"} & set(g)


def test_no_import_cycles():
    cycles = list(nx.simple_cycles(import_graph()))
    assert not cycles, "import cycles: " + "; ".join(" -> ".join([*c, c[0]]) for c in cycles)


def test_imports_flow_run_bench_reports_bench_archs():
    g = import_graph()
    bad = [f"{a} (line {d['line']}) imports {b}" for a, b, d in g.edges(data=True) if _layer(b) > _layer(a)]
    assert not bad, "imports against run_bench.py -> reports -> bench -> archs: " + "; ".join(bad)


@pytest.mark.parametrize("mod", sorted(m for m in project_modules() if m.startswith("archs")))
def test_archs_needs_only_torch(mod):
    """A design can be copied out: archs imports nothing of bench, reports or the CLI (checked
    above) and, outside the project, only torch and the standard library."""
    import sys
    path = project_modules()[mod]
    allowed = {"torch", *sys.stdlib_module_names}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        else:
            continue
        for n in names:
            top = n.split(".")[0]
            assert top in allowed or top == "archs", f"{path.name} imports {n}"


def test_bench_is_grouped_by_role():
    """bench/'s top holds only the modules every role uses (docs/architecture.md says why); the rest is
    in the folder of its role, and no two modules share a word for different things."""
    top = sorted(p.name for p in (REPO / "bench").glob("*.py"))
    assert top == ["__init__.py", "cache.py", "columns.py", "paths.py"]
    packages = sorted(p.parent.name for p in (REPO / "bench").glob("*/__init__.py"))
    assert packages == ["arm", "backends", "data", "gate", "measure", "models", "run", "train"]
    stems = [p.stem for p in (REPO / "bench").rglob("*.py") if p.stem != "__init__"]
    assert not {"measurements", "measure"} & set(stems), "'measure' is the package bench/measure/ only"
    assert not (REPO / "cli" / "measure.py").exists()
    assert "gate" not in stems, "'gate' is the package bench/gate/ only (the latency wait is the quiet wait)"
