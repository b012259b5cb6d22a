"""`mclrt infer`: translate condition maps into images in the style of one exemplar photo.

The options, the summary and the exit code; the work itself is `run_infer` (runtime/jobs/infer.py),
a user of the Python API (runtime/api.py), which says what is written where.
"""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Optional

import typer

from mclrt.runtime.backends import Backend
from mclrt.runtime.commands.options import ALPHA, ALPHA_COLOUR, Alpha, alpha_background
from mclrt.runtime.errors import EXIT_INCOMPLETE, EXIT_INTERRUPTED, UserError
from mclrt.runtime.inputs.preprocess import Invert
from mclrt.runtime.inputs.fit import Fit, describe_fit
from mclrt.runtime.jobs.infer import InferSummary, run_infer
from mclrt.runtime.threads import cap_threads


class Extract(str, enum.Enum):
    auto = "auto"
    none = "none"
    canny = "canny"
    face = "face"
    pose = "pose"


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' -> (K, N), K counted from 0 like a SLURM array index (--array=0-<N-1>)."""
    parts = text.split("/")
    if len(parts) == 2 and all(part.strip().isdigit() for part in parts):
        k, n = int(parts[0]), int(parts[1])
        if n >= 1 and 0 <= k < n:
            return k, n
    raise UserError(f"must be K/N with 0 <= K < N (e.g. 0/4 ... 3/4); got {text!r}", "--shard")


def infer(
    model: Path = typer.Option(..., "--model", help="Model directory written by `mclrt export`."),
    cond: str = typer.Option(
        ..., "--cond", help="Condition file, folder of them (top level; --recursive for subfolders), or a quoted glob pattern. Give it once."
    ),
    exemplar: Path = typer.Option(..., "--exemplar", help="Exemplar photo whose appearance the outputs take."),
    out: Path = typer.Option(..., "--out", help="Output folder (created if missing)."),
    batch: int = typer.Option(1, "--batch", min=1, help="Conditions per translator run."),
    save_warp: bool = typer.Option(
        False, "--save-warp", help="Also write <stem>_warp.png (the warped exemplar) and <stem>_corr.png (labelled panels: exemplar key, correspondence, condition)."
    ),
    save_condition: bool = typer.Option(
        False, "--save-condition", help="Also write <stem>_cond.png: the condition map the model saw (edges: white lines on black)."
    ),
    invert: Invert = typer.Option(
        Invert.auto, "--invert", help="Edge maps are white lines on black. auto: invert a mostly white map (black lines on white), saying so; yes: always; no: never."
    ),
    alpha: Alpha = ALPHA,
    alpha_colour: str = ALPHA_COLOUR,
    recursive: bool = typer.Option(False, "--recursive", help="Also search the subfolders of a --cond folder (outputs keep the subfolders)."),
    backend: Backend = typer.Option(Backend.auto, "--backend", help="auto: the fastest backend that works here."),
    continue_on_error: bool = typer.Option(
        False, "--continue-on-error", help="Report and skip bad conditions; exit with code 3 at the end if any failed."
    ),
    extract: Extract = typer.Option(
        Extract.auto,
        "--extract",
        help="Make conditions from photos: canny/face edges or a pose map. Default auto: the model's own extractor (mclrt.json) "
        "for photos, condition maps (black-and-white edge images, label PNGs, .npy, pose files) read as they are; none: --cond holds maps only.",
    ),
    exemplar_cond: Optional[Path] = typer.Option(
        None, "--exemplar-cond", help="The exemplar's own condition map (maskmix models; default: extracted from the photo)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
    threads: int = typer.Option(0, "--threads", min=0, help="CPU threads per graph (0: one per core; at most the cores available)."),
    skip_existing: bool = typer.Option(
        False, "--skip-existing", help="Skip conditions whose outputs all exist: resume an interrupted or partly failed run."
    ),
    shard: Optional[str] = typer.Option(
        None, "--shard", metavar="K/N", help="Translate only shard K (0..N-1) of N, so N machines share a folder (implies --skip-existing)."
    ),
    fit: Fit = typer.Option(
        Fit.crop, "--fit", help="Inputs of another aspect ratio than the model's: crop (centre), pad, or stretch."
    ),
    keep_aspect: bool = typer.Option(
        False, "--keep-aspect", help="Write outputs at each condition's aspect ratio (with --fit pad or stretch)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the summary (outputs, failures, shard, timings) as one JSON object."),
) -> None:
    """Translate condition maps into images that look like the exemplar."""
    from rich.console import Console

    console = Console()
    background = alpha_background(alpha, alpha_colour)  # a bad colour is one line before any work
    summary = run_infer(
        model_path=model,
        cond=cond,
        exemplar_path=exemplar,
        out=out,
        batch=batch,
        save_warp=save_warp,
        backend=backend,
        continue_on_error=continue_on_error,
        extract=extract.value,
        exemplar_cond=exemplar_cond,
        overwrite=overwrite,
        threads=cap_threads(threads),
        skip_existing=skip_existing,
        shard=None if shard is None else parse_shard(shard),
        fit=fit.value,
        keep_aspect=keep_aspect,
        invert=invert.value,
        alpha=background,
        save_condition=save_condition,
        recursive=recursive,
    )
    if json_output:
        print(json.dumps({**summary.to_json_dict(out), "fit": fit.value, "keep_aspect": keep_aspect}))
    else:
        console.print(describe_fit(fit.value, keep_aspect), highlight=False, soft_wrap=True)
        _print_summary(console, summary, out)
    if summary.interrupted:
        raise SystemExit(EXIT_INTERRUPTED)
    if summary.failed:
        raise SystemExit(EXIT_INCOMPLETE)


def _print_summary(console, summary: InferSummary, out: Path) -> None:
    def say(text: str) -> None:
        console.print(text, highlight=False, soft_wrap=True)

    rate = summary.images / summary.seconds if summary.seconds > 0 else 0.0
    if summary.backend:
        say(
            f"{summary.images} image(s) in {summary.seconds:.2f} s ({rate:.1f} images/s; "
            f"exemplar encoded once in {summary.encode_seconds:.2f} s) on {summary.backend} -> {out}"
        )
    elif not summary.interrupted:  # nothing left to translate: every output of this run existed
        say(f"nothing to do: the outputs of all {summary.assigned} condition(s) exist in {out}")
    if summary.skipped and summary.shard is None:
        say(f"{len(summary.skipped)} condition(s) already had their outputs (skipped)")
    if summary.shard is not None:
        say(summary.shard_line())
    if summary.interrupted:
        say(_interrupted_line(summary))
    elif summary.failed:
        say(f"{len(summary.failed)} condition(s) failed and were skipped")


def _interrupted_line(summary: InferSummary) -> str:
    def names(stems: list[str]) -> str:
        return ", ".join(stems[:5]) + (f", ... ({len(stems) - 5} more)" if len(stems) > 5 else "")

    return (
        f"interrupted: {summary.images} condition(s) written ({names(summary.translated) or 'none'}); {len(summary.not_written)} not written "
        f"({names(summary.not_written)}); run the same command with --skip-existing to finish"
    )


