"""Where translated frames go: a video file, a folder of PNG frames, or raw RGB frames on stdout.

- A video file is written by OpenCV under a temporary name beside the target (same extension, so
  OpenCV picks the same container) and renamed when the stream ends -- also after Ctrl-C, so the
  frames written so far form a file that plays. On an error the temporary file is removed.
  OpenCV's writer reports nothing when a frame fails to reach the disk (full, over a size limit), so
  the sink refuses to go on once the file system has no free space left, and the finished file is
  read back: if it holds fewer frames than were written, it is removed and the run fails
  (`OutputWriteError`) -- a video never silently holds fewer frames than the report says.
  The codec follows the extension: .mp4/.m4v/.mov get MPEG-4 Part 2 (mp4v), .avi/.mkv get MJPG --
  the encoders every opencv-python wheel carries (H.264 is not among them).
- A folder gets `frame_<source index, 6 digits>.png`, each written atomically. Numbers follow the
  source, so the gaps show which frames were dropped or failed (ffmpeg reads such a folder with
  `-pattern_type glob -i 'DIR/frame_*.png'`).
- `-` writes rgb24 frames of the model's size (with --keep-aspect: of `fit.output_size`), back to back, to stdout (for ffmpeg or GStreamer).
Nothing existing is replaced unless `overwrite`; that check runs before any work.
"""

from __future__ import annotations

import abc
import contextlib
import os
import sys
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from mclrt.runtime.errors import OutputWriteError, UserError
from mclrt.runtime.fsutil import atomic_path
from mclrt.runtime.image_out import write_png
from mclrt.runtime.inputs.fit import Placement, restore_aspect

STDOUT = "-"
VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}
FRAME_PATTERN = "frame_{index:06d}.png"
# The frame rates OpenCV's FFmpeg writer stores faithfully in every container above. Outside them it
# fails to open (below 0.01) or -- worse -- opens, and the AVI muxer silently discards frames whose
# timestamps collide (above 1000 fps: 6 frames in, 4 in the file), so a video's frame count would
# no longer match what was written.
MIN_VIDEO_FPS, MAX_VIDEO_FPS = 0.01, 1000.0


class FrameSink(abc.ABC):
    def __init__(self, name: str):
        self.name = name
        self.written = 0

    def write(self, rgb: np.ndarray, index: int) -> None:
        """Write one RGB uint8 [H, W, 3] frame; `index` is its position in the source."""
        self._write(rgb, index)
        self.written += 1

    @abc.abstractmethod
    def _write(self, rgb: np.ndarray, index: int) -> None: ...


class RestoringSink(FrameSink):
    """Puts each frame back at the source's aspect ratio (`--keep-aspect`) before `inner` writes it."""

    def __init__(self, inner: FrameSink, where: Placement):
        super().__init__(inner.name)
        self.inner, self.where = inner, where

    def _write(self, rgb: np.ndarray, index: int) -> None:
        self.inner.write(restore_aspect(rgb, self.where), index)


class VideoFileSink(FrameSink):
    def __init__(self, writer: cv2.VideoWriter, name: str, folder: Path):
        super().__init__(name)
        self._writer = writer
        self._folder = folder

    def _write(self, rgb: np.ndarray, index: int) -> None:
        if _free_bytes(self._folder) == 0:  # the writer would take the frame and lose it
            raise OutputWriteError("cannot be written: the file system is full", self.name)
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


class FolderSink(FrameSink):
    def __init__(self, folder: Path, overwrite: bool):
        super().__init__(str(folder))
        self._folder = folder
        self._overwrite = overwrite

    def _write(self, rgb: np.ndarray, index: int) -> None:
        write_png(self._folder / FRAME_PATTERN.format(index=index), rgb, overwrite=self._overwrite)


class RawStdoutSink(FrameSink):
    def __init__(self, stream):
        super().__init__("stdout")
        self._stream = stream

    def _write(self, rgb: np.ndarray, index: int) -> None:
        try:
            self._stream.write(np.ascontiguousarray(rgb).tobytes())
            self._stream.flush()  # the next program in the pipe gets each frame as soon as it is ready
        except BrokenPipeError:
            # As Python's docs advise: point stdout at devnull so the interpreter's own flush at exit
            # does not raise a second time.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise UserError("the program reading our stdout closed the pipe", "stdout") from None


