"""`mclrt video` on generated clips and real tiny model directories: exact frame accounting with and
without --drop-late, bounded queues, corrupt frames in the middle, empty and bad sources, a raw
stdin -> stdout pipe, and Ctrl-C leaving a playable video.

The clips are a package photo panned across the frame, written by OpenCV (MJPG .avi). The models are
the contract-exact tiny directories of `model_dir_fixtures`: 32x32 (fast), and 128x128 whose
translator (a 1024x1024 correspondence) takes ~10 ms a frame -- slow next to decoding a 64x64 JPEG,
which is what makes queues fill and late frames drop, with no sleep added anywhere.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from mclrt.runtime.cli import main
from mclrt.runtime.image_out import to_uint8_rgb
from mclrt.runtime.model_dir import load_model_dir
from mclrt.runtime.pipeline import TranslationPipeline
from mclrt.runtime.inputs.preprocess import condition_from_photo, load_exemplar
from mclrt.runtime.video.extract import condition_maker
from mclrt.runtime.video.ledger import STAGES, FrameLedger
from mclrt.runtime.video.sinks import open_sink
from mclrt.runtime.video.sources import open_source
from mclrt.runtime.video.stream import FrameStream, StreamSettings, run_stream
from model_dir_fixtures import TinySpec, build_tiny_model_dir, write_photo

SLOW_SPEC = TinySpec(image_size=128)


def panned_frames(count: int, size: tuple[int, int] = (64, 64), photo: int = 0) -> list[np.ndarray]:
    """RGB frames of a package photo seen through a window moving right by 4 px a frame."""
    from mclrt.runtime.inputs.conditions import package_photos

    width, height = size
    wide = cv2.resize(package_photos()[photo].rgb, (width + 4 * count, height), interpolation=cv2.INTER_AREA)
    return [np.ascontiguousarray(wide[:, 4 * i : 4 * i + width]) for i in range(count)]


def write_clip(path: Path, frames: list[np.ndarray], fps: float = 25.0, fourcc: str = "MJPG") -> Path:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    assert writer.isOpened()
    for rgb in frames:
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def count_video_frames(path: Path) -> tuple[int, tuple[int, int]]:
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), path
    count, shape = 0, (0, 0)
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        count, shape = count + 1, bgr.shape[:2]
    capture.release()
    return count, shape


def run_video_cli(capsys, *args) -> tuple[int, dict | None, str]:
    """`mclrt video ... --json` in this process: exit code, the JSON report (stdout), stderr."""
    code = main(["video", *map(str, args), "--json"])
    captured = capsys.readouterr()
    report = json.loads(captured.out) if code in (0, 3, 130) and captured.out else None
    return code, report, captured.err


def assert_balanced(report: dict) -> None:
    frames = report["frames"]
    assert frames["read"] == frames["written"] + frames["dropped"] + frames["failed"]


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("video")
    build_tiny_model_dir(root / "tiny")
    build_tiny_model_dir(root / "slow", SLOW_SPEC)
    write_photo(root / "exemplar.png", index=1)
    write_clip(root / "clip.avi", panned_frames(24))
    # 1000 fps: with --drop-late the decoder reads a frame a millisecond, ten times faster than the
    # slow model translates, so late frames must be dropped.
    write_clip(root / "fast_clip.avi", panned_frames(40), fps=1000.0)
    return root


# --- accounting -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 4])
def test_every_frame_is_written_and_timed(ws, tmp_path, capsys, batch):
    out = tmp_path / "out.avi"
    code, report, err = run_video_cli(
        capsys, "--model", ws / "tiny", "--source", ws / "clip.avi", "--exemplar", ws / "exemplar.png", "--out", out, "--batch", batch
    )
    assert code == 0, err
    assert report["frames"] == {"read": 24, "written": 24, "dropped": 0, "failed": 0}
    assert report["interrupted"] is False and report["output_fps"] == 25.0
    assert count_video_frames(out) == (24, (32, 32))
    assert not list(tmp_path.glob(".out.avi.*"))  # the temporary file was renamed, not left behind
    # per-frame latency: one entry per written frame, in source order, queue waits >= own work >= 0
    per_frame = report["per_frame"]
    assert [f["index"] for f in per_frame] == list(range(24))
    assert all(f["latency_ms"] >= f["compute_ms"] > 0 for f in per_frame)
    assert set(report["stages"]) == set(STAGES)
    assert report["stages"]["infer"]["count"] == -(-24 // batch)  # one translator run per batch
    assert all(report["stages"][s]["count"] == 24 for s in ("decode", "extract", "encode"))
    assert all(0 < s["mean_ms"] <= s["max_ms"] and s["p95_ms"] <= s["max_ms"] for s in report["stages"].values())
    assert report["fps"] > 0 and report["frame_latency"]["count"] == 24


def test_drop_late_drops_only_when_late_and_counts_every_drop(ws, tmp_path, capsys):
    args = ["--model", ws / "slow", "--source", ws / "fast_clip.avi", "--exemplar", ws / "exemplar.png", "--max-queue", "1"]
    code, kept, err = run_video_cli(capsys, *args, "--out", tmp_path / "kept")
    assert code == 0, err
    assert kept["frames"] == {"read": 40, "written": 40, "dropped": 0, "failed": 0}  # back-pressure, no loss

    code, late, err = run_video_cli(capsys, *args, "--out", tmp_path / "late", "--drop-late")
    assert code == 0, err
    assert_balanced(late)
    frames = late["frames"]
    assert frames["read"] == 40 and frames["failed"] == 0
    assert frames["dropped"] > 0 and frames["written"] >= 1
    written = sorted(int(p.stem.split("_")[1]) for p in (tmp_path / "late").glob("frame_*.png"))
    assert written == [f["index"] for f in late["per_frame"]]  # files named by source index; gaps are the drops
    assert len(written) == frames["written"]
    assert written[-1] == 39  # the newest frame always gets in: the last one read is never the one dropped


def test_max_latency_drops_stale_frames_but_always_translates_the_newest(ws, tmp_path, capsys):
    # fast_clip is read at its 1000 fps; the slow model takes ~10 ms a frame, so frames queue up and age.
    args = ["--model", ws / "slow", "--source", ws / "fast_clip.avi", "--exemplar", ws / "exemplar.png", "--max-queue", "8"]
    code, roomy, err = run_video_cli(capsys, *args, "--out", tmp_path / "roomy", "--max-latency-ms", "600000")
    assert code == 0, err
    assert roomy["frames"] == {"read": 40, "written": 40, "dropped": 0, "failed": 0}  # nothing is that old
    assert roomy["max_latency_ms"] == 600000

    code, tight, err = run_video_cli(capsys, *args, "--out", tmp_path / "tight", "--max-latency-ms", "1")
    assert code == 0, err
    assert_balanced(tight)
    frames = tight["frames"]
    assert frames["read"] == 40 and frames["failed"] == 0 and frames["dropped"] > 0 and frames["written"] >= 1
    written = sorted(int(p.stem.split("_")[1]) for p in (tmp_path / "tight").glob("frame_*.png"))
    assert written == [f["index"] for f in tight["per_frame"]] and written[-1] == 39  # the newest is never dropped

    code, _, err = run_video_cli(capsys, *args, "--out", tmp_path / "bad", "--max-latency-ms", "0")
    assert code == 2 and "--max-latency-ms" in err and not (tmp_path / "bad").exists()


def test_the_end_marker_is_no_newer_frame():
    # --max-latency-ms keeps a stale frame when nothing newer waits; the marker closing a stream is not a frame.
    import threading

    from mclrt.runtime.video.channel import END, Channel

    channel = Channel(4, threading.Event(), "test")
    channel.put("frame 38")
    channel.put("frame 39")
    channel.close()
    assert channel.qsize() == 3 and channel.items_waiting() == 2
    assert channel.get() == "frame 38" and channel.items_waiting() == 1
    assert channel.get() == "frame 39" and channel.items_waiting() == 0
    assert channel.get() is END


def test_queues_bound_the_frames_in_flight(ws, tmp_path):
    """A fast decoder in front of a slow translator may run ahead only as far as the queues allow."""
    model = load_model_dir(ws / "slow")
    settings = StreamSettings(batch=2, max_queue=1)
    make_condition = condition_maker(model.condition, model.image_size, "canny")
    exemplar = load_exemplar(ws / "exemplar.png", model.condition, model.image_size)
    ledger = FrameLedger()
    most_in_flight = 0
    with open_source(str(ws / "fast_clip.avi")) as source, TranslationPipeline.open(model) as pipeline:
        encoded = pipeline.encode(exemplar.tensor)
        with open_sink(str(tmp_path / "out.avi"), model.image_size, 25.0) as sink:
            stream = FrameStream(
                source, make_condition, lambda c: pipeline.translate(c, encoded).images, sink, settings, ledger
            )

            def sample() -> None:
                nonlocal most_in_flight
                most_in_flight = max(most_in_flight, ledger.in_flight)

            run_stream(stream, on_tick=sample, tick_seconds=0.002)
    assert ledger.written == 40 and ledger.dropped == 0
    # 3 queues of 1, one frame in the hands of decode, extract and encode each, and a batch of 2
    assert 2 <= most_in_flight <= 3 * settings.max_queue + 3 + settings.batch


# --- robustness ---------------------------------------------------------------------------------------


def test_corrupt_png_in_a_folder_is_reported_and_skipped(ws, tmp_path, capsys):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, rgb in enumerate(panned_frames(10)):
        cv2.imwrite(str(frames / f"{i:04d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    damaged = frames / "0004.png"
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    out = tmp_path / "out"
    code, report, err = run_video_cli(
        capsys, "--model", ws / "tiny", "--source", frames, "--exemplar", ws / "exemplar.png", "--out", out
    )
    assert code == 3, err  # not every frame made it (docs/troubleshooting.md, "Exit codes")
    assert report["frames"] == {"read": 10, "written": 9, "dropped": 0, "failed": 1}
    assert report["failures"] == [
        {"index": 4, "stage": "decode", "problem": f"{damaged}: is a truncated or damaged PNG (its chunks stop before IEND)"}
    ]
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert lines == [f"error: frame 4: {damaged}: is a truncated or damaged PNG (its chunks stop before IEND) (skipped)"]
    assert sorted(p.name for p in out.iterdir()) == [f"frame_{i:06d}.png" for i in range(10) if i != 4]


def test_corrupt_frame_inside_a_video_is_reported_and_the_stream_goes_on(ws, tmp_path):
    clip = write_clip(tmp_path / "clip.avi", panned_frames(20))
    data = bytearray(clip.read_bytes())
    movi = data.index(b"movi")  # the frames follow the 'movi' list, one '00dc' chunk each, in order
    chunks = [i for i in range(movi, len(data)) if data[i : i + 4] == b"00dc"][:20]
    start = chunks[10] + 8
    length = int.from_bytes(data[chunks[10] + 4 : start], "little")
    assert data[start : start + 2] == b"\xff\xd8"  # a JPEG starts here
    data[start : start + length] = bytes(length)  # frame 10's JPEG bytes wiped out
    clip.write_bytes(bytes(data))
    out = tmp_path / "out.avi"
    # In a fresh process, as a user runs it: FFmpeg's own log level is set before its first use.
    done = subprocess.run(
        [sys.executable, "-m", "mclrt.runtime.cli", "video", "--model", str(ws / "tiny"), "--source", str(clip),
         "--exemplar", str(ws / "exemplar.png"), "--out", str(out), "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr  # not every frame made it
    report = json.loads(done.stdout)
    assert report["frames"] == {"read": 20, "written": 19, "dropped": 0, "failed": 1}
    assert [(f["index"], f["stage"]) for f in report["failures"]] == [(10, "decode")]
    assert [f["index"] for f in report["per_frame"]] == [i for i in range(20) if i != 10]
    # stderr: the start line and exactly one line for the bad frame (FFmpeg's own log is quieted)
    assert done.stderr.splitlines()[1:] == ["error: frame 10: could not be decoded (corrupt or truncated data) (skipped)"]
    assert count_video_frames(out)[0] == 19


def _empty_video(path: Path) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 64))
    writer.release()  # a valid container holding zero frames
    return path


BAD_SOURCES = {
    "zero-frame video": (lambda tmp: _empty_video(tmp / "empty.avi"), [], "has no frames"),
    "zero-byte file": (lambda tmp: (tmp / "zero.avi").write_bytes(b"") or tmp / "zero.avi", [], "is empty (0 bytes)"),
    "not a video": (lambda tmp: (tmp / "notes.avi").write_text("hello") and tmp / "notes.avi", [], "is not a video OpenCV can read"),
    "missing file": (lambda tmp: tmp / "missing.avi", [], "no such file"),
    "empty folder": (lambda tmp: (tmp / "nothing").mkdir() or tmp / "nothing", [], "holds no frames"),
    "missing camera": (lambda tmp: "cam:63", [], "no camera with this index"),
    "bad camera": (lambda tmp: "cam:front", [], "a camera is cam:N"),
    "stdin without size": (lambda tmp: "-", [], "give their size with --size"),
    "bad size": (lambda tmp: "-", ["--size", "128by128"], "--size: must be WIDTHxHEIGHT"),
    "size for a file": (lambda tmp: _empty_video(tmp / "e.avi"), ["--size", "64x64"], "--size is for raw frames"),
}


@pytest.mark.parametrize("case", sorted(BAD_SOURCES))
def test_bad_source_is_one_line_exit_2_and_no_output(ws, tmp_path, capsys, case):
    make, extra, problem = BAD_SOURCES[case]
    source = make(tmp_path)
    out = tmp_path / "out.avi"
    code = main(["video", "--model", str(ws / "tiny"), "--source", str(source), "--exemplar", str(ws / "exemplar.png"), "--out", str(out), *extra])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("error: ") and problem in captured.err, captured.err
    assert not any(p.name.startswith((".out", "out")) for p in tmp_path.iterdir())


def test_zero_frame_file_from_the_command_line(ws, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mclrt.runtime.cli", "video", "--model", str(ws / "tiny"), "--source", str(_empty_video(tmp_path / "e.avi")),
         "--exemplar", str(ws / "exemplar.png"), "--out", str(tmp_path / "out.mp4")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == f"error: {tmp_path / 'e.avi'}: has no frames\n"
    assert not (tmp_path / "out.mp4").exists()


def test_existing_output_is_kept_unless_overwrite(ws, tmp_path, capsys):
    out = tmp_path / "out.avi"
    out.write_bytes(b"mine")
    args = ["--model", ws / "tiny", "--source", ws / "clip.avi", "--exemplar", ws / "exemplar.png", "--out", out]
    code, _, err = run_video_cli(capsys, *args)
    assert code == 2 and "already exists (pass --overwrite to replace it)" in err
    assert out.read_bytes() == b"mine"
    code, report, err = run_video_cli(capsys, *args, "--overwrite")
    assert code == 0, err
    assert count_video_frames(out)[0] == report["frames"]["written"] == 24


def test_a_frame_rate_an_avi_cannot_hold_is_refused_not_thinned(ws, tmp_path, capsys):
    """Above 1000 fps OpenCV's AVI muxer silently discards frames; the run must refuse, not write fewer."""
    source = write_clip(tmp_path / "fast.mp4", panned_frames(12), fps=2000.0, fourcc="mp4v")  # an .mp4 holds 2000 fps
    out = tmp_path / "out.avi"
    args = ["--model", ws / "tiny", "--source", source, "--exemplar", ws / "exemplar.png", "--out", out]
    code, _, err = run_video_cli(capsys, *args)
    assert code == 2 and err.count("\n") == 1, err
    assert err == f"error: {out}: cannot be written at 2000 fps: video files keep 0.01-1000 fps (choose one with --fps)\n"
    assert list(tmp_path.iterdir()) == [source]
    code, _, err = run_video_cli(capsys, *args, "--fps", "5000")
    assert code == 2 and "--fps" in err and list(tmp_path.iterdir()) == [source]
    code, report, err = run_video_cli(capsys, *args, "--fps", "1000")  # the highest rate, every frame kept
    assert code == 0, err
    assert report["frames"]["written"] == 12 and count_video_frames(out)[0] == 12


