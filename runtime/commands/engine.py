"""`mclrt engine build`: TensorRT plans for a model directory (see mclrt.runtime.trt.builder)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

engine_app = typer.Typer(help="TensorRT engines: build plans (cached) for a model directory.", no_args_is_help=True)


@engine_app.command("build")
def build(
    model: Path = typer.Option(..., "--model", help="Model directory (mclrt.json + exemplar_encoder.onnx + translator.onnx)."),
    precision: str = typer.Option("fp32", "--precision", help="fp32 | fp16 (ONNX recipe, protected layers FP32) | int8 (Q/DQ models from calibration)."),
    plugin: str = typer.Option("auto", "--plugin", help="auto | on | off: map CorrespondenceSoftmax to the plugin, or inline its ONNX function."),
    batch: str = typer.Option("1:1:4", "--batch", help="Dynamic batch profile MIN:OPT:MAX, or one number for a static batch."),
    workspace: Optional[int] = typer.Option(None, "--workspace", help="Builder workspace limit in MiB (default: TensorRT's)."),
    target: str = typer.Option(
        "auto", "--target", help="auto | compute capabilities sm80,sm86,... or 8.0,8.6 (TensorRT-RTX; case-insensitive) | ampere-plus (enterprise)."
    ),
    dla_core: Optional[int] = typer.Option(None, "--dla-core", help="Build for this DLA core, GPU fallback on (Jetson Orin, JetPack 6; FP16/INT8, --batch N); prints which layers run on it."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output directory (default: the engine cache, $MCLRT_CACHE_DIR or ~/.cache/mclrt); never the model directory or one shipped with mclrt."),
    no_build: bool = typer.Option(False, "--no-build", help="Never build: fail unless up-to-date plans are cached."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Build even if the cached plans are up to date."),
    verbose: bool = typer.Option(False, "--verbose", help="Print TensorRT's full log."),
    skip_memory_check: bool = typer.Option(False, "--skip-memory-check", help="Jetson: build even if free RAM + swap look too small for the build."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object (plans, status, sizes, notes) instead of a table."),
) -> None:
    """Build one plan per graph (exemplar_encoder.plan, translator.plan) into OUT/<precision>-<plugin>/."""
    from rich.console import Console
    from rich.table import Table

    from mclrt.runtime.fsutil import check_output_location, check_writable
    from mclrt.runtime.model_dir import load_model_dir
    from mclrt.runtime.trt import builder

    console = Console(stderr=True)
    options = builder.BuildOptions(
        precision=precision,
        plugin=plugin,
        batch=builder.BatchProfile.parse(batch),
        workspace_mb=workspace,
        target=target,
        dla_core=dla_core,
        rebuild=rebuild,
        no_build=no_build,
        verbose=verbose,
        skip_memory_check=skip_memory_check,
    )
    model_dir = load_model_dir(model)
    # Before TensorRT is even looked for: a read-only --out (or cache) is refused in one line.
    # An --out follows every command's rules (never the model directory, nor a shipped one).
    if out is not None:
        check_output_location(out, [model])
    else:
        check_writable(builder.default_out_dir(model_dir))
    results = builder.build_engines(model_dir, options, out=out, progress=lambda text: console.print(f"[dim]{text}[/dim]"))

    if json_output:
        import json

        print(json.dumps({"plans": [
            {"graph": r.graph, "plan": str(r.plan), "status": r.status, "bytes": r.plan_bytes, "seconds": r.seconds, "notes": list(r.notes),
             "dla": None if r.dla is None else r.dla.summary()}
            for r in results
        ]}))
        return
    table = Table(title=f"TensorRT plans in {results[0].plan.parent}")
    # corr: how the correspondence was built; layers: in Half / holding FP32-protected nodes.
    for column in ("graph", "status", "MB", "s", "corr", "layers", "fp16 err"):
        table.add_column(column)
    for result in results:
        report = result.report
        plugin_state = "-" if report is None else ("plugin" if report.plugin_imported else "inlined" if report.function_inlined else "-")
        layers = "-" if report is None else f"{report.half_layers} / {len(report.protected_layers)}"
        # Worst output of the FP16 ONNX against the FP32 ONNX on ONNX Runtime's CPU provider.
        error = "-" if not (result.fp16 and result.fp16.max_abs_error) else f"{max(result.fp16.max_abs_error.values()):.1e}"
        table.add_row(result.graph, result.status, f"{result.plan_bytes / 1e6:.1f}", f"{result.seconds:.1f}", plugin_state, layers, error)
    Console().print(table)
    for result in results:
        if result.dla is not None:
            console.print(f"DLA: {result.graph}: {result.dla.summary()}")
        for note in result.notes:
            console.print(f"[yellow]warning[/yellow]: {result.graph}: {note}", soft_wrap=True, highlight=False)
