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

import contextlib
import dataclasses
import enum
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Iterator, Optional

import typer

from mclrt.runtime.backends import Backend, describe
from mclrt.runtime.errors import EXIT_INCOMPLETE, EXIT_INTERRUPTED, OutputWriteError, UserError
from mclrt.runtime.fsutil import check_output_location
from mclrt.runtime.model_dir import load_model_dir
from mclrt.runtime.pipeline import TranslationPipeline
from mclrt.runtime.inputs.fit import Fit, check_keep_aspect, describe_fit, output_size, placement
from mclrt.runtime.inputs.preprocess import load_exemplar
from mclrt.runtime.runners import RunnerError
from mclrt.runtime.threads import cap_threads
from mclrt.runtime.video.extract import condition_maker
from mclrt.runtime.video.ledger import Failure, FrameLedger
from mclrt.runtime.video.report import VideoReport
from mclrt.runtime.video.sinks import MAX_VIDEO_FPS, MIN_VIDEO_FPS, STDOUT, RestoringSink, check_output, open_sink
from mclrt.runtime.video.sources import open_source, parse_size
from mclrt.runtime.video.stream import FrameStream, StreamSettings, run_stream

DEFAULT_FPS = 25.0


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
    threads: int = typer.Option(0, "--threads", min=0, help="CPU threads per graph (0: one per core)."),
    fit: Fit = typer.Option(Fit.crop, "--fit", help="Frames of another aspect ratio than the model's: crop (centre), pad, or stretch."),
    keep_aspect: bool = typer.Option(
        False, "--keep-aspect", help="Write frames at the source's aspect ratio (the first frame's; with --fit pad or stretch)."
    ),
) -> None:
    """Translate a video stream frame by frame in the style of one exemplar (encoded once)."""
    from rich.console import Console

    from mclrt.runtime.jetson import telemetry

    console = Console(stderr=True, highlight=False, soft_wrap=True)
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


def run_video(
    *,
    model_path: Path,
    source_spec: str,
    exemplar_path: Path,
    out: str,
    extract: str | None = None,
    backend: Backend = Backend.auto,
    settings: StreamSettings = StreamSettings(),
    fps: float | None = None,
    size: str | None = None,
    overwrite: bool = False,
    exemplar_cond: Path | None = None,
    threads: int = 0,
    console=None,
    fit: str = "crop",
    keep_aspect: bool = False,
) -> VideoReport:
    """The work of `mclrt video`, callable from Python (video_bench and tests use it).

    Checks everything it can before creating the output: the output's name, the source (it must
    yield at least one readable frame), the model, the --extract choice and the exemplar.
    """
    from rich.console import Console

    console = console or Console(stderr=True, highlight=False, soft_wrap=True)
    raw_size = parse_size(size) if size is not None else None
    check_keep_aspect(fit, keep_aspect)
    check_output(out, overwrite)
    if out != STDOUT:
        given = [model_path, exemplar_path, *([exemplar_cond] if exemplar_cond else [])]
        given += [source_spec] if Path(source_spec).exists() else []
        check_output_location(out, given)
    with open_source(source_spec, raw_size) as source:
        model = load_model_dir(model_path)
        spec, image_size = model.condition, model.image_size
        how = extract or spec.extract or "none"
        make_condition = condition_maker(spec, image_size, how, fit)
        exemplar = load_exemplar(exemplar_path, spec, image_size, how, exemplar_cond, fit)
        try:
            with TranslationPipeline.open(model, backend, threads) as pipeline:
                start = time.perf_counter()
                encoded = pipeline.encode(exemplar.tensor, exemplar.condition)
                encode_ms = (time.perf_counter() - start) * 1e3
                source.check_not_empty()  # after loading, so the first frame's latency is not the model's load time
                out_fps = fps or source.fps or DEFAULT_FPS
                if settings.keeps_real_time and not source.live:
                    settings = dataclasses.replace(settings, pace_fps=settings.pace_fps or source.fps or out_fps)
                backend_name = describe(pipeline.translator)
                where = placement(source.first_frame_size(), image_size, fit) if keep_aspect else None
                frame_size = output_size(where) if where else image_size
                with open_sink(out, frame_size, out_fps, overwrite) as sink:
                    # Once the sink is open: a frame rate no video file keeps is refused there, in one line.
                    start_line = _start_line(source.name, out, frame_size, how, backend_name, settings)
                    console.print(f"{start_line}; {describe_fit(fit, keep_aspect)}", markup=False)
                    sink = RestoringSink(sink, where) if where else sink
                    ledger = FrameLedger(on_failure=lambda failure: _report_failure(console, failure))
                    stream = FrameStream(
                        source,
                        make_condition,
                        lambda conditions: pipeline.translate(conditions, encoded).images,
                        sink,
                        settings,
                        ledger,
                    )
                    with _progress(console, source.total) as tick, _stop_on_interrupt(stream, console):
                        run_stream(stream, on_tick=lambda: tick(ledger, stream))
                    # Raised inside the sink's block, so an output without a single frame is not kept.
                    if ledger.written == 0 and stream.interrupted:
                        raise KeyboardInterrupt  # Ctrl-C before the first frame was written
                    if ledger.written == 0:
                        raise (OutputWriteError if stream.write_failed else UserError)(
                            f"no frame was written ({ledger.read} read, {ledger.dropped} dropped, {ledger.failed} failed)", out
                        )
        except RunnerError as err:
            raise UserError(str(err), model.path) from err
        return VideoReport.build(
            ledger,
            stream.seconds,
            source=source.name,
            out=out,
            backend=backend_name,
            batch=settings.batch,
            max_queue=settings.max_queue,
            drop_late=settings.drop_late,
            max_latency_ms=settings.max_latency_ms,
            interrupted=stream.interrupted,
            output_fps=None if out == STDOUT else out_fps,
            exemplar_encode_ms=encode_ms,
            notes=source.notes
            + (["a write failed, so reading stopped: the source's frames after the last one read were not translated"] if stream.write_failed else []),
        )