# --- pipes and signals --------------------------------------------------------------------------------


def test_raw_frames_stdin_to_stdout(ws, tmp_path):
    """ffmpeg-style rgb24 in and out: every whole frame comes out translated, a short tail is a failed frame."""
    frames = panned_frames(6, size=(48, 40))
    payload = b"".join(f.tobytes() for f in frames) + bytes(100)  # 100 bytes: a truncated seventh frame
    done = subprocess.run(
        [sys.executable, "-m", "mclrt.runtime.cli", "video", "--model", str(ws / "tiny"), "--source", "-", "--size", "48x40",
         "--exemplar", str(ws / "exemplar.png"), "--out", "-", "--extract", "canny", "--json"],
        input=payload, capture_output=True, timeout=120,
    )  # fmt: skip
    stderr = done.stderr.decode()
    assert done.returncode == 3, stderr  # the truncated seventh frame failed
    report = json.loads(stderr.strip().splitlines()[-1])  # with --out - the report is stderr's last line
    assert report["frames"] == {"read": 7, "written": 6, "dropped": 0, "failed": 1}
    assert report["failures"][0]["problem"] == f"truncated frame: 100 of {48 * 40 * 3} bytes"
    assert "error: frame 6: truncated frame" in stderr
    assert len(done.stdout) == 6 * 32 * 32 * 3
    got = np.frombuffer(done.stdout, np.uint8).reshape(6, 32, 32, 3)
    # The same frames through the Python API give the same pixels (the 48x40 frames centre-cropped: --fit crop).
    model = load_model_dir(ws / "tiny")
    exemplar = load_exemplar(ws / "exemplar.png", model.condition, model.image_size, fit="crop")
    with TranslationPipeline.open(model) as pipeline:
        encoded = pipeline.encode(exemplar.tensor)
        for rgb, out in zip(frames, got):
            condition = condition_from_photo(rgb, "canny", model.image_size, fit="crop")
            np.testing.assert_array_equal(out, to_uint8_rgb(pipeline.translate(condition[None], encoded).images[0]))


