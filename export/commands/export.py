"""`mclrt export`: a checkpoint (or a freshly initialized preset) -> an exported model directory.

Defined here, registered in runtime/cli.py. Nothing at module level imports torch, so the CLI starts
(and `mclrt --help` works) on a runtime-only install; the command imports the exporter when it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def export(
    checkpoint: Optional[Path] = typer.Argument(
        None, help="Checkpoint folder, checkpoints/latest, a run folder, or a model.safetensors beside its meta.json."
    ),
    out: Path = typer.Option(..., "--out", help="Model directory to write (exemplar_encoder.onnx, translator.onnx, mclrt.json)."),
    init: Optional[str] = typer.Option(None, "--init", metavar="PRESET", help="Export a freshly initialized preset instead of a checkpoint."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the --init weights (default 0)."),
    ema: bool = typer.Option(False, "--ema", help="Export the checkpoint's EMA weights (ema.safetensors)."),
    opset: int = typer.Option(20, "--opset", min=18, help="ONNX opset of both graphs."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing model directory."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Check ONNX Runtime against PyTorch (batch 1 and 3) before writing."),
    json_output: bool = typer.Option(False, "--json", help="Print what was written (files, sizes, parity) as one JSON object on stdout."),
) -> None:
    """Export a model to ONNX: the exemplar encoder, the translator and their manifest."""
    from mclrt.runtime.errors import UserError

    if (checkpoint is None) == (init is None):
        raise UserError("give either a CHECKPOINT or --init PRESET (exactly one)")
    if init is not None and ema:
        raise UserError("--ema needs a checkpoint; a fresh --init has no EMA weights")
    if checkpoint is not None and seed is not None:
        raise UserError("--seed only applies to --init (a checkpoint's weights are fixed)")

    from rich.console import Console

    from mclrt.export.checkpoint import init_model, load_checkpoint_source
    from mclrt.export.onnx_export import ExportOptions, check_destination, export_model_dir

    check_destination(out, overwrite)  # before minutes of work, not after
    from mclrt.runtime.fsutil import check_output_location

    check_output_location(out, [checkpoint] if checkpoint is not None else [], replaces_folder=True)
    console = Console(stderr=True)
    with console.status("loading the model"):
        source = init_model(init, seed or 0) if init is not None else load_checkpoint_source(checkpoint, ema=ema)
    with console.status(f"exporting {source.config.preset} to {out}" + (" and checking it against PyTorch" if verify else "")):
        result = export_model_dir(source, out, ExportOptions(opset=opset, overwrite=overwrite, verify=verify))

    for graph, seconds in result.export_seconds.items():
        file = result.manifest.graphs[graph].file
        console.print(f"{file}: {result.file_bytes[file] / 1e6:.1f} MB, exported in {seconds:.1f} s")
    if result.parity is not None:
        timing = ", ".join(f"{graph} {s * 1e3:.0f} ms/image" for graph, s in result.parity.ort_seconds_per_image.items())
        console.print(f"ONNX Runtime vs PyTorch: {result.parity.summary()}; CPU {timing}")
    console.print(f"[green]wrote[/] {result.path}")
    if json_output:
        import json

        parity = None
        if result.parity is not None:
            parity = {"ok": result.parity.ok, "tolerance": result.parity.tolerance, "max_abs_error": result.parity.worst.max_abs_error}
        print(json.dumps({
            "model": str(result.path),
            "preset": result.manifest.preset,
            "precision": result.manifest.precision,
            "files": {file: size for file, size in result.file_bytes.items()},
            "export_seconds": result.export_seconds,
            "parity": parity,
        }))
