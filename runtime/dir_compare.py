"""`mclrt compare --model A --against B`: two model directories on ONNX Runtime (CPU), e.g. INT8 vs FP32.

B is the reference. Both graphs are compared one at a time as for backends (runtime/trt/compare.py:
A's translator gets B's keys and values, so an error is pinned to the graph that made it), and then
end to end, A's own encoder feeding A's own translator: the error a user of A actually sees.
Both directories must take the same inputs (image size, condition, correspondence shapes).
"""

from __future__ import annotations

from contextlib import ExitStack

from mclrt.runtime.errors import UserError
from mclrt.runtime.model_dir import MANIFEST_NAME, ModelDir
from mclrt.runtime.runners import CPU_EP, OnnxRuntimeRunner, OrtOptions, Runner
from mclrt.runtime.trt.compare import (
    GRAPHS,
    OutputComparison,
    Tolerance,
    cast_for_runner,
    output_value_range,
    compare_runners,
    judge,
    mean_abs_error,
    output_errors,
)

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
    from mclrt.runtime.compare_inputs import real_feeds

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
