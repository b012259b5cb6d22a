"""`mclrt compare`: the same inputs through several backends, per-output errors against the first.

Written once against the Runner interface (activate / infer / deactivate), so any backend with a
runner joins by one branch in `open_graph_runners`: `ort` (ONNX Runtime, CPU provider: the
reference), `trt` (TensorRT plans from the engine cache), and `torch` (the PyTorch model the
directory was exported from, `mclrt.export.torch_runner`, imported only when asked for: runtime/
itself never imports torch). `compare_runners` is the generic part; `compare_model_dirs` uses it for
two model directories on ONNX Runtime (`mclrt compare --against B`, e.g. INT8 against its FP32
source): graph by graph as for backends, then end to end -- the candidate's own encoder feeding its
own translator, the error a user of it actually sees. Nothing here is TensorRT-specific; it lives in
trt/ because comparing began as TensorRT against ONNX Runtime.

Each graph is compared on identical inputs (runtime/inputs/feeds.py: package photos, and their
edges for edge models): the encoder on the same exemplar, the translator on the same condition plus
the *reference* backend's keys and values, so an error is attributed to the graph that made it. Per
output: max and mean abs error, max error relative to the reference's peak, and PSNR over the
output's value range. Tolerances depend on the precision under test; the TensorRT ones are
provisional (no GPU has produced a TensorRT output yet) and meant to be tightened on one.
"""

from __future__ import annotations

import dataclasses
import math
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from mclrt.runtime.errors import UserError
from mclrt.runtime.model_dir import MANIFEST_NAME, ModelDir
from mclrt.runtime.runners import CPU_EP, OnnxRuntimeRunner, OrtOptions, Runner

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
    mean_abs: float = 0.0

    def to_dict(self) -> dict:
        # JSON has no inf: identical outputs report PSNR null.
        finite = lambda x: x if math.isfinite(x) else None  # noqa: E731
        return {
            "graph": self.graph, "output": self.output, "backend": self.backend, "reference": self.reference,
            "max_abs": finite(self.max_abs), "mean_abs": finite(self.mean_abs), "max_rel": finite(self.max_rel),
            "psnr_db": finite(self.psnr_db), "passed": self.passed,
        }


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


def mean_abs_error(reference: np.ndarray, candidate: np.ndarray) -> float:
    diff = np.abs(np.asarray(candidate, np.float64) - np.asarray(reference, np.float64))
    return float(diff.mean()) if diff.size else 0.0


def judge(max_abs: float, psnr: float, tolerance: Tolerance) -> bool:
    ok_abs = tolerance.max_abs is None or max_abs <= tolerance.max_abs
    return ok_abs and psnr >= tolerance.min_psnr_db


def open_graph_runners(backend: str, model: ModelDir, precision: str, plugin: str = "auto", checkpoint: str | None = None) -> dict[str, Runner]:
    """Inactive runners for both graphs of `model` on `backend`."""
    if backend == "ort":
        from mclrt.runtime.runners import CPU_EP, OnnxRuntimeRunner, OrtOptions

        return {g: OnnxRuntimeRunner(model.graph_path(g), OrtOptions(providers=(CPU_EP,)), name=f"ort:{g}") for g in GRAPHS}
    if backend == "trt":
        from mclrt.runtime.trt.backend import open_trt_runner

        return {g: open_trt_runner(model.graph_path(g), precision=precision, plugin=plugin) for g in GRAPHS}
    if backend == "torch":
        import importlib.util

        if importlib.util.find_spec("torch") is None:
            raise UserError("--backends torch needs PyTorch, which this install lacks: pip install 'mclrt[train]'")
        from mclrt.export.torch_runner import open_torch_runners  # imports torch: only here, only when asked

        return open_torch_runners(model, checkpoint)
    raise UserError(f"unknown backend {backend!r}: expected one of {', '.join(BACKENDS)}")


def output_value_range(model: ModelDir, graph: str, output: str) -> float:
    spec = model.manifest.graphs[graph].output(output)
    low, high = spec.range or (-1.0, 1.0)
    return float(high - low)


