"""Defects a read of the never-run GPU path found, each shown on the CPU where a CPU can show it.

(1) qdp_aot's annotations must be classes when `@trtp.register` runs; (2) the Triton floor pyproject
states is the one the kernel checks and the installed Triton meets; (7) cuda-python's floor is the
first release with `cuda.bindings`, and the runner asks for `cuda.bindings`, not any `cuda` package.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import typing
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parent.parent
tomllib = pytest.importorskip("tomllib")  # Python >= 3.11


def _extra(name: str) -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"][name]


# --- (1) QDP annotations --------------------------------------------------------------------------
def test_qdp_decorated_functions_have_class_annotations():
    """tensorrt.plugin calls issubclass(param.annotation, TensorDesc) on inspect.signature's
    annotations: with `from __future__ import annotations` they are strings and registration raises
    TypeError. Checked without TensorRT: the module's source is read, each annotation of every
    @trtp.* function is evaluated against stand-in classes for tensorrt.plugin's names."""
    source = (ROOT / "runtime" / "trt" / "qdp_aot.py").read_text()
    tree = ast.parse(source)
    future = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "__future__"]
    assert not any(alias.name == "annotations" for node in future for alias in node.names), "string annotations"

    trtp = SimpleNamespace(**{name: type(name, (), {}) for name in ("TensorDesc", "AutoTuneCombination", "KernelLaunchParams", "SymExprs")})
    namespace = {"trtp": trtp, "Tuple": typing.Tuple, "List": typing.List, "Union": typing.Union}
    decorated = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        and any(isinstance(d, ast.Call) and ast.unparse(d.func).startswith("trtp.") for d in node.decorator_list)
    ]
    assert {ast.unparse(d.func) for f in decorated for d in f.decorator_list} == {"trtp.register", "trtp.autotune", "trtp.aot_impl"}
    for function in decorated:
        for arg in function.args.args:
            assert arg.annotation is not None, f"{function.name}({arg.arg}) has no annotation"
            value = eval(compile(ast.Expression(arg.annotation), "qdp_aot.py", "eval"), namespace)  # noqa: S307
            if arg.arg in ("q", "k", "v"):
                assert isinstance(value, type) and issubclass(value, trtp.TensorDesc), (function.name, arg.arg)
            elif arg.arg in ("scale", "mask_negative", "tactic"):
                assert value in (float, int), (function.name, arg.arg, value)
            else:  # outputs: Tuple[trtp.TensorDesc]
                assert typing.get_origin(value) is tuple and typing.get_args(value)[0] is trtp.TensorDesc


# --- (2) Triton floor -----------------------------------------------------------------------------
def test_triton_floor_is_stated_once_and_met():
    triton = pytest.importorskip("triton")
    from packaging.requirements import Requirement
    from packaging.version import Version

    from mclrt.runtime.kernels.correspondence_triton import TRITON_FLOOR, check_triton_floor

    (requirement,) = [Requirement(r) for r in _extra("kernels") if r.startswith("triton")]
    floor = f"{TRITON_FLOOR[0]}.{TRITON_FLOOR[1]}"
    # 3.3 / 3.4 have no `profile_scratch_size` in the compiled metadata: they are below the floor.
    assert not requirement.specifier.contains("3.4.0") and requirement.specifier.contains(f"{floor}.0")
    assert Version(triton.__version__) >= Version(floor)
    check_triton_floor()  # the installed one passes


# --- (7) cuda-python ------------------------------------------------------------------------------
def test_cuda_python_floor_has_cuda_bindings():
    from packaging.requirements import Requirement

    (requirement,) = [Requirement(r) for r in _extra("gpu") if r.startswith("cuda-python")]
    assert not requirement.specifier.contains("12.6.0")  # only cuda.cuda / cuda.cudart
    assert requirement.specifier.contains("12.6.2.post1") and requirement.specifier.contains("13.0.3")


def test_a_cuda_namespace_package_is_not_cuda_python(tmp_path):
    """cuda-pathfinder (or cuda-python 12.6.0) makes `cuda` importable without cuda.bindings."""
    (tmp_path / "cuda" / "pathfinder").mkdir(parents=True)
    (tmp_path / "cuda" / "pathfinder" / "__init__.py").write_text("")
    code = (
        "import importlib.util, json\n"
        "from mclrt.runtime.trt.runner import missing_plugin_packages\n"
        "print(json.dumps([importlib.util.find_spec('cuda') is not None, missing_plugin_packages()]))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    import json

    cuda_importable, missing = json.loads(done.stdout)
    assert cuda_importable
    assert any("cuda.bindings" in m for m in missing)
