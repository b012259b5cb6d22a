"""`mclrt bench --model DIR --against DIR_REF`: two model directories timed in one run, and the speed-up.

Typical use: an INT8 (or FP16) directory against the FP32 one it was made from. Timing them in two
separate `mclrt bench` runs compares two different machine states -- on a shared or thermally limited
machine the ratio then says more about the moment than about the model. Here both pipelines are
loaded together and their runs interleave, alternating which goes first in each round, so a load
spike hits both alike. The ratio is median(reference) / median(model): above 1 the model is faster.

Stages and inputs are those of `mclrt bench` (runtime/bench/latency.py): the same synthetic, valid
conditions from package photos, per-image medians over `runs` after `warmup`.
"""

from __future__ import annotations

import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from mclrt.runtime.backends import RunnerOptions, describe
from mclrt.runtime.bench.latency import STAGES, BenchOptions, Latency, stage_steps
from mclrt.runtime.errors import UserError
from mclrt.runtime.model_dir import ModelDir, load_model_dir
from mclrt.runtime.pipeline import TranslationPipeline


@dataclass(frozen=True)
class PairedLatency:
    model: Latency  # per image
    against: Latency  # per image
    speedup: float  # against.median_ms / model.median_ms


@dataclass
class PairedBenchResult:
    model: str
    against: str
    preset: str
    model_precision: str
    against_precision: str
    backend: str
    batch: int
    runs: int
    warmup: int
    threads: int
    stages: dict[str, PairedLatency] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _same_task(model: ModelDir, against: ModelDir) -> None:
    """Timing two models is only a ratio when they take the same inputs."""
    a, b = model.manifest, against.manifest
    for what, mine, theirs in (
        ("image_size", a.image_size, b.image_size),
        ("condition", a.condition, b.condition),
        ("correspondence", (a.correspondence.positions, a.correspondence.descriptor_width, a.correspondence.value_width),
         (b.correspondence.positions, b.correspondence.descriptor_width, b.correspondence.value_width)),
    ):  # fmt: skip
        if mine != theirs:
            raise UserError(f"--against takes a model of the same task: {what} is {theirs}, --model has {mine}", against.path)


def _interleaved(first: Callable[[], object], second: Callable[[], object], batch: int, runs: int, warmup: int) -> tuple[Latency, Latency]:
    for _ in range(warmup):
        first()
        second()
    samples: tuple[list[float], list[float]] = ([], [])
    for round_index in range(runs):
        order = (0, 1) if round_index % 2 == 0 else (1, 0)
        for which in order:
            step = first if which == 0 else second
            start = time.perf_counter()
            step()
            samples[which].append((time.perf_counter() - start) * 1000.0 / batch)
    return tuple(Latency(statistics.median(s), min(s)) for s in samples)  # type: ignore[return-value]


def run_paired_benchmark(model_path, against_path, options: BenchOptions = BenchOptions()) -> PairedBenchResult:
    import onnxruntime

    if options.batch < 1 or options.runs < 1 or options.warmup < 0:
        raise UserError("--batch and --runs must be at least 1, --warmup at least 0")
    model, against = load_model_dir(model_path), load_model_dir(against_path)
    _same_task(model, against)
    runner_options = RunnerOptions(backend=options.backend, threads=options.threads)
    with TranslationPipeline.open(model, runner_options) as mine, TranslationPipeline.open(against, runner_options) as theirs:
        result = PairedBenchResult(
            model=str(model_path),
            against=str(against_path),
            preset=model.manifest.preset,
            model_precision=model.manifest.precision,
            against_precision=against.manifest.precision,
            backend=describe(mine.translator),
            batch=options.batch,
            runs=options.runs,
            warmup=options.warmup,
            threads=options.threads,
            versions={"onnxruntime": onnxruntime.__version__, "numpy": np.__version__, "python": platform.python_version()},
        )
        my_steps, their_steps = stage_steps(mine, model, options.batch), stage_steps(theirs, against, options.batch)
        for stage in STAGES:
            latency, reference = _interleaved(my_steps[stage], their_steps[stage], options.batch, options.runs, options.warmup)
            result.stages[stage] = PairedLatency(latency, reference, reference.median_ms / latency.median_ms)
    return result


def print_paired_table(result: PairedBenchResult) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{result.preset}: {result.model_precision} vs {result.against_precision} on {result.backend}\n"
        f"batch {result.batch}, {result.runs} interleaved runs after {result.warmup} warm-up; median ms per image",
        title_justify="left",
    )
    table.add_column("stage", no_wrap=True)
    table.add_column(result.model_precision, justify="right", no_wrap=True)
    table.add_column(result.against_precision, justify="right", no_wrap=True)
    table.add_column("speed-up", justify="right", no_wrap=True)
    for stage, paired in result.stages.items():
        table.add_row(stage, f"{paired.model.median_ms:.2f}", f"{paired.against.median_ms:.2f}", f"{paired.speedup:.2f}x")
    console = Console()
    console.print(table)
    console.print(f"--model {result.model}\n--against {result.against}", highlight=False)
