"""The package layout stays navigable: imports between mclrt modules point one way (no cycles, lazy
imports inside functions included), and runtime/ keeps its folders' direction: nothing but
commands/ reaches into commands/; inputs/ never reaches into bench/, checks/, video/, trt/ or
kernels/; and nothing under runtime/ but cli.py (which registers the training-side commands)
imports training/ or export/."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROOTS = {"training": "mclrt.training", "export": "mclrt.export", "calibration": "mclrt.calibration", "runtime": "mclrt.runtime", "tools": "mclrt.tools"}


def _modules() -> dict[str, Path]:
    found = {}
    for folder, package in ROOTS.items():
        for path in (REPO / folder).rglob("*.py"):
            parts = [p for p in path.relative_to(REPO / folder).with_suffix("").parts if p != "__init__"]
            found[".".join([package, *parts])] = path
    return found


def _imports(path: Path, known: dict[str, Path]) -> set[str]:
    """Every mclrt module `path` imports, at any depth (lazy imports in functions count)."""
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mclrt."):
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                targets.add(child if child in known else node.module)
        elif isinstance(node, ast.Import):
            targets.update(a.name for a in node.names if a.name.startswith("mclrt."))
    return {t for t in targets if t in known}


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {name: _imports(path, known) - {name} for name, path in known.items()}


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_find_cycle_has_teeth():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles_between_mclrt_modules():
    graph = _graph()
    assert len(graph) > 100, "the walk found too few modules: is the layout mapping right?"
    assert _find_cycle(graph) is None


def test_runtime_imports_point_down():
    graph = _graph()
    for name, targets in graph.items():
        if not name.startswith("mclrt.runtime.") or name == "mclrt.runtime.cli":
            continue
        upward = sorted(t for t in targets if t.startswith(("mclrt.training", "mclrt.export", "mclrt.runtime.cli")))
        assert not upward, f"{name} imports {upward}: runtime/ runs without torch and is imported by the training side, not the reverse"
        if not name.startswith("mclrt.runtime.commands."):
            into_commands = sorted(t for t in targets if t.startswith("mclrt.runtime.commands"))
            assert not into_commands, f"{name} imports the command modules {into_commands}: commands sit on top of everything else"
        if name.startswith("mclrt.runtime.inputs."):
            outward = sorted(t for t in targets if t.startswith(tuple(f"mclrt.runtime.{f}" for f in ("bench", "checks", "video", "trt", "kernels"))))
            assert not outward, f"{name} imports {outward}: the input side depends only on itself and the core modules"
