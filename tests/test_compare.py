"""`mclrt compare` without a GPU: two model directories on ONNX Runtime (INT8 against its FP32 source),
and ONNX Runtime against the PyTorch model the directory was exported from.

Real things only: the nano model directory exported by the CLI, a real INT8 quantization of it
calibrated on package photos, real ONNX Runtime sessions and the real PyTorch model.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mclrt.runtime.cli import main
from mclrt.runtime.fsutil import sha256_file


@pytest.fixture(scope="module")
def int8_cpu(nano_model_dir, tmp_path_factory):
    """The nano model quantized for ONNX Runtime (uint8 Q/DQ), calibrated on 4 package-photo crops."""
    from test_quantize import _write_photos

    from mclrt.calibration.quantize import QuantizeOptions, quantize_model_dir

    root = tmp_path_factory.mktemp("compare")
    photos = root / "photos"
    _write_photos(photos, 6)
    options = QuantizeOptions(model=nano_model_dir, calib=str(photos), out=root / "int8", holdout=2, encoding="cpu", sweep=False)
    return quantize_model_dir(options).model_dirs["int8-cpu"]


def _compare_json(capsys, *args: str) -> tuple[int, dict]:
    code = main(["compare", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_against_compares_int8_with_its_fp32_source_on_onnx_runtime(int8_cpu, nano_model_dir, capsys):
    code, report = _compare_json(capsys, "--model", str(int8_cpu), "--against", str(nano_model_dir))
    assert code == 0 and report["passed"] and report["precision"] == "int8"
    rows = {(r["graph"], r["output"]): r for r in report["outputs"]}
    assert set(rows) == {
        ("exemplar_encoder", "exemplar_keys"), ("exemplar_encoder", "exemplar_values"),
        ("translator", "image"), ("translator", "warped_exemplar"),
        ("end to end", "image"), ("end to end", "warped_exemplar"),
    }
    image = rows[("end to end", "image")]
    # INT8 differs from FP32, but not by much: real error, finite PSNR, mean below max.
    assert 0 < image["mean_abs"] < image["max_abs"] <= 2.0 and 20.0 < image["psnr_db"] < 80.0

    # The end-to-end numbers, recomputed from the two directories' own ONNX Runtime sessions.
    from mclrt.runtime.inputs.feeds import real_feeds
    from mclrt.runtime.model_dir import load_model_dir
    from mclrt.runtime.runners import CPU_EP, OnnxRuntimeRunner, OrtOptions

    images = []
    for path in (nano_model_dir, int8_cpu):
        model = load_model_dir(path)
        encoder_feed, condition_feed = real_feeds(model, 2, 0)
        cpu = OrtOptions(providers=(CPU_EP,))
        with OnnxRuntimeRunner(model.graph_path("exemplar_encoder"), cpu) as encoder, OnnxRuntimeRunner(model.graph_path("translator"), cpu) as translator:
            images.append(translator.infer({**condition_feed, **encoder.infer(encoder_feed)})["image"].astype(np.float64))
    diff = np.abs(images[1] - images[0])
    assert image["max_abs"] == pytest.approx(diff.max(), rel=1e-6)
    assert image["mean_abs"] == pytest.approx(diff.mean(), rel=1e-6)
    assert image["psnr_db"] == pytest.approx(10 * math.log10(4.0 / np.mean(diff**2)), rel=1e-6)


def test_against_itself_is_exact_and_an_incompatible_directory_is_refused(nano_model_dir, int8_cpu, tmp_path, capsys):
    code, report = _compare_json(capsys, "--model", str(nano_model_dir), "--against", str(nano_model_dir))
    assert code == 0 and len(report["outputs"]) == 6
    assert all(r["max_abs"] == 0.0 and r["mean_abs"] == 0.0 and r["psnr_db"] is None for r in report["outputs"])
    assert main(["compare", "--model", str(int8_cpu), "--against", str(nano_model_dir), "--backends", "trt"]) == 2
    assert "leave out --backends" in capsys.readouterr().err


def test_onnx_runtime_against_the_pytorch_model_it_was_exported_from(nano_model_dir, nano_checkpoint, tmp_path, capsys):
    from mclrt.runtime.trt import device

    if device.probe().has_device:
        args = ["--backends", "ort,torch"]
    else:
        args = []  # the default on a machine without a GPU: ONNX Runtime against PyTorch
    code, report = _compare_json(capsys, "--model", str(nano_model_dir), *args, "--checkpoint", str(nano_checkpoint))
    assert code == 0 and report["title"] == "ort (reference) vs torch", report["title"]
    assert len(report["outputs"]) == 4 and all(r["backend"] == "torch" for r in report["outputs"])
    # The same weights in both: float32 rounding only.
    assert max(r["max_abs"] for r in report["outputs"]) < 1e-3

    # Another checkpoint is refused, not silently compared against.
    other = tmp_path / "other"
    from export_fixtures import write_fresh_checkpoint

    write_fresh_checkpoint(other, "nano", seed=1)
    assert main(["compare", "--model", str(nano_model_dir), "--backends", "ort,torch", "--checkpoint", str(other / "checkpoints" / "latest")]) == 2
    assert "is not the checkpoint mclrt.json was exported from" in capsys.readouterr().err


def test_the_torch_backend_asks_for_the_checkpoint_by_name_and_hash(nano_model_dir, nano_checkpoint, capsys):
    """mclrt.json records the run and the weights' SHA-256, not where they lay: without --checkpoint
    the torch backend says which checkpoint it needs."""
    assert main(["compare", "--model", str(nano_model_dir), "--backends", "ort,torch"]) == 2
    err = capsys.readouterr().err
    assert "pass --checkpoint PATH" in err and f"run {nano_checkpoint.parent.parent.name}" in err
    assert sha256_file(nano_checkpoint / "model.safetensors")[:12] in err
