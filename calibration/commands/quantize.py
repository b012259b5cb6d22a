"""`mclrt quantize`: calibrate once on real photos, write INT8 model directories and an accuracy report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from mclrt.runtime.commands.options import ALPHA, ALPHA_COLOUR, Alpha, alpha_background


def quantize(
    model: Path = typer.Option(..., "--model", help="FP32 model directory written by `mclrt export`."),
    calib: str = typer.Option(..., "--calib", help="Calibration photos: a folder (top level; --recursive for subfolders) or a glob pattern."),
    recursive: bool = typer.Option(False, "--recursive", help="Also search the subfolders of a --calib folder."),
    continue_on_error: bool = typer.Option(
        False, "--continue-on-error", help="Report and skip bad photos, calibrate on the others, and exit with code 3 at the end."
    ),
    alpha: Alpha = ALPHA,
    alpha_colour: str = ALPHA_COLOUR,
    out: Path = typer.Option(..., "--out", help="Output: the INT8 model directory (with --encoding both: a folder holding trt/ and cpu/)."),
    num: int = typer.Option(512, "--num", min=1, help="Calibration images to use (evenly spaced over the sorted photos)."),
    method: str = typer.Option("max", "--method", help="Calibration: max (MinMax), entropy or percentile (99.999)."),
    exclude: Optional[List[str]] = typer.Option(
        None, "--exclude", help="Keep matching layers FP32: a shell pattern on the node name, module path or layer group (repeatable)."
    ),
    encoding: str = typer.Option("both", "--encoding", help="trt (TensorRT: int8, zero point 0), cpu (ONNX Runtime: uint8, zero point 128) or both."),
    holdout: int = typer.Option(8, "--holdout", min=1, help="Photos kept out of calibration for the accuracy report."),
    calib_cond: Optional[Path] = typer.Option(
        None, "--calib-cond", help="Condition files named like the photos (for label / celeba-edge models, whose maps cannot be extracted)."
    ),
    sweep: bool = typer.Option(True, "--sweep/--no-sweep", help="Per-layer-group sensitivity (one group quantized at a time)."),
    sweep_only: Optional[List[str]] = typer.Option(
        None, "--sweep-only", help="Sweep only the layer groups matching this shell pattern (repeatable), e.g. 'generator.*'."
    ),
    tool: str = typer.Option("ort", "--tool", help="ort (ONNX Runtime, default) or modelopt (NVIDIA ModelOpt, TensorRT encoding only)."),
    threads: int = typer.Option(0, "--threads", min=0, help="ONNX Runtime threads (0: one per core; at most the cores available)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out."),
    json_output: bool = typer.Option(False, "--json", help="Print the report as one JSON object instead of tables."),
) -> None:
    """Quantize a model directory to INT8 (explicit Q/DQ) from real calibration photos, with an accuracy report."""
    from rich.console import Console

    from mclrt.calibration.quantize import QuantizeOptions, quantize_model_dir, result_summary
    from mclrt.calibration.report import print_tables
    from mclrt.runtime.errors import EXIT_INCOMPLETE
    from mclrt.runtime.threads import cap_threads

    options = QuantizeOptions(
        model=model,
        calib=calib,
        out=out,
        num=num,
        method=method,
        exclude=tuple(exclude or ()),
        encoding=encoding,
        holdout=holdout,
        calib_cond=calib_cond,
        sweep=sweep,
        sweep_only=tuple(sweep_only or ()),
        tool=tool,
        threads=cap_threads(threads),
        overwrite=overwrite,
        recursive=recursive,
        alpha=alpha_background(alpha, alpha_colour),  # a bad colour is one line before any work
        continue_on_error=continue_on_error,
    )
    status = Console(stderr=True)
    if status.is_terminal:
        with status.status("quantizing") as spinner:
            result = quantize_model_dir(options, progress=lambda message: spinner.update(message))
    else:  # a log file or a pipe: one line per step, so a long run shows where it is
        result = quantize_model_dir(options, progress=lambda message: status.print(message, highlight=False))
    skipped = result.report["calibration_set"]["skipped"]
    if json_output:
        print(json.dumps(result_summary(result)))
    else:
        print_tables(result.report, result.accuracy, result.sweep)
        for precision, path in result.model_dirs.items():
            Console().print(f"{precision}: {path}", highlight=False)
        Console().print(f"report: {out / 'accuracy.json'}, {out / 'accuracy.png'}", highlight=False)
        if skipped:
            status.print(f"{skipped} photo(s) failed preprocessing and were skipped", highlight=False)
    if skipped:
        raise SystemExit(EXIT_INCOMPLETE)
