"""`mclrt compare --model DIR [--against DIR | --backends ort,trt|torch]`: the same real inputs, per-output errors.

Two ways to compare, both run by Polygraphy's Comparator with mclrt's rules (runtime/compare.py):
- `--against B`: two model directories on ONNX Runtime (CPU), e.g. INT8 or FP16 against the FP32
  they came from (`compare_model_dirs` in runtime/compare.py). Works on any machine.
- `--backends`: one model directory on several backends; the first is the reference. The default
  is what this machine can run: `ort,trt` with TensorRT and a GPU, else `ort,torch` (the PyTorch
  model the directory was exported from) where PyTorch is installed.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import Optional

import typer

from mclrt.runtime.errors import UserError


def default_backends() -> list[str]:
    """The pair of backends that can both run here, ONNX Runtime first (the reference)."""
    from mclrt.runtime.trt.backend import tensorrt_usable

    if tensorrt_usable():
        return ["ort", "trt"]
    if importlib.util.find_spec("torch") is not None:
        return ["ort", "torch"]
    raise UserError(
        "nothing to compare ONNX Runtime with on this machine (no TensorRT with a CUDA device, no PyTorch): "
        "give --against DIR to compare two model directories, or install PyTorch for --backends ort,torch"
    )


def compare(
    model: Path = typer.Option(..., "--model", help="Model directory (the candidate)."),
    against: Optional[Path] = typer.Option(
        None, "--against", help="A reference model directory (e.g. the FP32 one): compare the two on ONNX Runtime (CPU)."
    ),
    backends: Optional[str] = typer.Option(
        None,
        "--backends",
        help="Comma-separated, the first is the reference: ort, trt, torch. Default: ort,trt with a GPU and TensorRT, else ort,torch.",
    ),
    precision: Optional[str] = typer.Option(
        None, "--precision", help="Tolerances to judge by: fp32 | fp16 | int8 (default: the model directory's precision)."
    ),
    checkpoint: Optional[Path] = typer.Option(
        None, "--checkpoint", help="torch backend: the checkpoint the model was exported from; its model.safetensors must have the SHA-256 mclrt.json records."
    ),
    plugin: str = typer.Option("auto", "--plugin", help="TensorRT plans with the CorrespondenceSoftmax plugin: auto | on | off."),
    batch: int = typer.Option(2, "--batch", min=1, help="Inputs per graph run (package photos: scikit-image, scikit-learn, matplotlib)."),
    seed: int = typer.Option(0, "--seed", help="Which photos come first, and the seed of random condition maps."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
) -> None:
    """Compare a model directory with another (--against) or across backends: per-output max/mean abs error, PSNR."""
    from mclrt.runtime.inputs.feeds import describe_feeds
    from mclrt.runtime.model_dir import load_model_dir
    from mclrt.runtime.compare import MANIFEST_PRECISION, compare_backends, tolerance_for

    model_dir = load_model_dir(model)
    precision = precision or MANIFEST_PRECISION[model_dir.manifest.precision]
    tolerance = tolerance_for(precision)
    if against is not None:
        from mclrt.runtime.compare import compare_model_dirs

        if backends not in (None, "ort"):
            raise UserError("--against compares two model directories on ONNX Runtime: leave out --backends")
        reference = load_model_dir(against)
        results = compare_model_dirs(model_dir, reference, tolerance, batch, seed)
        title = f"{model} vs {against} (reference) on ONNX Runtime (CPU)"
    else:
        names = [b.strip() for b in backends.split(",") if b.strip()] if backends is not None else default_backends()
        results = compare_backends(model_dir, names, precision, plugin, batch, seed, None if checkpoint is None else str(checkpoint))
        title = f"{names[0]} (reference) vs {', '.join(names[1:])}"
    passed = all(r.passed for r in results)
    criterion = ("" if tolerance.max_abs is None else f"max abs <= {tolerance.max_abs} and ") + f"PSNR >= {tolerance.min_psnr_db} dB"
    if json_output:
        print(json.dumps({"title": title, "precision": precision, "criterion": criterion, "inputs": describe_feeds(model_dir),
                          "batch": batch, "passed": passed, "outputs": [r.to_dict() for r in results]}))
    else:
        _print_table(results, f"{title}, {precision}: pass = {criterion}\ninputs: {describe_feeds(model_dir)}")
    if not passed:
        raise typer.Exit(1)


def _print_table(results, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in ("vs", "graph", "output", "max abs", "mean abs", "max rel", "PSNR dB", "verdict"):
        table.add_column(column)
    for r in results:
        label = r.backend if len(r.backend) < 12 else Path(r.backend).name
        psnr = "inf" if math.isinf(r.psnr_db) and r.psnr_db > 0 else f"{r.psnr_db:.1f}"
        table.add_row(label, r.graph, r.output, f"{r.max_abs:.2e}", f"{r.mean_abs:.2e}", f"{r.max_rel:.2e}", psnr, "PASS" if r.passed else "[red]FAIL[/red]")
    Console(width=max(Console().width, 130)).print(table)  # a log or pipe is 80 columns wide: too narrow for 8 columns