def _start_line(source: str, out: str, image_size, how: str, backend: str, settings: StreamSettings) -> str:
    height, width = image_size
    target = f"raw rgb24 {width}x{height} frames on stdout" if out == STDOUT else out
    conditions = "the frames themselves" if how == "none" else f"--extract {how}"
    late = ", dropping late frames" if settings.drop_late else ""
    if settings.max_latency_ms is not None:
        late += f", dropping frames older than {settings.max_latency_ms:g} ms"
    if settings.keeps_real_time and settings.pace_fps:
        late += f" (reading at {settings.pace_fps:g} fps)"
    return (
        f"translating {source} -> {target} on {backend}: conditions from {conditions}, "
        f"batch {settings.batch}, queues of {settings.max_queue}{late}"
    )


def _report_failure(console, failure: Failure) -> None:
    console.print(f"error: frame {failure.index}: {failure.problem} (skipped)", markup=False)


@contextlib.contextmanager
def _stop_on_interrupt(stream: FrameStream, console) -> Iterator[None]:
    """First Ctrl-C: stop reading and let the frames in flight finish. Second: KeyboardInterrupt (abort)."""
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return

    def stop(signum, frame) -> None:
        stream.request_stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        console.print("interrupted: finishing the frames in flight (Ctrl-C again to abort)", markup=False)

    previous = signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _progress(console, total: int | None):
    """A bar with fps when the frame count is known, else a live line (cameras, stdin); a terminal only."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = [TextColumn("[bold]video[/]")]
    columns += [BarColumn(), MofNCompleteColumn()] if total else [SpinnerColumn(), TextColumn("{task.completed} frames")]
    columns += [TextColumn("{task.fields[rates]}"), TimeElapsedColumn()]
    progress = Progress(*columns, console=console, disable=not console.is_terminal, transient=False)
    task = progress.add_task("video", total=total, rates="")

    def tick(ledger: FrameLedger, stream: FrameStream) -> None:
        seconds = stream.seconds
        rates = f"{ledger.written / seconds:.1f} fps" if seconds > 0 else ""
        if ledger.dropped or ledger.failed:
            rates += f", {ledger.dropped} dropped, {ledger.failed} failed"
        progress.update(task, completed=ledger.written + ledger.dropped + ledger.failed, rates=rates)

    with progress:
        yield tick