def test_sigint_finishes_in_flight_frames_and_leaves_a_playable_video(ws, tmp_path):
    clip = write_clip(tmp_path / "long.avi", panned_frames(600, size=(64, 64)))
    out = tmp_path / "out.avi"
    process = subprocess.Popen(
        [sys.executable, "-m", "mclrt.runtime.cli", "video", "--model", str(ws / "slow"), "--source", str(clip),
         "--exemplar", str(ws / "exemplar.png"), "--out", str(out), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        start_line = process.stderr.readline()  # printed just before the stages start
        assert start_line.startswith("translating "), start_line
        time.sleep(0.7)  # ~10 ms a frame: dozens written by now, hundreds still to go
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "interrupted: finishing the frames in flight" in stderr
    report = json.loads(stdout)
    assert report["interrupted"] is True
    assert_balanced(report)
    assert 1 <= report["frames"]["written"] and report["frames"]["read"] < 600
    assert report["frames"]["dropped"] == 0 and report["frames"]["failed"] == 0  # nothing read was lost
    assert count_video_frames(out) == (report["frames"]["written"], (128, 128))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_video_never_imports_torch(ws, tmp_path):
    args = ["video", "--model", str(ws / "tiny"), "--source", str(ws / "clip.avi"), "--exemplar", str(ws / "exemplar.png"), "--out", str(tmp_path / "o.avi")]
    script = (
        "import sys\n"
        "from mclrt.runtime.cli import main\n"
        f"code = main({args!r})\n"
        "loaded = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "assert code == 0 and not loaded, (code, loaded)\n"
        "print('torch-free')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("torch-free")


def test_video_bench_prints_both_ratios_from_one_run(ws):
    """The acceptance tool end to end on the tiny model; its ratios are its own numbers' quotients (no timing asserted)."""
    done = subprocess.run(
        [sys.executable, "-m", "mclrt.tools.video_bench", "--model", str(ws / "tiny"), "--frames", "12", "--live-frames", "6",
         "--runs", "3", "--warmup", "1", "--json"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["frames"] == result["video_frames_written"] == 12
    assert result["live_frames"]["read"] == 6
    assert sum(result["live_frames"][k] for k in ("written", "dropped", "failed")) == 6
    assert result["latency_ratio"] == pytest.approx(result["video_frame_compute_ms"] / result["bench_end_to_end_ms"])
    assert result["live_latency_ratio"] == pytest.approx(result["live_frame_latency_ms"] / result["bench_end_to_end_ms"])
    assert result["throughput_ratio"] == pytest.approx(result["video_fps"] * result["bench_translator_ms"] / 1000.0)
    assert result["live_fps"] > 0 and result["bench_drift"] >= 0
    assert (result["latency_target"], result["throughput_target"]) == (0.65, 0.9)


# --- acceptance: the real exported model ------------------------------------------------------------------

DEMO_MODEL = Path(__file__).resolve().parents[1] / "runtime" / "models" / "demo"


@pytest.fixture
def real_model(request) -> Path:
    """The committed demo model, else the export tests' freshly exported nano model."""
    if (DEMO_MODEL / "mclrt.json").exists():
        return DEMO_MODEL
    try:
        return Path(request.getfixturevalue("nano_model_dir"))
    except pytest.FixtureLookupError:
        pytest.skip("needs runtime/models/demo or the nano_model_dir fixture (tests/conftest.py)")


def test_hundred_frame_clip_on_the_real_model_reports_per_frame_latency(real_model, tmp_path, capsys):
    """The acceptance run: 100 frames, exemplar encoded once; timings are reported, never asserted
    (`python -m mclrt.tools.video_bench` measures the ratios to `mclrt bench`)."""
    model = load_model_dir(real_model)
    height, width = model.image_size
    clip = write_clip(tmp_path / "clip.avi", panned_frames(100, size=(width, height)))
    write_photo(tmp_path / "exemplar.png", index=1, size=max(height, width))
    code, report, err = run_video_cli(
        capsys, "--model", real_model, "--source", clip, "--exemplar", tmp_path / "exemplar.png", "--out", tmp_path / "out.avi", "--extract", "canny"
    )
    assert code == 0, err
    assert report["frames"] == {"read": 100, "written": 100, "dropped": 0, "failed": 0}
    assert [f["index"] for f in report["per_frame"]] == list(range(100))
    assert all(f["latency_ms"] >= f["compute_ms"] > 0 for f in report["per_frame"])
    assert report["stages"]["infer"]["count"] == 100 and report["exemplar_encode_ms"] > 0
    assert count_video_frames(tmp_path / "out.avi") == (100, (height, width))