def output_kind(spec: str) -> str:
    """'stdout', 'video' or 'folder' for an --out value."""
    if spec == STDOUT:
        return "stdout"
    path = Path(spec)
    if path.suffix.lower() in VIDEO_CODECS:
        return "video"
    if path.is_dir() or not path.suffix:
        return "folder"
    raise UserError(
        f"cannot tell what to write: use a video file ({', '.join(VIDEO_CODECS)}), a folder, or - for stdout", spec
    )


def check_output(spec: str, overwrite: bool) -> None:
    """Refuse before any work, not halfway, when the output exists or cannot be one."""
    kind = output_kind(spec)
    path = Path(spec)
    if kind == "stdout":
        if sys.stdout.isatty():
            raise UserError("--out - writes raw RGB frames to stdout, which is a terminal; pipe them into a program", "stdout")
    elif kind == "video":
        if path.is_dir():
            raise UserError("is a folder, not a video file", path)
        if path.exists() and not overwrite:
            raise UserError("already exists (pass --overwrite to replace it)", path)
    elif path.exists():
        if not path.is_dir():
            raise UserError("exists and is not a folder", path)
        if not overwrite and next(path.glob("frame_*.png"), None) is not None:
            raise UserError("already holds frame_*.png files (pass --overwrite to replace them)", path)


@contextlib.contextmanager
def open_sink(spec: str, size: tuple[int, int], fps: float, overwrite: bool = False) -> Iterator[FrameSink]:
    """A sink for frames of `size` (height, width). Leaving the block normally finalizes the output."""
    kind = output_kind(spec)
    if kind == "stdout":
        yield RawStdoutSink(sys.stdout.buffer)
        return
    path = Path(spec)
    if kind == "folder":
        created = not path.exists()
        path.mkdir(parents=True, exist_ok=True)
        try:
            yield FolderSink(path, overwrite)
        except BaseException:
            if created and next(path.iterdir(), None) is None:
                path.rmdir()  # a failed run leaves no empty folder it made itself; written frames stay
            raise
        return
    if not MIN_VIDEO_FPS <= fps <= MAX_VIDEO_FPS:
        raise UserError(
            f"cannot be written at {fps:g} fps: video files keep {MIN_VIDEO_FPS:g}-{MAX_VIDEO_FPS:g} fps (choose one with --fps)", path
        )
    height, width = size
    with atomic_path(path, overwrite=overwrite) as tmp:
        fourcc = cv2.VideoWriter_fourcc(*VIDEO_CODECS[path.suffix.lower()])
        writer = cv2.VideoWriter(str(tmp), fourcc, float(fps), (width, height))
        if not writer.isOpened():
            raise UserError(f"OpenCV cannot write {path.suffix} video here (codec {VIDEO_CODECS[path.suffix.lower()]})", path)
        sink = VideoFileSink(writer, str(path), tmp.parent)
        try:
            yield sink
        finally:
            writer.release()  # writes the container's index: without it the file does not play
        _check_frames_in_file(tmp, sink.written, path)


def count_decodable_frames(path: str | os.PathLike) -> int:
    """Frames OpenCV can read back from a video file, counted by demuxing and decoding each one.

    Not CAP_PROP_FRAME_COUNT: an AVI whose writer ran out of space still announces every frame in
    its header (measured: 60 announced, 18 readable).
    """
    capture = cv2.VideoCapture(str(path))
    try:
        count = 0
        while capture.isOpened() and capture.grab():
            count += 1
        return count
    finally:
        capture.release()


def _check_frames_in_file(tmp: Path, written: int, path: Path) -> None:
    held = count_decodable_frames(tmp)
    if held != written:
        why = "the file system is full" if _free_bytes(tmp.parent) == 0 else "the video writer failed"
        raise OutputWriteError(
            f"only {held} of the {written} frames given to the video writer are in the file ({why}); the damaged file was removed", path
        )


def _free_bytes(folder: Path) -> int | None:
    try:
        stats = os.statvfs(folder)
    except (AttributeError, OSError):  # no statvfs on Windows
        return None
    # root may also fill the blocks ext4 reserves for it (f_bfree); everyone else stops at f_bavail
    blocks = stats.f_bfree if hasattr(os, "geteuid") and os.geteuid() == 0 else stats.f_bavail
    return blocks * stats.f_frsize
