"""Where a model's time goes, per operator type: ONNX Runtime's own kernel profile of both graphs.

`mclrt bench --profile` prints it (for `--against`'s model too, side by side). A speed-up ratio says
whether INT8 pays off; this says why or why not. On the 128x128 demo model, for instance, the FP32
convolutions are only about half of the time: the rest (reflection pads, normalizations, the
correspondence's matmul and softmax, elementwise ops) stays float in every encoding, and INT8 adds
its own quantize/dequantize and layout transposes.

The numbers are kernel times summed per operator type (what ONNX Runtime's profiler records per
node), per run of each graph, over the last `runs` runs after `warmup`; the gaps between kernels
(scheduling, Python) are not in them, so the total is a little below the wall-clock latency of
`mclrt bench`. Profiling is ONNX Runtime's: this needs the ONNX Runtime backend.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mclrt.runtime.bench.latency import stage_steps
from mclrt.runtime.model_dir import GRAPH_FILES, load_model_dir
from mclrt.runtime.pipeline import TranslationPipeline
from mclrt.runtime.backends import RunnerOptions, open_runners

# Operator types grouped by what they cost an INT8 model; everything else is "other".
# ReorderInput/ReorderOutput are MLAS's NCHWc layout changes around its float convolutions.
CATEGORIES: tuple[tuple[str, frozenset[str]], ...] = (
    ("float convolutions", frozenset({"Conv", "FusedConv", "ReorderInput", "ReorderOutput"})),
    ("int8 convolutions", frozenset({"QLinearConv", "ConvInteger"})),
    ("quantize / dequantize", frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"})),
    ("layout transposes", frozenset({"Transpose"})),
    (
        "matmuls",
        frozenset({"MatMul", "FusedMatMul", "Gemm", "FusedGemm", "MatMulInteger", "MatMulIntegerToFloat", "QLinearMatMul"}),
    ),
)
OTHER = "other (pads, norms, softmax, elementwise, ...)"
KERNEL_SUFFIX = "_kernel_time"


@dataclass
class OpProfile:
    model: str
    precision: str
    runs: int
    threads: int
    ms_per_run: dict[str, dict[str, float]] = field(default_factory=dict)  # graph -> op type -> kernel ms per run
    nodes: dict[str, dict[str, int]] = field(default_factory=dict)  # graph -> op type -> kernels per run

    def by_op(self) -> dict[str, float]:
        """Kernel ms per run of each op type, both graphs together."""
        total: dict[str, float] = {}
        for ops in self.ms_per_run.values():
            for op, ms in ops.items():
                total[op] = total.get(op, 0.0) + ms
        return total

    def by_category(self) -> dict[str, float]:
        sums = {name: 0.0 for name, _ in CATEGORIES} | {OTHER: 0.0}
        for op, ms in self.by_op().items():
            sums[category_of(op)] += ms
        return sums

    def total_ms(self) -> float:
        return sum(self.by_op().values())

    def to_dict(self) -> dict:
        return asdict(self) | {"by_category": self.by_category(), "total_ms": self.total_ms()}


def category_of(op_type: str) -> str:
    return next((name for name, ops in CATEGORIES if op_type in ops), OTHER)


def kernel_times(trace: list[dict], runs: int) -> tuple[dict[str, float], dict[str, int]]:
    """Per op type: kernel ms per run and kernels per run, over the last `runs` model runs of one
    session's ONNX Runtime trace (earlier runs -- warm-up, set-up -- are left out)."""
    windows = sorted((event["ts"], event["ts"] + event["dur"]) for event in trace if event.get("name") == "model_run")
    if len(windows) < runs:
        raise RuntimeError(f"the profile holds {len(windows)} runs, fewer than the {runs} asked for")
    kept = windows[-runs:]
    micros: dict[str, float] = {}
    counts: dict[str, int] = {}
    for event in trace:
        if event.get("cat") != "Node" or not event.get("name", "").endswith(KERNEL_SUFFIX):
            continue
        if not any(start <= event["ts"] <= end for start, end in kept):
            continue
        op = event.get("args", {}).get("op_name", "?")
        micros[op] = micros.get(op, 0.0) + event["dur"]
        counts[op] = counts.get(op, 0) + 1
    return {op: us / 1000.0 / runs for op, us in micros.items()}, {op: n // runs for op, n in counts.items()}


def profile_model(model_path, threads: int = 0, runs: int = 10, warmup: int = 3) -> OpProfile:
    """Run each graph `warmup` + `runs` times on the bench's inputs (batch 1) with ONNX Runtime's
    profiler on, and sum its kernel times per op type."""
    if runs < 1 or warmup < 0:
        raise ValueError("runs must be at least 1 and warmup at least 0")
    model = load_model_dir(model_path)
    result = OpProfile(str(model_path), model.manifest.precision, runs, threads)
    with tempfile.TemporaryDirectory(prefix="mclrt-profile-") as scratch:
        runners = open_runners(model, RunnerOptions(backend="ort", threads=threads, profile_prefix=f"{scratch}/"))
        with TranslationPipeline(model, runners["exemplar_encoder"], runners["translator"]) as pipeline:
            steps = stage_steps(pipeline, model, batch=1)
            for graph in GRAPH_FILES:
                for _ in range(warmup + runs):
                    steps[graph]()
            traces = {graph: runners[graph].end_profiling() for graph in GRAPH_FILES}
            for graph, trace_path in traces.items():
                trace = json.loads(Path(trace_path).read_text())
                result.ms_per_run[graph], result.nodes[graph] = kernel_times(trace, runs)
    return result
