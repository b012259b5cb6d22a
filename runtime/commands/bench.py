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
    threads: int = typer.Option(0, "--threads", min=0, help="CPU threads per graph (0: one per core; at most the cores available)."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
    against: Optional[Path] = typer.Option(
        None, "--against", help="A reference model directory (e.g. the FP32 one) timed in the same run, interleaved: prints the speed-up."
    ),
    profile: bool = typer.Option(
        False, "--profile", help="Also show where the time goes: ONNX Runtime's kernel time per operator type (of --against's model too)."
    ),
) -> None:
    """Time each graph and the end-to-end paths on synthetic (valid) inputs."""
    from mclrt.runtime.backends import resolve_backend
    from mclrt.runtime.bench.latency import BenchOptions, run_benchmark
    from mclrt.runtime.errors import UserError
    from mclrt.runtime.threads import cap_threads

    threads = cap_threads(threads)
    if profile and resolve_backend(backend) != Backend.ort.value:
        raise UserError("--profile reads ONNX Runtime's profiler: use it with --backend ort")
    from mclrt.runtime.jetson import telemetry

    options = BenchOptions(backend=backend, batch=batch, runs=runs, warmup=warmup, threads=threads)
    from mclrt.runtime.progress import working

    with telemetry.Telemetry() as sampler, working(f"timing {model} ({runs} runs per stage)"):  # tegrastats on a Jetson
        if against is not None:
            from mclrt.runtime.bench.against import print_paired_table, run_paired_benchmark

            result = run_paired_benchmark(model, against, options)
        else:
            result = run_benchmark(model, options)
    end_to_end = getattr(result, "latency_ms_per_image", {}).get("end_to_end")
    power = telemetry.report(sampler.summary(), 1000.0 / end_to_end.median_ms if end_to_end else None)  # None off a Jetson
    profiles = _profiles(model, against, threads, runs, warmup) if profile else []
    if json_output:
        payload = result.to_dict()
        if profile:
            payload["profile"] = [p.to_dict() for p in profiles]
        if power is not None:
            payload["jetson"] = power
        print(json.dumps(payload))
        return
    if against is not None:
        print_paired_table(result)
    else:
        _print_table(result)
    if power is not None:
        print(telemetry.summary_line(power))
    if profile:
        _print_profile(profiles)


def _profiles(model: Path, against: Optional[Path], threads: int, runs: int, warmup: int) -> list:
    from mclrt.runtime.bench.op_profile import profile_model

    return [profile_model(path, threads, runs, warmup) for path in (model, against) if path is not None]


def _print_profile(profiles: list) -> None:
    """Per category and per op type, kernel ms per run of both graphs (encoder + translator)."""
    from rich.console import Console
    from rich.table import Table

    from mclrt.runtime.bench.op_profile import category_of

    table = Table(
        title="where the time goes: ONNX Runtime kernel ms per run, exemplar encoder + translator, batch 1",
        title_justify="left",
    )
    table.add_column("operators", no_wrap=True)
    for p in profiles:
        table.add_column(p.precision, justify="right", no_wrap=True)
    categories = [p.by_category() for p in profiles]
    for name in categories[0]:
        table.add_row(name, *(f"{c[name]:.2f}" for c in categories))
    table.add_row("total", *(f"{p.total_ms():.2f}" for p in profiles), end_section=True)
    ops = [p.by_op() for p in profiles]
    heaviest = sorted({op for o in ops for op in o}, key=lambda op: -max(o.get(op, 0.0) for o in ops))
    for op in heaviest[:12]:
        table.add_row(f"  {op} ({category_of(op).split(' (')[0]})", *(f"{o.get(op, 0.0):.2f}" for o in ops))
    Console().print(table)


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
