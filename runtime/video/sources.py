"""Where frames come from: a video file, a camera (V4L2, or a Jetson CSI camera), a folder of frames, or raw RGB frames on stdin.

Every source hands out `Frame`s numbered in source order, RGB uint8. A frame that cannot be read
comes out as a Frame with `problem` set (the pipeline counts it as failed and goes on); the end of
the stream is the end of the iterator. `check_not_empty()` reads ahead to the first good frame, so
an empty or unreadable source is refused before any output is created.

`live` sources (cameras, stdin) deliver frames at their own pace; their per-frame latency starts
when a frame arrives, not when we started waiting for it. Files and folders can be read as fast as
the pipeline takes them, or paced at their frame rate (`--drop-late` does, to behave like a live feed).
"""

from __future__ import annotations

import abc
import collections
import os
import re
import select
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from mclrt.runtime.errors import UserError
from mclrt.runtime.inputs.image_io import IMAGE_SUFFIXES, list_images, load_rgb
from mclrt.runtime.video.frames import Frame

STDIN = "-"
CAMERA_PREFIX = "cam:"
CSI_PREFIX = "csi:"  # a Jetson CSI camera through libargus (nvarguscamerasrc)
CSI_DEFAULT_SIZE = (1280, 720)
CSI_FPS = 30
# A decode failure is a corrupt frame only if a good frame follows within this many reads; otherwise
# the stream has ended (some containers only estimate their frame count, so it cannot decide).
MAX_CONSECUTIVE_BAD_FRAMES = 64
MAX_SIDE = 16384  # larger raw frames are surely a typo in --size
_STDIN_POLL_SECONDS = 0.2


def parse_size(text: str) -> tuple[int, int]:
    """'WIDTHxHEIGHT' -> (width, height)."""
    parts = text.lower().split("x")
    if len(parts) == 2 and all(p.strip().isdigit() for p in parts):
        width, height = (int(p) for p in parts)
        if 0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE:
            return width, height
    raise UserError(f"must be WIDTHxHEIGHT with sides 1..{MAX_SIDE}, e.g. 128x128; got {text!r}", "--size")


class FrameSource(abc.ABC):
    """A stream of frames. Iterate with `frames(stop)`; `close()` (or `with`) releases the device or file."""

    def __init__(self, name: str, fps: float | None = None, total: int | None = None, live: bool = False):
        self.name = name  # for messages: a path, "cam:0" or "stdin"
        self.fps = fps  # the source's own frame rate, when it has one
        self.total = total  # number of frames, when known up front (progress bar)
        self.live = live
        self.notes: list[str] = []  # things worth telling the user at the end (not failures)
        self._ahead: collections.deque[Frame] = collections.deque()
        self._next_index = 0
        self._stop = threading.Event()

    def check_not_empty(self) -> None:
        """Read ahead to the first readable frame; a source that has none is a UserError."""
        while not any(frame.rgb is not None for frame in self._ahead):
            frame = self._read_next()
            if frame is None:
                bad = len(self._ahead)
                if not bad:
                    raise UserError(self._empty_problem(), self.name)
                # The first frame's own line says why (a damaged file, transparent pixels without --alpha flatten).
                raise UserError(f"none of its {bad} frame(s) could be read; the first: {self._ahead[0].problem}", self.name)
            self._ahead.append(frame)

    def first_frame_size(self) -> tuple[int, int]:
        """(height, width) of the first readable frame (reading ahead to it, as `check_not_empty`)."""
        self.check_not_empty()
        first = next(frame for frame in self._ahead if frame.rgb is not None)
        return first.rgb.shape[:2]

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        """Frames in source order until the source ends or `stop` is set (checked between frames)."""
        self._stop = stop
        while not stop.is_set():
            frame = self._ahead.popleft() if self._ahead else self._read_next()
            if frame is None:
                return
            yield frame

    def _read_next(self) -> Frame | None:
        frame = self._read(self._next_index)
        if frame is not None:
            self._next_index += 1
        return frame

    @abc.abstractmethod
    def _read(self, index: int) -> Frame | None:
        """Frame `index` (possibly a failed one), or None at the end of the stream."""

    def _empty_problem(self) -> str:
        return "has no frames"

    def close(self) -> None:
        """Release the file or device."""

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _decoded(index: int, started: float, bgr: np.ndarray) -> Frame:
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return Frame(index, started, rgb=rgb, seconds={"decode": time.perf_counter() - started})


