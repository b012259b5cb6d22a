"""The TensorRT backend of `mclrt infer` / `mclrt bench`: graph -> cached plan -> TensorRTRunner.

`mclrt.runtime.backends.open_runners` hands over one graph of a model directory; the plan comes from
the engine cache (built there first if missing or stale) with the model's own precision and
`--plugin auto`. The CUDA device is checked first, so on a machine without a GPU the user gets
"no CUDA device" at once instead of a pointless build.
"""

from __future__ import annotations

from mclrt.runtime.errors import UserError
from mclrt.runtime.model_dir import ModelDir
from mclrt.runtime.trt import compat, device

# Engines for infer/bench take batches of 1..MAX_BATCH conditions (optimized for 1).
MAX_BATCH = 8
# The model directory's precision -> the engine precision built from it.
ENGINE_PRECISION = {"fp32": "fp32", "fp16": "fp16", "int8-trt": "int8"}


def tensorrt_usable() -> bool:
    """True when TensorRT is importable and a CUDA device exists (what `--backend auto` asks)."""
    return compat.detect() is not None and device.probe().has_device


def open_trt_runner(model: ModelDir, graph: str, precision: str | None = None, plugin: str = "auto"):
    """An inactive TensorRTRunner for one graph of a model directory (the caller's, not reloaded).

    `precision` defaults to the model's own (fp32 -> fp32 plans, fp16 -> fp16, int8-trt -> int8).
    """
    from mclrt.runtime.trt import builder
    from mclrt.runtime.trt.runner import TensorRTRunner

    device.require_device()
    if graph not in model.manifest.graphs:
        raise UserError(f"has no graph {graph!r}", model.path / "mclrt.json")
    precision = precision or ENGINE_PRECISION.get(model.manifest.precision)
    if precision is None:
        raise UserError(f"a {model.manifest.precision} model runs on ONNX Runtime only (use --backend ort)", model.path / "mclrt.json")
    options = builder.BuildOptions(precision=precision, plugin=plugin, batch=builder.BatchProfile(1, 1, MAX_BATCH))
    (result,) = builder.build_engines(model, options, graphs=(graph,))
    return TensorRTRunner(result.plan, name=f"tensorrt:{graph}")
