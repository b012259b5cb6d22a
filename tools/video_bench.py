"""The video path against `mclrt bench`, measured in one run, as two ratios side by side.

    python -m mclrt.tools.video_bench --model runtime/models/demo [--frames 100] [--json]

1. `mclrt bench`'s measurement (`run_benchmark`, batch 1; before and after runs 2 and 3) gives the
   per-image latency end to end -- exemplar photo resized and encoded, condition translated, output
   converted -- and the translator-only latency.
2. `mclrt video` (`run_video`, batch 1) translates a generated clip as fast as it can: a package
   photo panned across `--frames` frames of the model's size, MJPG .avi, conditions by
   --extract canny, written to a temporary .avi.
3. `mclrt video --drop-late --max-queue 1` translates `--live-frames` frames of the same clip read
   at a live pace, 0.8x the translator-only rate, so frames do not queue up: read-to-written is what
   a viewer waits. (Queues of one, as a latency-minded live setup uses: if the machine slows down
   mid-run, late frames are dropped rather than queued behind each other.)
Then
- latency ratio = video per-frame latency (median) / bench end_to_end latency (median), once with
  the frame's compute latency from run 2 (decode + canny + translator + encode, queue waits
  excluded) and once with the read-to-written latency of run 3. The exemplar is encoded once per
  clip, so only the translator is paid per frame; the video side also pays decoding, Canny and video
  encoding, which bench does not, so the ratio errs against the video path. Target <= 0.65.
- throughput ratio = frames written per second in run 2 (pipelined, wall clock) / translator-only
  rate (1000 / bench translator median ms). Target >= 0.9: the other stages overlap the translator.
All runs share this process, the model files and the machine state. The bench measurement runs
before and after the video runs and the two are averaged; their disagreement (`bench_drift`) says
how much the machine's load changed meanwhile -- above 20 % the ratios are not to be trusted. Nothing here asserts a time: it prints what it measured and whether the
targets were met; exit code 0 either way. Edge models only: the clip's conditions are made with Canny.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import typer

from mclrt.runtime.backends import Backend
from mclrt.runtime.bench.latency import BenchOptions, drawn_pattern, run_benchmark
from mclrt.runtime.inputs.conditions import package_photos
from mclrt.runtime.errors import UserError
from mclrt.runtime.model_dir import load_model_dir
from mclrt.runtime.jobs.video import run_video
from mclrt.runtime.video.stream import StreamSettings
from mclrt.tools._cli import run_tool

LATENCY_TARGET = 0.65  # video per-frame latency / bench end-to-end per-image latency, at most
THROUGHPUT_TARGET = 0.9  # video fps / translator-only images per second, at least
CLIP_FPS = 25.0
PAN_STEP = 4  # pixels the window moves per frame: every frame differs, neighbours look alike
LIVE_PACE = 0.8  # the live run reads frames at this fraction of the translator-only rate


@dataclass(frozen=True)
class VideoBenchResult:
    model: str
    backend: str
    frames: int
    bench_end_to_end_ms: float  # per image, median, exemplar encoded every time
    bench_cached_exemplar_ms: float  # bench's own cached-exemplar path (translate + uint8), for reference
    bench_translator_ms: float  # per image, median
    bench_drift: float  # |before - after| / mean of the end_to_end medians of the two bench runs
    video_frame_compute_ms: float  # per frame, median, queue waits excluded
    video_frame_latency_ms: float  # per frame, median, read -> written, queue waits included
    video_fps: float
    video_frames_written: int
    live_fps: float  # the pace of the live run
    live_frame_latency_ms: float  # per frame, median, read -> written at the live pace
    live_frames: dict[str, int]  # read / written / dropped / failed in the live run
    latency_ratio: float  # video_frame_compute_ms / bench_end_to_end_ms
    live_latency_ratio: float  # live_frame_latency_ms / bench_end_to_end_ms
    throughput_ratio: float

    @property
    def translator_rate(self) -> float:
        return 1000.0 / self.bench_translator_ms


def panned_clip(path: Path, frames: int, size: tuple[int, int]) -> Path:
    """A package photo (a drawn pattern without the photo packages) panned across `frames` frames."""
    height, width = size
    try:
        photo = package_photos()[0].rgb
    except UserError:
        photo = drawn_pattern(0)
    wide = cv2.resize(photo, (width + PAN_STEP * frames, height), interpolation=cv2.INTER_AREA)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), CLIP_FPS, (width, height))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write MJPG .avi here")
    try:
        for i in range(frames):
            window = np.ascontiguousarray(wide[:, PAN_STEP * i : PAN_STEP * i + width])
            writer.write(cv2.cvtColor(window, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return path


def exemplar_photo(path: Path) -> Path:
    try:
        photo = package_photos()[1].rgb  # chelsea, as bench uses
    except UserError:
        photo = drawn_pattern(1)
    if not cv2.imwrite(str(path), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR)):
        raise RuntimeError(f"could not write {path}")
    return path


def measure(
    model_path: Path,
    frames: int = 100,
    live_frames: int = 20,
    backend: Backend = Backend.auto,
    runs: int = 20,
    warmup: int = 3,
    threads: int = 0,
    max_queue: int = 4,
) -> VideoBenchResult:
    from rich.console import Console

    model = load_model_dir(model_path)
    if model.condition.kind != "edge":
        raise UserError(f"video_bench draws its clip's conditions with Canny, so it needs an edge model (this one is {model.condition.kind})", model_path)
    options = BenchOptions(backend=backend, batch=1, runs=runs, warmup=warmup, threads=threads)
    before = run_benchmark(model_path, options).latency_ms_per_image
    end_to_end, translator = before["end_to_end"].median_ms, before["translator"].median_ms
    live_fps = LIVE_PACE * 1000.0 / translator
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    with tempfile.TemporaryDirectory(prefix="mclrt-video-bench-") as tmp:
        work = Path(tmp)
        exemplar = exemplar_photo(work / "exemplar.png")

        def video(clip: Path, out: str, settings: StreamSettings):
            return run_video(
                model_path=model_path, source_spec=str(clip), exemplar_path=exemplar, out=str(work / out), extract="canny",
                backend=backend, settings=settings, threads=threads, console=console,
            )  # fmt: skip

        fast = video(panned_clip(work / "clip.avi", frames, model.image_size), "fast_out.avi", StreamSettings(1, max_queue))
        # The pace is set on the reader, not written into the clip as its frame rate: a small model's
        # pace is over 1000 fps, which an .avi cannot hold (the muxer drops frames).
        live_clip = panned_clip(work / "live.avi", live_frames, model.image_size)
        live = video(live_clip, "live_out.avi", StreamSettings(1, max_queue=1, drop_late=True, pace_fps=live_fps))
    after = run_benchmark(model_path, options).latency_ms_per_image

    def mean(stage: str) -> float:
        return (before[stage].median_ms + after[stage].median_ms) / 2

    drift = abs(before["end_to_end"].median_ms - after["end_to_end"].median_ms) / mean("end_to_end")
    end_to_end, translator = mean("end_to_end"), mean("translator")
    return VideoBenchResult(
        model=str(model_path),
        backend=fast.backend,
        frames=frames,
        bench_end_to_end_ms=end_to_end,
        bench_cached_exemplar_ms=mean("end_to_end_cached_exemplar"),
        bench_translator_ms=translator,
        bench_drift=drift,
        video_frame_compute_ms=fast.frame_compute.p50_ms,
        video_frame_latency_ms=fast.frame_latency.p50_ms,
        video_fps=fast.fps,
        video_frames_written=fast.written,
        live_fps=live_fps,
        live_frame_latency_ms=live.frame_latency.p50_ms,
        live_frames={"read": live.read, "written": live.written, "dropped": live.dropped, "failed": live.failed},
        latency_ratio=fast.frame_compute.p50_ms / end_to_end,
        live_latency_ratio=live.frame_latency.p50_ms / end_to_end,
        throughput_ratio=fast.fps / (1000.0 / translator),
    )


def print_table(result: VideoBenchResult) -> None:
    from rich.console import Console
    from rich.table import Table

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    table = Table(title=f"{result.model} on {result.backend}, {result.frames}-frame clip, batch 1", title_justify="left")
    for column in ("", "video (exemplar cached)", "mclrt bench", "ratio", "target", ""):
        table.add_column(column, justify="left" if not column or column == "mclrt bench" else "right")
    table.add_row(
        "latency per frame (compute)",
        f"{result.video_frame_compute_ms:.1f} ms",
        f"{result.bench_end_to_end_ms:.1f} ms end to end",
        f"{result.latency_ratio:.2f}",
        f"<= {LATENCY_TARGET}",
        verdict(result.latency_ratio <= LATENCY_TARGET),
    )
    table.add_row(
        f"latency per frame (live, {result.live_fps:.2f} fps)",
        f"{result.live_frame_latency_ms:.1f} ms",
        f"{result.bench_end_to_end_ms:.1f} ms end to end",
        f"{result.live_latency_ratio:.2f}",
        f"<= {LATENCY_TARGET}",
        verdict(result.live_latency_ratio <= LATENCY_TARGET),
    )
    table.add_row(
        "throughput",
        f"{result.video_fps:.2f} fps",
        f"{result.translator_rate:.2f} img/s translator only",
        f"{result.throughput_ratio:.2f}",
        f">= {THROUGHPUT_TARGET}",
        verdict(result.throughput_ratio >= THROUGHPUT_TARGET),
    )
    console = Console()
    console.print(table)
    live = result.live_frames
    console.print(
        f"compute = the frame's own stage times in the full-speed run (median); its read-to-written latency, queue "
        f"waits included, was {result.video_frame_latency_ms:.1f} ms. live = read-to-written at the live pace "
        f"({live['read']} read, {live['written']} written, {live['dropped']} dropped, {live['failed']} failed). "
        f"bench's own cached-exemplar path: {result.bench_cached_exemplar_ms:.1f} ms. bench before vs after the video "
        f"runs differs by {100 * result.bench_drift:.0f} %" + (" -- the load changed, do not trust these ratios" if result.bench_drift > 0.2 else "") + ".",
        highlight=False,
    )


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main_command(
    model: Path = typer.Option(..., "--model", help="Model directory (an edge model: the clip is made with Canny)."),
    frames: int = typer.Option(100, "--frames", min=1, help="Frames in the clip translated at full speed."),
    live_frames: int = typer.Option(20, "--live-frames", min=1, help="Frames translated at a live pace (0.8x the translator rate)."),
    backend: Backend = typer.Option(Backend.auto, "--backend", help="auto: the fastest backend that works here."),
    runs: int = typer.Option(20, "--runs", min=1, help="Timed runs per bench stage."),
    warmup: int = typer.Option(3, "--warmup", min=0, help="Untimed runs before each bench stage."),
    threads: int = typer.Option(0, "--threads", min=0, help="CPU threads per graph (0: one per core)."),
    max_queue: int = typer.Option(4, "--max-queue", min=1, help="Frames each queue of the video pipeline holds."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
) -> None:
    """Per-frame latency and throughput of `mclrt video` as ratios to `mclrt bench`, from one run."""
    from mclrt.runtime.threads import cap_threads

    result = measure(model, frames, live_frames, backend, runs, warmup, cap_threads(threads), max_queue)
    if json_output:
        print(json.dumps({**asdict(result), "latency_target": LATENCY_TARGET, "throughput_target": THROUGHPUT_TARGET}))
    else:
        print_table(result)


def main(argv: list[str] | None = None) -> int:
    return run_tool(app, argv)


if __name__ == "__main__":
    sys.exit(main())
