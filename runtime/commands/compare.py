"""`mclrt compare --model DIR --backends ort,trt[,torch]`."""

from __future__ import annotations

from pathlib import Path

import typer


def compare(
    model: Path = typer.Option(..., "--model", help="Model directory."),
    backends: str = typer.Option("ort,trt", "--backends", help="Comma-separated; the first is the reference: ort, trt, torch."),
    precision: str = typer.Option("fp32", "--precision", help="Engine precision under test (sets the tolerances): fp32 | fp16 | int8."),
    plugin: str = typer.Option("auto", "--plugin", help="TensorRT plans with the CorrespondenceSoftmax plugin: auto | on | off."),
    batch: int = typer.Option(2, "--batch", min=1, help="Random inputs per graph run."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random inputs."),
) -> None:
    """Run both graphs on several backends with the same inputs; per-output max abs/rel error and PSNR."""
    from rich.console import Console
    from rich.table import Table

    from mclrt.runtime.model_dir import load_model_dir
    from mclrt.runtime.trt.compare import TOLERANCES, compare_backends

    model_dir = load_model_dir(model)
    names = [b.strip() for b in backends.split(",") if b.strip()]
    results = compare_backends(model_dir, names, precision, plugin, batch, seed)
    tolerance = TOLERANCES[precision]
    table = Table(
        title=f"{names[0]} (reference) vs {', '.join(names[1:])}, {precision}: pass = max abs <= {tolerance.max_abs} and PSNR >= {tolerance.min_psnr_db} dB"
    )
    for column in ("backend", "graph", "output", "max abs", "max rel", "PSNR dB", "verdict"):
        table.add_column(column)
    for r in results:
        table.add_row(r.backend, r.graph, r.output, f"{r.max_abs:.2e}", f"{r.max_rel:.2e}", f"{r.psnr_db:.1f}", "PASS" if r.passed else "[red]FAIL[/red]")
    Console().print(table)
    if not all(r.passed for r in results):
        raise typer.Exit(1)
