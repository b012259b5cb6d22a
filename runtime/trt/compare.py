"""`mclrt compare`: the same inputs through several backends, per-output errors against the first.

Written once against the Runner interface (activate / infer / deactivate), so any backend with a
runner joins by one branch in `open_graph_runners`: `ort` (ONNX Runtime, CPU provider: the
reference), `trt` (TensorRT plans from the engine cache), and `torch` through the integrator's
export module (`mclrt.export.torch_runner.open_torch_runners(model) -> {graph: Runner}`, imported
only when asked for).

Each graph is compared on identical inputs: the encoder on the same random exemplar, the translator
on the same condition plus the *reference* backend's keys and values, so an error is attributed to
the graph that made it. Per output: max abs error, max error relative to the reference's peak, and
PSNR over the output's value range. Tolerances depend on the precision under test; they are
provisional (no GPU has produced a TensorRT output yet) and meant to be tightened on one.
"""

from __future__ import annotations

import math
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from mclrt.runtime.errors import UserError
from mclrt.runtime.model_dir import ModelDir
from mclrt.runtime.runners import Runner

BACKENDS = ("ort", "trt", "torch")
GRAPHS = ("exemplar_encoder", "translator")


@dataclass(frozen=True)
class Tolerance:
    max_abs: float | None  # None: not a criterion
    min_psnr_db: float


# Outputs live in [-1, 1]. FP32 plans may use TF32 tensor cores; FP16 keeps the correspondence in
# FP32 but not the convolutions; INT8 is judged by PSNR only.
TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(max_abs=5e-2, min_psnr_db=40.0),
    "fp16": Tolerance(max_abs=2.5e-1, min_psnr_db=30.0),
    "int8": Tolerance(max_abs=None, min_psnr_db=20.0),
}


@dataclass(frozen=True)
class OutputComparison:
    graph: str
    output: str
    backend: str
    reference: str
    max_abs: float
    max_rel: float  # max |a - b| / max |b|
    psnr_db: float
    passed: bool


def output_errors(reference: np.ndarray, candidate: np.ndarray, value_range: float = 2.0) -> tuple[float, float, float]:
    """(max abs error, max error relative to the reference's peak, PSNR in dB over `value_range`)."""
    ref = np.asarray(reference, np.float64)
    got = np.asarray(candidate, np.float64)
    if ref.shape != got.shape:
        raise ValueError(f"shapes differ: reference {ref.shape}, candidate {got.shape}")
    if not np.isfinite(got).all():
        return math.inf, math.inf, -math.inf
    diff = np.abs(got - ref)
    max_abs = float(diff.max()) if diff.size else 0.0
    peak = float(np.abs(ref).max()) if ref.size else 0.0
    mse = float(np.mean(diff**2)) if diff.size else 0.0
    psnr = math.inf if mse == 0 else 10.0 * math.log10(value_range**2 / mse)
    return max_abs, max_abs / peak if peak > 0 else (0.0 if max_abs == 0 else math.inf), psnr


def judge(max_abs: float, psnr: float, tolerance: Tolerance) -> bool:
    ok_abs = tolerance.max_abs is None or max_abs <= tolerance.max_abs
    return ok_abs and psnr >= tolerance.min_psnr_db


def open_graph_runners(backend: str, model: ModelDir, precision: str, plugin: str = "auto") -> dict[str, Runner]:
    """Inactive runners for both graphs of `model` on `backend`."""
    if backend == "ort":
        from mclrt.runtime.runners import CPU_EP, OnnxRuntimeRunner, OrtOptions

        return {g: OnnxRuntimeRunner(model.graph_path(g), OrtOptions(providers=(CPU_EP,)), name=f"ort:{g}") for g in GRAPHS}
    if backend == "trt":
        from mclrt.runtime.trt.backend import open_trt_runner

        return {g: open_trt_runner(model.graph_path(g), precision=precision, plugin=plugin) for g in GRAPHS}
    if backend == "torch":
        try:
            from mclrt.export.torch_runner import open_torch_runners  # the integrator's hook (needs torch)
        except ImportError as err:
            raise UserError(f"the torch backend is not available in this install ({err})") from None
        return open_torch_runners(model)
    raise UserError(f"unknown backend {backend!r}: expected one of {', '.join(BACKENDS)}")


def _feeds(model: ModelDir, batch: int, seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    from mclrt.runtime.checks.model_check import random_feed

    rng = np.random.default_rng(seed)
    encoder_feed = random_feed(model.encoder.inputs, batch, rng)
    condition_feed = random_feed([t for t in model.translator.inputs if t.name == "condition"], batch, rng)
    return encoder_feed, condition_feed


def _value_range(model: ModelDir, graph: str, output: str) -> float:
    spec = model.manifest.graphs[graph].output(output)
    low, high = spec.range or (-1.0, 1.0)
    return float(high - low)


def compare_backends(
    model: ModelDir,
    backends: Sequence[str],
    precision: str,
    plugin: str = "auto",
    batch: int = 2,
    seed: int = 0,
) -> list[OutputComparison]:
    """Every output of both graphs on every backend after the first, against the first."""
    if len(backends) < 2:
        raise UserError("--backends needs at least two backends, the first is the reference (e.g. ort,trt)")
    if precision not in TOLERANCES:
        raise UserError(f"--precision {precision!r}: expected one of {', '.join(TOLERANCES)}")
    tolerance = TOLERANCES[precision]
    encoder_feed, condition_feed = _feeds(model, batch, seed)
    outputs: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    with ExitStack() as stack:
        runners = {backend: open_graph_runners(backend, model, precision, plugin) for backend in backends}
        for backend in backends:
            for runner in runners[backend].values():
                stack.enter_context(runner)
        reference = backends[0]
        for backend in backends:
            outputs[backend] = {"exemplar_encoder": runners[backend]["exemplar_encoder"].infer(encoder_feed)}
        encoded = outputs[reference]["exemplar_encoder"]
        translator_feed = {**condition_feed, "exemplar_keys": encoded["exemplar_keys"], "exemplar_values": encoded["exemplar_values"]}
        for backend in backends:
            outputs[backend]["translator"] = runners[backend]["translator"].infer(translator_feed)
    results = []
    for backend in backends[1:]:
        for graph in GRAPHS:
            for name, ref in outputs[reference][graph].items():
                max_abs, max_rel, psnr = output_errors(ref, outputs[backend][graph][name], _value_range(model, graph, name))
                results.append(OutputComparison(graph, name, backend, reference, max_abs, max_rel, psnr, judge(max_abs, psnr, tolerance)))
    return results
