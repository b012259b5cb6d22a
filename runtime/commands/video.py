"""`mclrt video`: translate a video, a camera, a folder of frames or a raw frame pipe, frame by frame.

The exemplar is encoded once; each frame (or batch of `--batch` frames) runs only the translator.
Where things go:
- stdout carries data only: the raw frames with `--out -`, otherwise the `--json` report;
- with `--out -` the `--json` report is the last line on stderr, so it never corrupts the frame stream;
- everything else (the start line, one line per skipped frame, the progress bar on a terminal, the
  summary) goes to stderr.
Exit codes (runtime/errors.py, docs/troubleshooting.md): 0 when every frame the source gave is in the
output (or was dropped by --drop-late, which asks for that); 3 when some frames failed (a damaged
frame, an extraction that found nothing, a write the disk refused) -- each is reported on its line and
counted; 130 when Ctrl-C stopped the run (after the frames in flight were written and the output
finalized, so it plays); 2 for bad input (one line, no traceback). A second Ctrl-C aborts at once and
removes the unfinished output, as does a Ctrl-C that comes before the first frame was written (exit
code 130 in both cases). A video file is read back when it is finished: if it holds fewer frames than
were written (disk full), it is removed and the run fails with exit code 3.
"""

from __future__ import annotations

import enum
import json
import sys
from pathlib import Path
from typing import Optional

import typer

from mclrt.runtime.backends import Backend
from mclrt.runtime.commands.options import ALPHA, ALPHA_COLOUR, Alpha, alpha_background
from mclrt.runtime.errors import EXIT_INCOMPLETE, EXIT_INTERRUPTED
from mclrt.runtime.inputs.fit import Fit
from mclrt.runtime.inputs.preprocess import Invert
from mclrt.runtime.jobs.video import run_video
from mclrt.runtime.threads import cap_threads
from mclrt.runtime.video.sinks import MAX_VIDEO_FPS, MIN_VIDEO_FPS, STDOUT
from mclrt.runtime.video.stream import StreamSettings


class Extract(str, enum.Enum):
    canny = "canny"
    face = "face"
    pose = "pose"
    none = "none"


def video(
    model: Path = typer.Option(..., "--model", help="Model directory written by `mclrt export`."),
    source: str = typer.Option(
        ..., "--source", help="A video file, cam:N (a camera), csi:N (a Jetson CSI camera, needs OpenCV with GStreamer), a folder of frames (name order), or - (raw RGB frames on stdin, with --size)."
    ),
    exemplar: Path = typer.Option(..., "--exemplar", help="Exemplar photo whose appearance every frame takes."),
    out: str = typer.Option(
        ..., "--out", help="A video file (.mp4/.m4v/.mov: mp4v, .avi/.mkv: MJPG), a folder (frame_NNNNNN.png), or - (raw RGB frames on stdout)."
    ),
    extract: Optional[Extract] = typer.Option(
        None, "--extract", help="How each frame becomes a condition (none: the frames are condition maps). Default: the model's own extractor (mclrt.json), as in infer."
    ),
    backend: Backend = typer.Option(Backend.auto, "--backend", help="auto: the fastest backend that works here."),
    batch: int = typer.Option(1, "--batch", min=1, help="Frames per translator run."),
    drop_late: bool = typer.Option(
        False, "--drop-late", help="Keep up with real time: drop the oldest waiting frame instead of waiting (files are read at their frame rate)."
    ),
    max_queue: int = typer.Option(4, "--max-queue", min=1, help="Frames each queue between two stages holds."),
    max_latency_ms: Optional[float] = typer.Option(
        None,
        "--max-latency-ms",
        min=1.0,
        help="Drop a frame already older than this when the translator takes it, if a newer one waits (files are read at their frame rate).",
    ),
    fps: Optional[float] = typer.Option(
        None, "--fps", min=MIN_VIDEO_FPS, max=MAX_VIDEO_FPS, help="Output frame rate (default: the source's, else 25)."
    ),
    size: Optional[str] = typer.Option(None, "--size", help="WIDTHxHEIGHT of raw stdin frames (a requested mode for cameras)."),
    json_report: bool = typer.Option(False, "--json", help="Print the report as one JSON object (on stderr with --out -)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
    exemplar_cond: Optional[Path] = typer.Option(
        None, "--exemplar-cond", help="The exemplar's own condition map (maskmix models; default: extracted from the photo)."
    ),
    threads: int = typer.Option(0, "--threads", min=0, help="CPU threads per graph (0: one per core; at most the cores available)."),
    invert: Invert = typer.Option(
        Invert.auto, "--invert", help="Edge frames (--extract none) are white lines on black. auto: invert mostly white frames, saying so once; yes; no."
    ),
    alpha: Alpha = ALPHA,
    alpha_colour: str = ALPHA_COLOUR,
    fit: Fit = typer.Option(Fit.crop, "--fit", help="Frames of another aspect ratio than the model's: crop (centre), pad, or stretch."),
    keep_aspect: bool = typer.Option(
        False, "--keep-aspect", help="Write frames at the source's aspect ratio (the first frame's; with --fit pad or stretch)."
    ),
) -> None:
    """Translate a video stream frame by frame in the style of one exemplar (encoded once)."""
    from rich.console import Console

    from mclrt.runtime.jetson import telemetry

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    background = alpha_background(alpha, alpha_colour)  # a bad colour is one line before any work
    with telemetry.Telemetry() as sampler:  # tegrastats on a Jetson; records nothing elsewhere
        report = run_video(
            model_path=model,
            source_spec=source,
            exemplar_path=exemplar,
            out=out,
            extract=None if extract is None else extract.value,
            backend=backend,
            settings=StreamSettings(batch=batch, max_queue=max_queue, drop_late=drop_late, max_latency_ms=max_latency_ms),
            fps=fps,
            size=size,
            overwrite=overwrite,
            exemplar_cond=exemplar_cond,
            threads=cap_threads(threads),
            console=console,
            fit=fit.value,
            keep_aspect=keep_aspect,
            invert=invert.value,
            alpha=background,
        )
    power = telemetry.report(sampler.summary(), report.fps)  # None off a Jetson: the output is unchanged
    if json_report:
        document = report.to_json_dict()
        if power is not None:
            document["jetson"] = power
        print(json.dumps(document), file=sys.stderr if out == STDOUT else sys.stdout, flush=True)
    else:
        for text in report.summary_lines():
            console.print(text, markup=False)
        if power is not None:
            console.print(telemetry.summary_line(power), markup=False)
    if report.interrupted:
        raise SystemExit(EXIT_INTERRUPTED)
    if report.failed:
        raise SystemExit(EXIT_INCOMPLETE)


