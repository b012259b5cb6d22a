"""`--source csi:N`: a Jetson CSI camera through OpenCV's GStreamer backend, or one clear line naming the
gst-launch pipe into `--source -` where OpenCV has no GStreamer (PyPI's wheels, this machine)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mclrt.runtime.errors import UserError
from mclrt.runtime.video import sources

DEMO = Path(__file__).resolve().parent.parent / "runtime" / "models" / "demo"


def test_csi_pipeline_names_the_sensor_and_mode():
    pipeline = sources.csi_pipeline(1, (1920, 1080))
    assert pipeline.startswith("nvarguscamerasrc sensor-id=1 ! video/x-raw(memory:NVMM),width=1920,height=1080,framerate=30/1 ! nvvidconv")
    assert pipeline.endswith("video/x-raw,format=BGR ! appsink drop=true max-buffers=1")  # latest frame, no backlog
    command = sources.csi_pipe_command(0, (1280, 720))
    assert "'video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1'" in command  # shell-quoted caps
    assert command.endswith("fdsink fd=1 | mclrt video --source - --size 1280x720 ...")


def test_csi_source_spec_errors():
    with pytest.raises(UserError, match="csi:N with N its sensor id"):
        sources.open_source("csi:front")


@pytest.mark.skipif(sources.opencv_has_gstreamer(), reason="this OpenCV has GStreamer: csi:0 would look for a camera")
def test_csi_without_gstreamer_is_one_line_pointing_at_the_pipe(tmp_path):
    with pytest.raises(UserError) as refused:
        sources.open_source("csi:0")
    assert refused.value.path == "csi:0" and "has no GStreamer" in refused.value.problem and "gst-launch-1.0 -q nvarguscamerasrc sensor-id=0" in refused.value.problem
    exemplar = next((DEMO.parent.parent / "data").rglob("*.png"), None) or DEMO / "results.png"
    argv = [sys.executable, "-m", "mclrt.runtime.cli", "video", "--model", str(DEMO), "--source", "csi:0", "--exemplar", str(exemplar),
            "--out", str(tmp_path / "out.mp4"), "--backend", "ort"]
    done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "MCLRT_CACHE_DIR": str(tmp_path / "cache")}, timeout=300)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: csi:0: this OpenCV") and "--source -" in lines[0]
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.skipif(
    shutil.which("gst-launch-1.0") is None or shutil.which("gst-inspect-1.0") is None
    or subprocess.run(["gst-inspect-1.0", "rawvideoparse"], capture_output=True).returncode != 0,
    reason="GStreamer (gstreamer1.0-tools, gstreamer1.0-plugins-base) is not installed",
)
def test_gstreamer_pipes_in_and_out_of_mclrt_video(tmp_path):
    """The camera pipe and encode pipe of docs/jetson.md, with the Jetson-only elements swapped for portable ones:
    videotestsrc for nvarguscamerasrc + nvvidconv upstream; downstream up to the encoder (nvv4l2h264enc is device only)."""
    exemplar = DEMO / "results.png"
    out = tmp_path / "out.i420"
    pipeline = (
        "gst-launch-1.0 -q videotestsrc num-buffers=4 pattern=ball ! 'video/x-raw,width=160,height=120,framerate=30/1' "
        "! videoconvert ! 'video/x-raw,format=RGB' ! fdsink fd=1 "
        f"| {sys.executable} -m mclrt.runtime.cli video --model {DEMO} --source - --size 160x120 --exemplar {exemplar} --extract none --backend ort --out - --json "
        f"2> {tmp_path / 'report.txt'} "
        "| gst-launch-1.0 -q fdsrc fd=0 ! rawvideoparse width=128 height=128 format=rgb framerate=30/1 ! videoconvert ! 'video/x-raw,format=I420' "
        f"! filesink location={out}"
    )
    done = subprocess.run(["bash", "-o", "pipefail", "-c", pipeline], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MCLRT_CACHE_DIR": str(tmp_path / "cache")})
    assert done.returncode == 0, (done.stderr, (tmp_path / "report.txt").read_text()[-2000:])
    report = json.loads((tmp_path / "report.txt").read_text().strip().splitlines()[-1])
    assert report["frames"] == {"read": 4, "written": 4, "dropped": 0, "failed": 0}
    assert out.stat().st_size == 4 * 128 * 128 * 3 // 2  # four 128x128 frames, I420