def cast_for_runner(runner: Runner, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The feed in the dtypes this runner's graph declares (an FP16 graph takes float16 inputs)."""
    metadata = runner.input_metadata()
    return {name: np.asarray(array).astype(metadata[name].dtype, copy=False) for name, array in feed.items()}


def compare_runners(
    model: ModelDir,
    runners: dict[str, dict[str, Runner]],
    tolerance: Tolerance,
    batch: int = 2,
    seed: int = 0,
) -> list[OutputComparison]:
    """Every output of both graphs of every runner set after the first, against the first.

    `runners` maps a label (a backend name, or a model directory) to inactive runners of both graphs
    of a model with `model`'s inputs and outputs. The translator of every set is fed the reference's
    keys and values, so an error is attributed to the graph that made it.
    """
    from mclrt.runtime.inputs.feeds import real_feeds

    encoder_feed, condition_feed = real_feeds(model, batch, seed)
    labels = list(runners)
    reference = labels[0]
    outputs: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    with ExitStack() as stack:
        for label in labels:
            for runner in runners[label].values():
                stack.enter_context(runner)
        for label in labels:
            encoder = runners[label]["exemplar_encoder"]
            outputs[label] = {"exemplar_encoder": encoder.infer(cast_for_runner(encoder, encoder_feed))}
        encoded = outputs[reference]["exemplar_encoder"]
        translator_feed = {**condition_feed, "exemplar_keys": encoded["exemplar_keys"], "exemplar_values": encoded["exemplar_values"]}
        for label in labels:
            translator = runners[label]["translator"]
            outputs[label]["translator"] = translator.infer(cast_for_runner(translator, translator_feed))
    results = []
    for label in labels[1:]:
        for graph in GRAPHS:
            for name, ref in outputs[reference][graph].items():
                got = outputs[label][graph][name]
                max_abs, max_rel, psnr = output_errors(ref, got, output_value_range(model, graph, name))
                results.append(
                    OutputComparison(
                        graph, name, label, reference, max_abs, max_rel, psnr, judge(max_abs, psnr, tolerance), mean_abs_error(ref, got)
                    )
                )
    return results


def tolerance_for(precision: str) -> Tolerance:
    if precision not in TOLERANCES:
        raise UserError(f"--precision {precision!r}: expected one of {', '.join(TOLERANCES)}")
    return TOLERANCES[precision]


# A model directory's precision -> the tolerances its outputs are judged by.
MANIFEST_PRECISION = {"fp32": "fp32", "fp16": "fp16", "int8-trt": "int8", "int8-cpu": "int8"}


def compare_backends(
    model: ModelDir,
    backends: Sequence[str],
    precision: str,
    plugin: str = "auto",
    batch: int = 2,
    seed: int = 0,
    checkpoint: str | None = None,
) -> list[OutputComparison]:
    """Every output of both graphs on every backend after the first, against the first."""
    if len(backends) < 2:
        raise UserError("--backends needs at least two backends, the first is the reference (e.g. ort,trt)")
    tolerance = tolerance_for(precision)
    # Labels must be unique: `ort,ort` (a self-check of the machinery) becomes ort and ort#2.
    labels = [b if b not in backends[:i] else f"{b}#{backends[:i].count(b) + 1}" for i, b in enumerate(backends)]
    runners = {label: open_graph_runners(b, model, precision, plugin, checkpoint) for label, b in zip(labels, backends)}
    results = compare_runners(model, runners, tolerance, batch, seed)
    # Report the backend's own name (ort#2 is still ort).
    return [dataclasses.replace(r, backend=r.backend.split("#")[0], reference=r.reference.split("#")[0]) for r in results]


# --- two model directories (`mclrt compare --against`) ------------------------------------------------

END_TO_END = "end to end"


def ort_runners(model: ModelDir, threads: int = 0) -> dict[str, Runner]:
    options = OrtOptions(intra_op_threads=threads, providers=(CPU_EP,))
    return {g: OnnxRuntimeRunner(model.graph_path(g), options, name=f"ort:{g}") for g in GRAPHS}


def check_same_interface(candidate: ModelDir, reference: ModelDir) -> None:
    """The two directories must take and give tensors of the same names and shapes."""
    for graph in GRAPHS:
        for role in ("inputs", "outputs"):
            mine = {t.name: t.shape for t in getattr(candidate.manifest.graphs[graph], role)}
            theirs = {t.name: t.shape for t in getattr(reference.manifest.graphs[graph], role)}
            if mine != theirs:
                raise UserError(
                    f"cannot be compared with {reference.path}: {graph} {role} differ ({mine} vs {theirs})",
                    candidate.path / MANIFEST_NAME,
                )


def compare_model_dirs(
    candidate: ModelDir, reference: ModelDir, tolerance: Tolerance, batch: int = 2, seed: int = 0, threads: int = 0
) -> list[OutputComparison]:
    """Per output of each graph, then end to end: `candidate` against `reference`, both on ORT CPU."""
    from mclrt.runtime.inputs.feeds import real_feeds

    check_same_interface(candidate, reference)
    a, b = str(candidate.path), str(reference.path)
    if a == b:  # a directory against itself (a check of the machinery): the two sides still need two labels
        a += "#2"
    results = compare_runners(reference, {b: ort_runners(reference, threads), a: ort_runners(candidate, threads)}, tolerance, batch, seed)

    # End to end: each directory's own encoder feeds its own translator.
    encoder_feed, condition_feed = real_feeds(reference, batch, seed)
    images = {}
    with ExitStack() as stack:
        for label, model in ((b, reference), (a, candidate)):
            runners = {g: stack.enter_context(r) for g, r in ort_runners(model, threads).items()}
            encoded = runners["exemplar_encoder"].infer(cast_for_runner(runners["exemplar_encoder"], encoder_feed))
            translator = runners["translator"]
            images[label] = translator.infer(cast_for_runner(translator, {**condition_feed, **encoded}))
    for name, ref in images[b].items():
        got = images[a][name]
        max_abs, max_rel, psnr = output_errors(ref, got, output_value_range(reference, "translator", name))
        results.append(OutputComparison(END_TO_END, name, a, b, max_abs, max_rel, psnr, judge(max_abs, psnr, tolerance), mean_abs_error(ref, got)))
    return results
