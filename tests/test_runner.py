"""The runner interface and the ONNX Runtime runner, on real tiny graphs run by real sessions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from mclrt.runtime.model_dir import load_model_dir
from mclrt.runtime.pipeline import TranslationPipeline
from mclrt.runtime.runners import CPU_EP, FeedError, OnnxRuntimeRunner, OrtOptions, RunnerError, cuda_device_count
from model_dir_fixtures import build_tiny_model_dir, numpy_correspondence


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return build_tiny_model_dir(tmp_path_factory.mktemp("runner") / "tiny")


def _pool4(x: np.ndarray) -> np.ndarray:
    b, c, h, w = x.shape
    return x.reshape(b, c, h // 4, 4, w // 4, 4).mean(axis=(3, 5))


def _rows(x: np.ndarray) -> np.ndarray:
    """[B, C, h, w] -> [B, h*w, C]"""
    return x.reshape(x.shape[0], x.shape[1], -1).transpose(0, 2, 1)


def test_provider_choice_on_this_machine_without_error_spam(model):
    """A fresh process chooses providers and runs a session; nothing may be printed to stderr."""
    if cuda_device_count() > 0:
        pytest.skip("a CUDA GPU is present: this test pins down the CPU-only choice (GPU path unverified here)")
    script = (
        "import json, numpy as np\n"
        "from mclrt.runtime.runners import OnnxRuntimeRunner, choose_ort_providers\n"
        "choice = choose_ort_providers()\n"
        f"with OnnxRuntimeRunner({str(model / 'exemplar_encoder.onnx')!r}) as r:\n"
        "    r.infer({'exemplar': np.zeros((1, 3, 32, 32), np.float32)})\n"
        "    print(json.dumps({'chosen': choice.providers, 'skipped': choice.skipped, 'used': r.providers_in_use}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    report = json.loads(done.stdout)
    assert report["chosen"] == [CPU_EP] and report["used"] == [CPU_EP]
    for provider, reason in report["skipped"].items():  # onnxruntime-gpu lists them; plain onnxruntime does not
        assert reason in ("no CUDA device (no driver or no GPU)", "not in this onnxruntime build"), (provider, reason)


def test_life_cycle_and_feed_checks(model):
    runner = OnnxRuntimeRunner(model / "exemplar_encoder.onnx", OrtOptions(intra_op_threads=1))
    exemplar = np.zeros((2, 3, 32, 32), np.float32)
    with pytest.raises(RuntimeError, match="not active"):
        runner.infer({"exemplar": exemplar})
    with runner:
        assert runner.is_active
        meta = runner.input_metadata()["exemplar"]
        assert meta.shape == ("batch", 3, 32, 32) and meta.dtype == np.float32
        assert runner.output_names() == ["exemplar_keys", "exemplar_values"]
        with pytest.raises(FeedError, match="missing"):
            runner.infer({})
        # Floats are cast to the graph's float type in the runner (the one place that casts) ...
        as_float64 = runner.infer({"exemplar": exemplar.astype(np.float64)})
        np.testing.assert_array_equal(as_float64["exemplar_keys"], runner.infer({"exemplar": exemplar})["exemplar_keys"])
        # ... anything else of the wrong type is the caller's bug.
        with pytest.raises(FeedError, match="dtype int64"):
            runner.infer({"exemplar": exemplar.astype(np.int64)})
        with pytest.raises(FeedError, match="dim 2 is 16"):
            runner.infer({"exemplar": np.zeros((1, 3, 16, 32), np.float32)})
        runner.infer({"exemplar": exemplar})
        assert runner.last_inference_seconds > 0
    assert not runner.is_active


def test_encoder_outputs_match_numpy(model):
    rng = np.random.default_rng(1)
    exemplar = rng.uniform(-1, 1, (3, 3, 32, 32)).astype(np.float32)  # batch 3: the batch is dynamic
    with OnnxRuntimeRunner(model / "exemplar_encoder.onnx") as runner:
        out = runner.infer({"exemplar": exemplar})
    pooled = _pool4(exemplar)
    np.testing.assert_allclose(out["exemplar_values"], _rows(pooled), atol=1e-6)
    weight = numpy_helper.to_array(next(i for i in onnx.load(model / "exemplar_encoder.onnx").graph.initializer if i.name == "key_w"))
    keys = np.einsum("oc,bchw->bohw", weight[:, :, 0, 0], pooled)
    keys /= np.linalg.norm(keys, axis=1, keepdims=True)
    np.testing.assert_allclose(out["exemplar_keys"], _rows(keys), atol=1e-5)


def test_translator_warp_is_the_correspondence_of_the_contract(model):
    """warped_exemplar = upsample4(softmax(100 q k^T) v), with q computed here from the graph's weights."""
    rng = np.random.default_rng(2)
    condition = (rng.random((2, 1, 32, 32)) < 0.3).astype(np.float32)
    exemplar = rng.uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32)
    with TranslationPipeline.open(load_model_dir(model)) as pipeline:
        encoded = pipeline.encode(exemplar)
        result = pipeline.translate(condition, encoded)  # one exemplar tiled to a batch of 2
    weight = numpy_helper.to_array(next(i for i in onnx.load(model / "translator.onnx").graph.initializer if i.name == "query_w"))
    queries = np.einsum("oc,bchw->bohw", weight[:, :, 0, 0], _pool4(condition))
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    keys, values = np.repeat(encoded.keys, 2, axis=0), np.repeat(encoded.values, 2, axis=0)
    warp = numpy_correspondence(_rows(queries).astype(np.float64), keys, values)
    warp_image = warp.transpose(0, 2, 1).reshape(2, 3, 8, 8).repeat(4, axis=2).repeat(4, axis=3)
    np.testing.assert_allclose(result.warped, warp_image, atol=1e-4)
    assert result.images.shape == (2, 3, 32, 32)
    assert np.all(np.abs(result.images) <= 1.0)


def test_graph_that_ort_cannot_load_is_a_runner_error(model, tmp_path):
    broken = onnx.load(model / "translator.onnx")
    del broken.functions[:]  # the custom node is then an op nobody knows
    path = tmp_path / "translator.onnx"
    onnx.save(broken, path)
    with pytest.raises(RunnerError, match="CorrespondenceSoftmax"):
        OnnxRuntimeRunner(path, OrtOptions(providers=(CPU_EP,))).activate()
