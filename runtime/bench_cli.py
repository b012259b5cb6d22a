"""`mclrt bench`: per-image latency (median and minimum) and peak memory of a model directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from mclrt.runtime.backends import Backend


def bench(
    model: Path = typer.Option(..., "--model", help="Model directory written by `mclrt export` (any precision)."),
    backend: Backend = typer.Option(Backend.auto, "--backend", help="auto: the fastest backend that works here."),
    batch: int = typer.Option(1, "--batch", min=1, help="Images per graph run."),
    runs: int = typer.Option(20, "--runs", min=1, help="Timed runs per stage."),
    warmup: int = typer.Option(3, "--warmup", min=0, help="Untimed runs before each stage."),
    threads: int = typer.Option(0, "--threads", min=0, help="CPU threads per graph (0: one per core)."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
    against: Optional[Path] = typer.Option(
        None, "--against", help="A reference model directory (e.g. the FP32 one) timed in the same run, interleaved: prints the speed-up."
    ),
) -> None:
    """Time each graph and the end-to-end paths on synthetic (valid) inputs."""
    from mclrt.runtime.bench import BenchOptions, run_benchmark

    if against is not None:
        from mclrt.runtime.bench_against import print_paired_table, run_paired_benchmark

        paired = run_paired_benchmark(model, against, BenchOptions(backend=backend, batch=batch, runs=runs, warmup=warmup, threads=threads))
        if json_output:
            print(json.dumps(paired.to_dict()))
        else:
            print_paired_table(paired)
        return
    result = run_benchmark(model, BenchOptions(backend=backend, batch=batch, runs=runs, warmup=warmup, threads=threads))
    if json_output:
        print(json.dumps(result.to_dict()))
        return
    _print_table(result)


def _print_table(result) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{result.preset} ({result.precision}) on {result.backend}\n"
        f"batch {result.batch}, {result.runs} runs after {result.warmup} warm-up; latency per image",
        title_justify="left",
    )
    table.add_column("stage", no_wrap=True)
    table.add_column("median ms", justify="right", no_wrap=True)
    table.add_column("min ms", justify="right", no_wrap=True)
    table.add_column("img/s", justify="right", no_wrap=True)
    table.add_column("peak MiB", justify="right", no_wrap=True)
    for stage, latency in result.latency_ms_per_image.items():
        rate = 1000.0 / latency.median_ms if latency.median_ms > 0 else float("inf")
        table.add_row(
            stage, f"{latency.median_ms:.2f}", f"{latency.min_ms:.2f}", f"{rate:.1f}", f"{result.peak_rss_mib[stage]:.0f}"
        )
    console = Console()
    console.print(table)
    console.print(f"peak RSS after loading both graphs: {result.peak_rss_mib['after_load']:.0f} MiB", highlight=False)