class VideoFileSource(FrameSource):
    """A video file, decoded by OpenCV (FFmpeg)."""

    def __init__(self, path: Path):
        if not path.exists():
            raise UserError("no such file", path)
        if path.stat().st_size == 0:
            raise UserError("is empty (0 bytes)", path)
        # FFmpeg logs every damaged packet straight to stderr; we report each bad frame ourselves in
        # one line, so quiet it (-8 = AV_LOG_QUIET) unless the user asked for its log.
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        self._capture = cv2.VideoCapture(str(path))
        if not self._capture.isOpened():
            raise UserError("is not a video OpenCV can read (unknown format or codec)", path)
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        super().__init__(str(path), fps=fps if fps > 0 else None, total=count if count > 0 else None)
        self._pending: collections.deque[Frame] = collections.deque()

    def _read(self, index: int) -> Frame | None:
        if self._pending:
            return self._pending.popleft()
        bad: list[float] = []
        while len(bad) < MAX_CONSECUTIVE_BAD_FRAMES:
            started = time.perf_counter()
            ok, bgr = self._capture.read()
            if ok:
                # The frames that failed before this good one were damaged frames in the middle.
                failed = [
                    Frame(index + i, t, problem="could not be decoded (corrupt or truncated data)")
                    for i, t in enumerate(bad)
                ]
                self._pending.extend(failed[1:] + [_decoded(index + len(bad), started, bgr)])
                return failed[0] if failed else self._pending.popleft()
            bad.append(started)
        if bad and self.total is not None and index < self.total:
            # OpenCV cannot tell a damaged tail from an overestimated frame count; say so, count nothing.
            self.notes.append(f"{self.name}: decoding stopped at frame {index} of the {self.total} the container announces")
        return None

    def close(self) -> None:
        self._capture.release()


class CameraSource(FrameSource):
    """A camera by index (`cam:0`), through OpenCV's default backend (V4L2 on Linux)."""

    def __init__(self, index: int, size: tuple[int, int] | None = None):
        name = f"{CAMERA_PREFIX}{index}"
        previous = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # a missing camera is our one-line error
        try:
            self._capture = cv2.VideoCapture(index)
        finally:
            cv2.utils.logging.setLogLevel(previous)
        if not self._capture.isOpened():
            raise UserError("no camera with this index (or it is in use by another program)", name)
        if size is not None:
            # A request: the driver picks the nearest mode it has. Frames are resized to the model anyway.
            self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        super().__init__(name, fps=fps if fps > 0 else None, live=True)

    def _read(self, index: int) -> Frame | None:
        if not self._capture.grab():  # waits for the camera's next frame
            if index:
                self.notes.append(f"{self.name}: the camera stopped delivering frames")
            return None
        started = time.perf_counter()
        ok, bgr = self._capture.retrieve()
        if not ok:
            return Frame(index, started, problem="the camera delivered a frame that could not be decoded")
        return _decoded(index, started, bgr)

    def _empty_problem(self) -> str:
        return "the camera opened but delivered no frame"

    def close(self) -> None:
        self._capture.release()


def csi_caps(sensor: int, size: tuple[int, int]) -> str:
    return f"nvarguscamerasrc sensor-id={sensor} ! video/x-raw(memory:NVMM),width={size[0]},height={size[1]},framerate={CSI_FPS}/1 ! nvvidconv"


def csi_pipeline(sensor: int, size: tuple[int, int]) -> str:
    """The GStreamer pipeline OpenCV opens for `csi:N`: the ISP's NVMM frames converted to BGR, latest frame only."""
    return f"{csi_caps(sensor, size)} ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! appsink drop=true max-buffers=1"


def csi_pipe_command(sensor: int, size: tuple[int, int]) -> str:
    """The documented alternative without GStreamer in OpenCV: raw RGB frames from gst-launch into `--source -`."""
    caps = csi_caps(sensor, size).replace("video/x-raw(memory:NVMM),", "'video/x-raw(memory:NVMM),").replace("/1 ! nvvidconv", "/1' ! nvvidconv")
    return f"gst-launch-1.0 -q {caps} ! 'video/x-raw,format=BGRx' ! videoconvert ! 'video/x-raw,format=RGB' ! fdsink fd=1 | mclrt video --source - --size {size[0]}x{size[1]} ..."


def opencv_has_gstreamer() -> bool:
    match = re.search(r"GStreamer:\s*(\w+)", cv2.getBuildInformation())
    return bool(match) and match.group(1).upper() == "YES"


class CsiCameraSource(CameraSource):
    """A Jetson CSI camera (`csi:0`): nvarguscamerasrc through OpenCV's GStreamer backend.

    PyPI's OpenCV wheels are built without GStreamer; JetPack's OpenCV (apt, seen through a venv made with
    --system-site-packages) has it. Without it, the refusal names the gst-launch pipe into `--source -`.
    Never run against a camera by this project (no Jetson here).
    """

    def __init__(self, sensor: int, size: tuple[int, int] | None = None):
        name = f"{CSI_PREFIX}{sensor}"
        size = size or CSI_DEFAULT_SIZE
        if not opencv_has_gstreamer():
            raise UserError(
                f"this OpenCV ({cv2.__version__}) has no GStreamer (PyPI's never does; JetPack's does): use it, or pipe the camera in: "
                + csi_pipe_command(sensor, size),
                name,
            )
        self._capture = cv2.VideoCapture(csi_pipeline(sensor, size), cv2.CAP_GSTREAMER)
        if not self._capture.isOpened():
            raise UserError("no CSI camera with this sensor id (is nvargus-daemon running? `gst-launch-1.0 nvarguscamerasrc` says more)", name)
        FrameSource.__init__(self, name, fps=float(CSI_FPS), live=True)

    def _empty_problem(self) -> str:
        return "the CSI camera opened but delivered no frame"


