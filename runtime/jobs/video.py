"""The work of `mclrt video`: a frame source -> translated frames in a sink, through the Python API.

The exemplar is encoded once by the `Translator` (runtime/api.py); each frame (or batch of frames)
runs only the translator, in the streaming pipeline of runtime/video/ (reading, condition making,
translating and writing overlap; every frame is accounted for by the ledger). `mclrt video` and the
video benchmark (tools/video_bench.py) call `run_video`. No torch here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
import time
from pathlib import Path
from typing import Iterator

from mclrt.runtime.api import Translator
from mclrt.runtime.model_dir import load_model_dir
from mclrt.runtime.errors import OutputWriteError, UserError
from mclrt.runtime.fsutil import check_output_location
from mclrt.runtime.inputs.fit import check_keep_aspect, describe_fit, output_size, placement
from mclrt.runtime.video.extract import condition_maker
from mclrt.runtime.video.ledger import Failure, FrameLedger
from mclrt.runtime.video.report import VideoReport
from mclrt.runtime.video.sinks import STDOUT, RestoringSink, check_output, open_sink
from mclrt.runtime.video.sources import open_source, parse_size
from mclrt.runtime.video.stream import FrameStream, StreamSettings, run_stream

DEFAULT_FPS = 25.0


def run_video(
    *,
    model_path: Path,
    source_spec: str,
    exemplar_path: Path,
    out: str,
    extract: str | None = None,
    backend: str = "auto",
    settings: StreamSettings = StreamSettings(),
    fps: float | None = None,
    size: str | None = None,
    overwrite: bool = False,
    exemplar_cond: Path | None = None,
    threads: int = 0,
    console=None,
    fit: str = "crop",
    keep_aspect: bool = False,
    invert: str = "auto",
    alpha: str | None = None,
) -> VideoReport:
    """The work of `mclrt video`, callable from Python (video_bench and tests use it).

    Checks everything it can before creating the output: the output's name, the source (it must
    yield at least one readable frame), the model, the --extract choice and the exemplar. `alpha`: None
    refuses pictures with transparent pixels (frames of a folder, the exemplar), a colour flattens them.
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
    with open_source(source_spec, raw_size, alpha) as source:
        model = load_model_dir(model_path)
        spec, image_size = model.condition, model.image_size
        how = extract or spec.extract or "none"
        make_condition = condition_maker(spec, image_size, how, fit, invert)
        translator = Translator(model, backend, threads=threads, extract=how, fit=fit, invert=invert, alpha=alpha)
        with translator:
            start = time.perf_counter()
            style = translator.encode(exemplar_path, exemplar_cond)
            encode_ms = (time.perf_counter() - start) * 1e3
            source.check_not_empty()  # after loading, so the first frame's latency is not the model's load time
            out_fps = fps or source.fps or DEFAULT_FPS
            if settings.keeps_real_time and not source.live:
                settings = dataclasses.replace(settings, pace_fps=settings.pace_fps or source.fps or out_fps)
            backend_name = translator.backend
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
                    lambda conditions: translator.translate_maps(conditions, style)[0],
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
