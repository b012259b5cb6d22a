"""The house has one way through it: every import between mclrt modules points down the floors below,
drawn from the code's own imports (lazy imports inside functions included), with no exemptions.

    tools/                                   scripts on top of everything
    export/                                  reads training's networks and checkpoints
    training/, calibration/                  side by side; neither imports the other
    runtime/                                 the torch-free ground floor

Inside each top-level package its folders are floors too (runtime/: the core modules, then inputs/,
kernels/, jetson/, then the runners and trt/, then the one place that opens runners, then checks/,
bench/, video/, serve/, then the Python API, then the commands and the CLI root). Commands are
registered through the `mclrt.commands` entry points (pyproject.toml), not imported by the CLI root,
so no arrow runs back up. The test also fails on any loop between modules or between folders.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROOTS = {"training": "mclrt.training", "export": "mclrt.export", "calibration": "mclrt.calibration", "runtime": "mclrt.runtime", "tools": "mclrt.tools"}

# Top-level packages, lowest first. Packages on the same floor may not import each other.
PACKAGE_FLOORS = {"runtime": 0, "training": 1, "calibration": 1, "export": 2, "tools": 3}

# Floors inside a package: the longest matching module prefix wins; a module no prefix names sits
# on floor 0 of its package.
MODULE_FLOORS = {
    "runtime": {
        # 0: errors, fsutil, threads, notices, model_dir, model_info, image_out, feeds
        "mclrt.runtime.inputs": 1, "mclrt.runtime.kernels": 1, "mclrt.runtime.jetson": 1,
        "mclrt.runtime.runners": 2, "mclrt.runtime.trt": 2,
        "mclrt.runtime.backends": 3, "mclrt.runtime.pipeline": 3, "mclrt.runtime.compare": 3,
        "mclrt.runtime.checks": 4, "mclrt.runtime.bench": 4, "mclrt.runtime.video": 4, "mclrt.runtime.serve": 4,
        "mclrt.runtime.api": 5, "mclrt.runtime": 5,  # the package itself re-exports the API, lazily
        "mclrt.runtime.jobs": 6,  # the work of infer and video, users of the API
        "mclrt.runtime.commands": 7, "mclrt.runtime.cli": 7,
    },
    "training": {"mclrt.training.eval": 1, "mclrt.training.commands": 2},
    "export": {"mclrt.export.commands": 1},
    "calibration": {"mclrt.calibration.commands": 1},
    "tools": {"mclrt.tools.gpu_check": 1},  # the GPU check runs the checks in gpu_checks/, which use the other tools
}


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


def _package(module: str) -> str:
    return module.split(".")[1]


def floor(module: str) -> tuple[int, int]:
    """(the package's floor, the module's floor inside it)."""
    package = _package(module)
    # The package itself (its __init__) matches only itself, not every module inside it.
    prefixes = [p for p in MODULE_FLOORS[package] if module == p or (p != f"mclrt.{package}" and module.startswith(p + "."))]
    inner = MODULE_FLOORS[package][max(prefixes, key=len)] if prefixes else 0
    return PACKAGE_FLOORS[package], inner


def folder(module: str) -> str:
    """The folder a module belongs to, for the folder-level loop check: `mclrt.runtime.trt`,
    `mclrt.training.eval`. The modules directly in a top-level package sit on several floors (the
    core, the runner opener, the API, the CLI root), so they group by floor: `mclrt.runtime@0`."""
    parts = module.split(".")
    path = REPO / parts[1]
    for depth in range(2, len(parts)):
        if not (path / parts[depth]).is_dir():
            return ".".join(parts[:depth]) if depth > 2 else f"mclrt.{parts[1]}@{floor(module)[1]}"
        path = path / parts[depth]
    return module if len(parts) > 2 else f"{module}@{floor(module)[1]}"


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for name, targets in graph.items():
        for target in targets:
            (mine, my_inner), (theirs, their_inner) = floor(name), floor(target)
            same_package = _package(name) == _package(target)
            if theirs > mine or (theirs == mine and not same_package) or (same_package and their_inner > my_inner):
                found.append(f"{name} -> {target}")
    return sorted(found)


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
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


def _collapse(graph: dict[str, set[str]], key) -> dict[str, set[str]]:
    collapsed: dict[str, set[str]] = {}
    for name, targets in graph.items():
        collapsed.setdefault(key(name), set()).update(key(t) for t in targets if key(t) != key(name))
    return collapsed


def test_find_cycle_has_teeth():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_upward_imports_have_teeth():
    # The arrows this test exists to stop, as they stood before the house was reshaped.
    assert upward_imports({"mclrt.runtime.cli": {"mclrt.training.commands.train"}})
    assert upward_imports({"mclrt.runtime.trt.builder": {"mclrt.runtime.checks.model_check"}})
    assert upward_imports({"mclrt.training.eval.metrics.lpips": {"mclrt.tools.convert_lpips_vgg16"}})
    assert upward_imports({"mclrt.tools.demo": set(), "mclrt.runtime.backends": {"mclrt.runtime.commands.infer"}})
    assert upward_imports({"mclrt.training.losses": {"mclrt.calibration.quantize"}})  # same floor, other package
    assert not upward_imports({"mclrt.export.onnx_export": {"mclrt.training.networks", "mclrt.runtime.model_dir"}})


def test_the_walk_sees_the_tree():
    graph = _graph()
    assert len(graph) > 100, "the walk found too few modules: is the layout mapping right?"
    assert {"mclrt.runtime.cli", "mclrt.runtime.api", "mclrt.runtime.backends"} <= set(graph)


def test_no_import_cycles_between_mclrt_modules():
    assert _find_cycle(_graph()) is None


def test_no_loops_between_folders_or_packages():
    graph = _graph()
    assert _find_cycle(_collapse(graph, folder)) is None
    assert _find_cycle(_collapse(graph, _package)) is None


def test_every_import_points_down():
    assert upward_imports(_graph()) == []


def test_the_cli_root_imports_no_command():
    """Commands reach the CLI through entry points: its own imports name none of them."""
    assert not {t for t in _graph()["mclrt.runtime.cli"] if ".commands" in t}


def test_runtime_and_calibration_never_import_torch():
    for folder_name in ("runtime", "calibration"):
        for path in (REPO / folder_name).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                assert not [n for n in names if n == "torch" or n.startswith("torch.")], f"{path} imports torch"
