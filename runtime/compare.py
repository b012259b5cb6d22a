"""`mclrt compare`: the same inputs through several backends, per-output errors against the first.

Written once against the runner interface and run by Polygraphy's `Comparator`: `Comparator.run`
drives every runner (activate, infer, deactivate) on the same feed, and `Comparator.compare_accuracy`
judges each output with mclrt's rule (`MclrtCompareFunc`: max abs error and PSNR over the output's
value range, both required -- Polygraphy's own `SimpleCompareFunc` passes when *either* tolerance
holds). The runners come from the one place that opens them (runtime/backends.py): `ort` (ONNX
Runtime, CPU provider: the reference), `trt` (TensorRT plans from the engine cache), and `torch`
(the PyTorch model the directory was exported from, an entry-point backend). `compare_model_dirs`
compares two model directories on ONNX Runtime (`mclrt compare --against B`, e.g. INT8 against its
FP32 source): graph by graph as for backends, then end to end -- the candidate's own encoder feeding
its own translator, the error a user of it actually sees.

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
from collections import OrderedDict
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from mclrt.runtime.errors import UserError
from mclrt.runtime.model_dir import MANIFEST_NAME, ModelDir
from mclrt.runtime.backends import GRAPHS, Device, RunnerOptions, open_runners
from mclrt.runtime.runners import Runner


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


def output_value_range(model: ModelDir, graph: str, output: str) -> float:
    spec = model.manifest.graphs[graph].output(output)
    low, high = spec.range or (-1.0, 1.0)
    return float(high - low)


class MclrtCompareFunc:
    """A Polygraphy compare function with mclrt's rule: for each output, max abs error and PSNR over
    the output's value range (both must hold), recorded as `OutputComparison`s in `results`."""

    def __init__(self, model: ModelDir, graph: str, tolerance: Tolerance):
        self.model, self.graph, self.tolerance = model, graph, tolerance
        self.results: list[OutputComparison] = []

    def __call__(self, reference, candidate) -> OrderedDict:
        passed = OrderedDict()
        for name, ref in reference.items():
            got = candidate[name]
            max_abs, max_rel, psnr = output_errors(ref, got, output_value_range(self.model, self.graph, name))
            result = OutputComparison(
                self.graph, name, candidate.runner_name, reference.runner_name, max_abs, max_rel, psnr,
                judge(max_abs, psnr, self.tolerance), mean_abs_error(ref, got),
            )
            self.results.append(result)
            passed[name] = result.passed
        return passed


def _run_and_compare(model: ModelDir, graph: str, runners: dict[str, Runner], feed: dict[str, np.ndarray], tolerance: Tolerance):
    """Every runner on `feed` through Polygraphy's Comparator; the first is the reference.
    Returns (the reference's outputs, the comparisons of every other runner against it)."""
    from polygraphy.comparator import Comparator
    from polygraphy.logger import G_LOGGER

    for label, runner in runners.items():
        runner.name = label  # Comparator keys its results by runner name: the labels are unique
    compare_func = MclrtCompareFunc(model, graph, tolerance)
    with G_LOGGER.verbosity(G_LOGGER.CRITICAL):  # mclrt prints its own table
        results = Comparator.run(list(runners.values()), data_loader=[feed])
        Comparator.compare_accuracy(results, comparisons=[(0, i) for i in range(1, len(runners))], compare_func=compare_func)
    reference = {name: np.asarray(value) for name, value in results[0][1][0].items()}
    return reference, compare_func.results


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
    encoded, encoder_results = _run_and_compare(
        model, "exemplar_encoder", {label: graphs["exemplar_encoder"] for label, graphs in runners.items()}, encoder_feed, tolerance
    )
    translator_feed = {**condition_feed, "exemplar_keys": encoded["exemplar_keys"], "exemplar_values": encoded["exemplar_values"]}
    _, translator_results = _run_and_compare(
        model, "translator", {label: graphs["translator"] for label, graphs in runners.items()}, translator_feed, tolerance
    )
    # Grouped by candidate, encoder before translator, as the table prints them.
    order = {label: i for i, label in enumerate(runners)}
    return sorted(encoder_results + translator_results, key=lambda r: (order[r.backend], GRAPHS.index(r.graph)))


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
    # ONNX Runtime runs on its CPU provider here: the reference every other backend is judged by.
    runners = {
        label: open_runners(model, RunnerOptions(backend=b, precision=precision, plugin=plugin, checkpoint=checkpoint,
                                                 device=Device.cpu if b == "ort" else Device.auto))
        for label, b in zip(labels, backends)
    }
    results = compare_runners(model, runners, tolerance, batch, seed)
    # Report the backend's own name (ort#2 is still ort).
    return [dataclasses.replace(r, backend=r.backend.split("#")[0], reference=r.reference.split("#")[0]) for r in results]


# --- two model directories (`mclrt compare --against`) ------------------------------------------------

END_TO_END = "end to end"


def ort_runners(model: ModelDir, threads: int = 0) -> dict[str, Runner]:
    return open_runners(model, RunnerOptions(backend="ort", device=Device.cpu, threads=threads))


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
            encoded = runners["exemplar_encoder"].infer(encoder_feed)
            images[label] = runners["translator"].infer({**condition_feed, **encoded})
    for name, ref in images[b].items():
        got = images[a][name]
        max_abs, max_rel, psnr = output_errors(ref, got, output_value_range(reference, "translator", name))
        results.append(OutputComparison(END_TO_END, name, a, b, max_abs, max_rel, psnr, judge(max_abs, psnr, tolerance), mean_abs_error(ref, got)))
    return results
