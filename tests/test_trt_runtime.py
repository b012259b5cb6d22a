"""The TensorRT runtime side on a machine without a GPU: clean "no CUDA device" errors, generic compare,
doctor, and modules that import without torch, TensorRT, Triton or cuda-python.

Nothing here pretends to have a GPU: where a CUDA device would be needed, the test asserts that the
command says so (exit code 2, one line, no traceback). On a machine with a GPU those tests skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from mclrt.runtime.errors import UserError
from mclrt.runtime.trt import device
from model_dir_fixtures import TinySpec
from normalized_models import build_normalized_model_dir

TESTS = Path(__file__).resolve().parent
HAS_GPU = device.probe().has_device
no_gpu_only = pytest.mark.skipif(HAS_GPU, reason="this machine has a CUDA device; these tests check the no-GPU behaviour")


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def mclrt(*args: str, cache_dir: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, MCLRT_CACHE_DIR=str(cache_dir))
    return subprocess.run([sys.executable, "-m", "mclrt.runtime.cli", *args], capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return build_normalized_model_dir(tmp_path_factory.mktemp("tiny") / "model", TinySpec())


def _assert_no_cuda(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no CUDA device"), done.stderr[-2000:]
    assert "Traceback" not in done.stderr


@no_gpu_only
def test_doctor_reports_what_it_can_says_no_gpu_and_exits_0(tmp_path):
    done = mclrt("doctor", cache_dir=tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "no GPU found" in done.stdout and "Build TensorRT plans here" in done.stdout
    assert "ONNX Runtime" in done.stdout and "CPUExecutionProvider" in done.stdout and "Engine cache" in done.stdout
    if _has("tensorrt_rtx"):
        # doctor reports the plugin's registration and registers nothing itself (one decision per process)
        assert "tensorrt-rtx" in done.stdout and "CorrespondenceSoftmax plugin" in done.stdout and "not registered" in done.stdout


@no_gpu_only
@pytest.mark.skipif(not _has("tensorrt_rtx"), reason="TensorRT-RTX is not installed (pip install 'mclrt[trt-check]')")
def test_doctor_selftest_builds_then_stops_at_the_missing_device(model_dir, tmp_path):
    done = mclrt("doctor", "--selftest", "--model", str(model_dir), cache_dir=tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "running the plans needs a GPU: not checked here" in done.stdout
    for row in ("build fp32 exemplar_encoder", "build fp32 translator", "build fp16 exemplar_encoder", "build fp16 translator"):
        assert row in done.stdout
    assert "FAIL" not in done.stdout and "self-test builds PASS" in done.stdout
    assert len(list(tmp_path.glob("engines/*/*/*.plan"))) == 4  # the plans went to the engine cache


@no_gpu_only
def test_infer_with_the_trt_backend_says_no_cuda_device(model_dir, tmp_path):
    exemplar, condition = tmp_path / "exemplar.png", tmp_path / "edges.png"
    cv2.imwrite(str(exemplar), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(condition), cv2.Canny(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2GRAY), 100, 200))
    out = tmp_path / "out"
    done = mclrt("infer", "--model", str(model_dir), "--cond", str(condition), "--exemplar", str(exemplar), "--out", str(out), "--backend", "trt", cache_dir=tmp_path)
    _assert_no_cuda(done)
    assert not out.exists() or not any(out.iterdir())
    # The same inputs on ONNX Runtime work: the failure above is the missing device, nothing else.
    done = mclrt("infer", "--model", str(model_dir), "--cond", str(condition), "--exemplar", str(exemplar), "--out", str(out), "--backend", "ort", cache_dir=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]


def test_compare_is_generic_over_runners(model_dir, tmp_path):
    """Two ONNX Runtime runners on the same inputs: identical outputs, every row PASS."""
    done = mclrt("compare", "--model", str(model_dir), "--backends", "ort,ort", cache_dir=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("PASS") == 4 and "inf" in done.stdout

    from mclrt.runtime.model_dir import load_model_dir
    from mclrt.runtime.compare import compare_backends, output_errors

    results = compare_backends(load_model_dir(model_dir), ["ort", "ort"], "fp16", batch=3, seed=1)
    assert {(r.graph, r.output) for r in results} == {
        ("exemplar_encoder", "exemplar_keys"),
        ("exemplar_encoder", "exemplar_values"),
        ("translator", "image"),
        ("translator", "warped_exemplar"),
    }
    assert all(r.passed and r.max_abs == 0.0 for r in results)
    reference = np.linspace(-1, 1, 1000).astype(np.float32)
    max_abs, max_rel, psnr = output_errors(reference, reference + 0.01)
    assert max_abs == pytest.approx(0.01, rel=1e-3) and max_rel == pytest.approx(0.01, rel=1e-3)
    assert psnr == pytest.approx(10 * np.log10(4 / 1e-4), rel=1e-3)  # range 2, MSE 1e-4 -> 46 dB
    assert output_errors(reference, np.full_like(reference, np.nan))[2] == -np.inf


@no_gpu_only
def test_compare_with_trt_says_no_cuda_device(model_dir, tmp_path):
    _assert_no_cuda(mclrt("compare", "--model", str(model_dir), "--backends", "ort,trt", cache_dir=tmp_path))


@no_gpu_only
def test_runner_activation_without_a_gpu_is_a_user_error(tmp_path):
    from mclrt.runtime.trt.runner import TensorRTRunner

    plan = tmp_path / "translator.plan"
    plan.write_bytes(b"vtrt")
    runner = TensorRTRunner(plan)
    with pytest.raises(UserError, match="no CUDA device"):
        runner.activate()
    assert not runner.is_active


def test_modules_import_without_torch_tensorrt_triton_or_cuda():
    modules = [
        "mclrt.runtime.trt." + name
        for name in ("compat", "plugin", "fp16", "layer_report", "builder", "cache", "device", "logger", "runner", "backend")
    ] + ["mclrt.runtime.commands." + name for name in ("compare", "doctor", "engine")] + ["mclrt.runtime.inputs.feeds", "mclrt.runtime.compare"]
    script = (
        "import json, sys\n"
        f"for m in {modules!r}: __import__(m)\n"
        "heavy = [m for m in ('torch', 'tensorrt', 'tensorrt_rtx', 'tensorrt_rtx_bindings', 'triton', 'cuda') if m in sys.modules]\n"
        "print(json.dumps(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