class FolderSource(FrameSource):
    """Image files in a folder (not its subfolders), in name order: number them with leading zeros."""

    def __init__(self, folder: Path, alpha: str | None = None):
        self._alpha = alpha  # None: frames with transparent pixels fail; a colour: flattened onto it
        self._paths = list_images(folder, recursive=False, report_skipped=True)
        if not self._paths:
            raise UserError(f"holds no frames (image files: {', '.join(IMAGE_SUFFIXES)})", folder)
        super().__init__(str(folder), total=len(self._paths))

    def _read(self, index: int) -> Frame | None:
        if index >= len(self._paths):
            return None
        started = time.perf_counter()
        try:
            rgb = load_rgb(self._paths[index], self._alpha)
        except UserError as err:
            return Frame(index, started, problem=str(err))
        return Frame(index, started, rgb=rgb, seconds={"decode": time.perf_counter() - started})


class RawStdinSource(FrameSource):
    """Raw RGB frames (rgb24, width*height*3 bytes each, no header) on stdin, e.g. from ffmpeg.

    Reads wait with select() so that a stop request is seen even while the producer is silent. A short
    read at the end is a truncated frame: counted as failed.
    """

    def __init__(self, size: tuple[int, int], stream=None):
        stream = sys.stdin if stream is None else stream
        if stream is None or stream.isatty():
            raise UserError("--source - reads raw RGB frames from stdin, which is a terminal; pipe frames in", "stdin")
        self._fd = stream.fileno()
        self.width, self.height = size
        self.frame_bytes = self.width * self.height * 3
        super().__init__("stdin", live=True)

    def _read(self, index: int) -> Frame | None:
        chunks: list[bytes] = []
        got = 0
        while got < self.frame_bytes:
            readable, _, _ = select.select([self._fd], [], [], _STDIN_POLL_SECONDS)
            if not readable:
                if self._stop.is_set():  # stopped while the producer is silent: do not wait for it
                    break
                continue
            chunk = os.read(self._fd, self.frame_bytes - got)
            if not chunk:  # end of the stream
                break
            chunks.append(chunk)
            got += len(chunk)
        started = time.perf_counter()
        if got == 0:
            return None
        if got < self.frame_bytes:
            if index == 0 and not self._stop.is_set():
                raise UserError(
                    f"holds {got} bytes, less than one {self.width}x{self.height} RGB frame "
                    f"({self.frame_bytes} bytes): check --size",
                    self.name,
                )
            return Frame(index, started, problem=f"truncated frame: {got} of {self.frame_bytes} bytes")
        rgb = np.frombuffer(b"".join(chunks), np.uint8).reshape(self.height, self.width, 3)
        return Frame(index, started, rgb=rgb, seconds={"decode": time.perf_counter() - started})

    def _empty_problem(self) -> str:
        return "no frames arrived on stdin"


def open_source(spec: str, size: tuple[int, int] | None = None, alpha: str | None = None) -> FrameSource:
    """--source: '-' (raw frames on stdin, needs size), 'cam:N', 'csi:N' (Jetson), a folder of frames, or a video file.

    `alpha` (--alpha flatten --alpha-colour C) is for a folder of frames, the one source whose pictures
    can be transparent: None refuses such frames, a colour flattens them onto it."""
    if spec == STDIN:
        if size is None:
            raise UserError("--source - reads raw RGB frames: give their size with --size WIDTHxHEIGHT", "stdin")
        return RawStdinSource(size)
    if spec.startswith(CAMERA_PREFIX):
        number = spec[len(CAMERA_PREFIX) :]
        if not number.isdigit():
            raise UserError("a camera is cam:N with N a number, e.g. cam:0", spec)
        return CameraSource(int(number), size)
    if spec.startswith(CSI_PREFIX):
        number = spec[len(CSI_PREFIX) :]
        if not number.isdigit():
            raise UserError("a CSI camera is csi:N with N its sensor id, e.g. csi:0", spec)
        return CsiCameraSource(int(number), size)
    path = Path(spec)
    if size is not None:
        raise UserError("--size is for raw frames on stdin (--source -) and cameras only", "--size")
    if path.is_dir():
        return FolderSource(path, alpha)
    return VideoFileSource(path)
