"""The accuracy report of `mclrt quantize`: a JSON file, a picture, and rich tables on the terminal.

accuracy.json holds the recipe, the calibration set, per encoding the summary and per-pair figures,
and the sensitivity sweep. accuracy.png is a grid, one row per held-out pair (at most four):
FP32 | INT8 | |INT8 - FP32| x 8 for each encoding, so a grey level of error shows as 8.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from mclrt.calibration.accuracy import Accuracy
from mclrt.calibration.sweep import GroupSensitivity
from mclrt.runtime.fsutil import atomic_write_bytes
from mclrt.runtime.image_out import results_grid, to_uint8_rgb, write_png
from mclrt.runtime.pipeline import Translation

REPORT_JSON = "accuracy.json"
REPORT_PNG = "accuracy.png"
REPORT_FORMAT = "mclrt-quantize-report"
DIFF_GAIN = 8
GRID_ROWS = 4


def write_json(path: Path, report: Mapping) -> None:
    text = json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))


def difference_image(fp32: np.ndarray, int8: np.ndarray) -> np.ndarray:
    """|INT8 - FP32| of two [3, H, W] model images, in 8-bit grey levels times DIFF_GAIN, as RGB uint8."""
    a = to_uint8_rgb(fp32).astype(np.int16)
    b = to_uint8_rgb(int8).astype(np.int16)
    return np.clip(np.abs(a - b) * DIFF_GAIN, 0, 255).astype(np.uint8)


def write_grid(path: Path, fp32: Sequence[Translation], int8: Mapping[str, Sequence[Translation]], cell: int) -> None:
    titles = ["FP32"]
    for precision in int8:
        titles += [precision.upper(), f"|diff| x{DIFF_GAIN}"]
    rows = []
    for i in range(min(GRID_ROWS, len(fp32))):
        reference = fp32[i].images[0]
        row = [to_uint8_rgb(reference)]
        for outputs in int8.values():
            row += [to_uint8_rgb(outputs[i].images[0]), difference_image(reference, outputs[i].images[0])]
        rows.append(row)
    write_png(path, results_grid(rows, titles=titles, cell=cell))


def print_tables(report: Mapping, accuracy: Mapping[str, Accuracy], sweep: Sequence[GroupSensitivity]) -> None:
    """Metrics as rows and encodings as columns, so the table fits 80 columns."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    recipe, cset = report["recipe"], report["calibration_set"]
    table = Table(
        title=f"INT8 vs FP32 on {cset['holdout_pairs']} held-out pair(s); {recipe['method']} calibration on {cset['images']} image(s)"
        + (f" ({cset['skipped']} bad photo(s) skipped)" if cset.get("skipped") else ""),
        title_justify="left",
    )
    table.add_column("images in [0, 1]", no_wrap=True)
    for precision in accuracy:
        table.add_column(precision, justify="right", no_wrap=True)
    rows = (
        ("PSNR dB, mean", lambda a: f"{a.psnr_db_mean:.2f}"),
        ("PSNR dB, worst pair", lambda a: f"{a.psnr_db_min:.2f}"),
        ("SSIM, mean", lambda a: f"{a.ssim_mean:.4f}"),
        ("max abs error", lambda a: f"{a.max_abs_error:.4f}"),
        ("warped exemplar PSNR dB", lambda a: f"{a.warped_psnr_db_mean:.2f}"),
        ("warped exemplar max abs error", lambda a: f"{a.warped_max_abs_error:.4f}"),
    )
    for label, cell in rows:
        table.add_row(label, *(cell(result) for result in accuracy.values()))
    table.add_row(
        "quantized nodes (encoder + translator)",
        *(" + ".join(str(n) for n in report["encodings"][p]["quantized_nodes"].values()) for p in accuracy),
    )
    console.print(table)
    if sweep:
        groups = Table(
            title=f"sensitivity: one layer group at a time ({report['sweep']['encoding']}), the rest FP32",
            title_justify="left",
        )
        groups.add_column("layer group", no_wrap=True)
        groups.add_column("nodes", justify="right", no_wrap=True)
        groups.add_column("PSNR dB mean / min", justify="right", no_wrap=True)
        groups.add_column("SSIM", justify="right", no_wrap=True)
        groups.add_column("in the models", no_wrap=True)
        for item in sorted(sweep, key=lambda g: g.psnr_db_mean):
            groups.add_row(
                item.group,
                str(item.nodes),
                f"{item.psnr_db_mean:.2f} / {item.psnr_db_min:.2f}",
                f"{item.ssim_mean:.4f}",
                item.in_models if item.in_models == "quantized" else f"[yellow]{item.in_models}[/]",
            )
        console.print(groups)
    exclusions = recipe["exclude"]
    console.print(f"exclusions: {', '.join(exclusions) if exclusions else 'none beyond the placement rules'}", highlight=False)
