"""Two INT8 encodings of the same calibrated ranges, one per consumer.

- `int8-trt`, for TensorRT (explicit quantization; TensorRT 10.1+ and TensorRT-RTX read only Q/DQ):
  signed INT8 activations with zero point 0 (ActivationSymmetric), signed per-channel weights with
  zero point 0, biases left in float (TensorRT's parser refuses an INT32 DequantizeLinear and a
  non-zero zero point: shared/research/tensorrt_rtx_on_cpu.md section 4). Q/DQ sit on each Conv's
  input and weight only -- TensorRT's recommended placement; it fuses DQ -> Conv into an INT8
  convolution with a float output and picks the output precision itself.
- `int8-cpu`, for ONNX Runtime's CPU provider: unsigned 8-bit activations with zero point 128
  (symmetric uint8 -- the same grid as int8 with zero point 0, shifted by 128, which is what the
  u8s8 VNNI/AMX kernels take), signed per-channel INT8 weights, INT32 biases, and Q/DQ on each Conv's
  output as well, so ONNX Runtime fuses DQ -> Conv -> Q into one QLinearConv. A Conv whose output
  feeds a normalization or the Tanh therefore stays float in this encoding (see placement.py).

Both are written by ONNX Runtime's `quantize_static` in QDQ format, reading the ranges of the one
calibration from its calibration cache (see calibrate.py). With ModelOpt installed (the `[quant]`
extra, its own environment), `--tool modelopt` makes the TensorRT encoding with ModelOpt instead.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np

from mclrt.calibration.calibrate import ort_method
from mclrt.calibration.placement import QUANTIZABLE_OPS
from mclrt.runtime.errors import UserError


@dataclass(frozen=True)
class Encoding:
    precision: str  # the manifest's precision field
    folder: str  # sub-directory name when both encodings are written
    signed_activations: bool  # int8 (zero point 0) or uint8 (zero point 128)
    quantize_outputs: bool  # Q/DQ on Conv outputs too (lets ONNX Runtime fuse QLinearConv)
    quantize_bias: bool  # INT32 bias (ONNX Runtime) or float bias (TensorRT)
    summary: str


TRT = Encoding(
    precision="int8-trt",
    folder="trt",
    signed_activations=True,
    quantize_outputs=False,
    quantize_bias=False,
    summary="activations int8 symmetric (zero point 0) on Conv inputs; weights int8 per-channel symmetric; bias float",
)
CPU = Encoding(
    precision="int8-cpu",
    folder="cpu",
    signed_activations=False,
    quantize_outputs=True,
    quantize_bias=True,
    summary="activations uint8 symmetric (zero point 128) on Conv inputs and outputs; weights int8 per-channel symmetric; bias int32",
)
ENCODINGS = {"trt": TRT, "cpu": CPU}


def ort_options(encoding: Encoding) -> dict:
    """quantize_static keyword arguments of an encoding (besides model, ranges and node list)."""
    from onnxruntime.quantization import QuantFormat, QuantType

    extra = {"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": encoding.quantize_bias}
    if not encoding.quantize_outputs:
        extra["OpTypesToExcludeOutputQuantization"] = list(QUANTIZABLE_OPS)
    return dict(
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=list(QUANTIZABLE_OPS),
        per_channel=True,
        reduce_range=False,  # VNNI/AMX CPUs and TensorRT need no 7-bit weights
        activation_type=QuantType.QInt8 if encoding.signed_activations else QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        extra_options=extra,
    )


class _DropPreprocessAdvice(logging.Filter):
    """quantize_static advises running its pre-processing, twice per call. We skip it on purpose:
    its ONNX Runtime graph optimization inlines model-local functions, which would dissolve the
    CorrespondenceSoftmax node the mclrt-model format requires."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-process" not in record.getMessage()


@contextlib.contextmanager
def _quiet_preprocess_advice() -> Iterator[None]:
    root = logging.getLogger()
    advice_filter = _DropPreprocessAdvice()
    root.addFilter(advice_filter)
    try:
        yield
    finally:
        root.removeFilter(advice_filter)


def quantize_with_ort(
    model_path: Path, ranges_path: Path, method: str, encoding: Encoding, nodes: Sequence[str], output_path: Path
) -> None:
    """Write `model_path` with `nodes` quantized as `encoding`, from the calibrated ranges."""
    from onnxruntime.quantization import quantize_static

    if not nodes:
        # quantize_static reads an empty node list as "every node"; an encoding without nodes is the FP32 graph.
        raise ValueError("no nodes to quantize")
    with _quiet_preprocess_advice():
        quantize_static(
            str(model_path),
            str(output_path),
            calibration_data_reader=None,
            nodes_to_quantize=list(nodes),
            calibrate_method=ort_method(method),
            calibration_cache_path=str(ranges_path),
            **ort_options(encoding),
        )


# --- ModelOpt (the [quant] extra; its own environment) ---------------------------------------------------

MODELOPT_METHODS = ("max", "entropy")


def modelopt_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("modelopt") is not None


def check_modelopt(encoding: str, method: str) -> None:
    """Up front: is ModelOpt here, and can it make what was asked?"""
    if encoding != "trt":
        raise UserError("--tool modelopt makes the TensorRT encoding only: pass --encoding trt")
    if method not in MODELOPT_METHODS:
        raise UserError(f"ModelOpt calibrates INT8 with {' or '.join(MODELOPT_METHODS)}, not {method!r}")
    if not modelopt_available():
        raise UserError("--tool modelopt needs NVIDIA ModelOpt: pip install 'mclrt[quant]' (in its own environment: it pins onnxruntime 1.24 and onnx 1.21)")


def quantize_with_modelopt(
    model_path: Path,
    feeds: Sequence[Mapping[str, np.ndarray]],
    method: str,
    nodes: Sequence[str],
    all_quantizable: Sequence[str],
    output_path: Path,
) -> None:
    """The TensorRT encoding made by ModelOpt, per its documented API
    (`modelopt.onnx.quantization.quantize`). ModelOpt calibrates by itself (on the CPU provider, so
    no GPU is needed), from the same calibration inputs; quantizing only Conv/Gemm and excluding
    every node our placement walk rejected keeps its Q/DQ where ours would be, and the caller checks
    that placement afterwards. ModelOpt takes the calibration set as stacked arrays, so the whole
    set is in memory at once.
    """
    import re

    check_modelopt("trt", method)
    from modelopt.onnx.quantization import quantize

    chosen = set(nodes)
    excluded = [f"^{re.escape(name)}$" for name in all_quantizable if name not in chosen]  # patterns: anchor exact names
    stacked = {name: np.concatenate([feed[name] for feed in feeds], axis=0) for name in feeds[0]}
    quantize(
        onnx_path=str(model_path),
        quantize_mode="int8",
        calibration_data=stacked,
        calibration_method=method,
        calibration_eps=["cpu"],
        op_types_to_quantize=list(QUANTIZABLE_OPS),
        nodes_to_exclude=excluded,
        high_precision_dtype="fp32",
        output_path=str(output_path),
    )
