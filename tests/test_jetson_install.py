"""The runtime installs on a Jetson from wheels only: pip resolves it for aarch64 CPython 3.10 (JetPack 6) and 3.12 (JetPack 7).

Real resolution against PyPI (`pip install --dry-run --only-binary=:all: --platform ... --python-version ...`),
a few seconds per Python: nothing is downloaded but metadata.
"""

from __future__ import annotations

import re

import pytest

from mclrt.tools import jetson_wheels


@pytest.mark.parametrize("target", jetson_wheels.JETPACK_PYTHONS, ids=lambda t: f"jetpack{t.jetpack}-cp{t.python}")
def test_runtime_dependencies_have_aarch64_wheels(target):
    requirements = jetson_wheels.runtime_requirements(target)
    names = {re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0] for r in requirements}
    # pyproject's markers pick the CPU onnxruntime on aarch64 (never both: they share the module)
    assert "onnxruntime" in names and "onnxruntime-gpu" not in names
    assert not names & {"torch", "triton", "tensorrt"}  # the runtime never needs them from PyPI

    result = jetson_wheels.resolve(target, requirements)
    assert result.ok, result.error
    assert {"numpy", "onnx", "onnxruntime", "opencv-python-headless"} <= set(result.wheels)
    tag = f"cp{target.python.replace('.', '')}"
    for name, wheel in result.wheels.items():
        assert wheel.endswith("-none-any.whl") or "aarch64" in wheel, (name, wheel)
        assert "-none-any" in wheel or tag in wheel or "abi3" in wheel or "py3" in wheel, (name, wheel)
    assert "torch" not in result.wheels
