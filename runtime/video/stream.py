"""The four stages -- decode, extract, infer, encode -- as threads joined by bounded channels.

    source -> [decode] -> to_extract -> [extract] -> to_infer -> [infer] -> to_encode -> [encode] -> sink

Back-pressure: every channel holds at most `max_queue` frames and a full channel makes its producer
wait, so memory stays bounded whichever stage is slow. `drop_late` changes the two channels in front
of the translator: a producer facing a full channel evicts the *oldest* waiting frame and puts the
new one in (a live stream wants the freshest frame translated); each eviction is counted as dropped.
`max_latency_ms` bounds the age of what gets translated: a frame that has been on its way longer
than that (since its read began) when the translator takes it is dropped and counted, as long as a
newer frame is waiting behind it -- so on a machine too slow for the budget the stream still moves,
translating the freshest frame it has. Frames that made it through the translator are never
dropped. `drop_late` and `max_latency_ms` are the only ways a readable frame is skipped.

Stopping: `request_stop()` (Ctrl-C) makes the decoder stop reading; the stages then finish the
frames in flight and the stream ends normally. `abort()` (an error, a second Ctrl-C) makes every
stage return at once. ONNX Runtime and OpenCV release the GIL while they work, so the stages really
overlap: while the translator runs on frame n, frame n+1 is decoded and its condition drawn.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from mclrt.runtime.errors import OutputWriteError, UserError
from mclrt.runtime.image_out import to_uint8_rgb
from mclrt.runtime.video.channel import END, Aborted, Channel
from mclrt.runtime.video.frames import Frame
from mclrt.runtime.video.ledger import FrameLedger
from mclrt.runtime.video.sinks import FrameSink
from mclrt.runtime.video.sources import FrameSource

# conditions float32 [B, L, H, W] in [0, 1] -> images float32 [B, 3, H, W] in [-1, 1]
Translate = Callable[[np.ndarray], np.ndarray]
ConditionMaker = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class StreamSettings:
    batch: int = 1  # frames per translator run
    max_queue: int = 4  # frames each channel holds
    drop_late: bool = False
    # Read a file or folder at this many frames per second, like a live feed, instead of as fast as
    # the pipeline takes frames. Without pacing, `drop_late` on a file would drop whatever a fast
    # decoder gets ahead of the translator, which says nothing about real-time behaviour.
    pace_fps: float | None = None
    # Drop a frame older than this when the translator takes it, if a newer one waits (None: never).
    max_latency_ms: float | None = None

    def __post_init__(self) -> None:
        if self.batch < 1 or self.max_queue < 1:
            raise ValueError("batch and max_queue must be at least 1")
        if self.max_latency_ms is not None and self.max_latency_ms <= 0:
            raise ValueError("max_latency_ms must be positive")

    @property
    def keeps_real_time(self) -> bool:
        """Either way of dropping frames is on: a file is then read at its frame rate, like a feed."""
        return self.drop_late or self.max_latency_ms is not None


class FrameStream:
    def __init__(
        self,
        source: FrameSource,
        make_condition: ConditionMaker,
        translate: Translate,
        sink: FrameSink,
        settings: StreamSettings,
        ledger: FrameLedger,
    ):
        self.source, self.make_condition, self.translate, self.sink = source, make_condition, translate, sink
        self.settings, self.ledger = settings, ledger
        self._stop = threading.Event()
        self._abort = threading.Event()
        self._to_extract: Channel[Frame] = Channel(settings.max_queue, self._abort, "to_extract")
        self._to_infer: Channel[Frame] = Channel(settings.max_queue, self._abort, "to_infer")
        self._to_encode: Channel[Frame] = Channel(settings.max_queue, self._abort, "to_encode")
        self._errors: list[BaseException] = []
        self._threads = [
            threading.Thread(target=self._guarded, args=(stage,), name=f"mclrt-video-{stage.__name__[1:]}", daemon=True)
            for stage in (self._decode, self._extract, self._infer, self._encode)
        ]
        self.started: float | None = None
        self.finished: float | None = None
        self.write_failed = False  # the sink refused a frame (disk full): the stop was not the user's
        self.interrupted = False  # the user asked to stop (Ctrl-C)

    # --- control (from the main thread) ---------------------------------------------------------------
    def start(self) -> None:
        self.started = time.perf_counter()
        for thread in self._threads:
            thread.start()

    def request_stop(self, by_user: bool = True) -> None:
        """Stop reading; the frames already read still go through (Ctrl-C, or a sink that failed)."""
        self.interrupted = self.interrupted or by_user
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def abort(self) -> None:
        """Make every stage return now; frames in flight are abandoned."""
        self._stop.set()
        self._abort.set()

    def wait(self, timeout: float) -> bool:
        """True once every stage has returned."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    def result(self) -> None:
        """After `wait()` returned True: re-raise the first stage error, else check the frame accounting."""
        if self._errors:
            raise self._errors[0]
        self.ledger.check_balanced()

    @property
    def seconds(self) -> float:
        """Wall time from the start to the last frame written (or until now, while running)."""
        if self.started is None:
            return 0.0
        return (self.finished or time.perf_counter()) - self.started

    # --- the stages (each in its own thread) -------------------------------------------------------------
    def _guarded(self, stage: Callable[[], None]) -> None:
        try:
            stage()
        except Aborted:
            return
        except BaseException as err:  # not swallowed: result() re-raises it in the main thread
            self._errors.append(err)
            self.abort()
        finally:
            if stage == self._encode:
                self.finished = time.perf_counter()

    def _push(self, channel: Channel[Frame], frame: Frame) -> None:
        if not self.settings.drop_late:
            channel.put(frame)
            return
        evicted = channel.offer(frame)
        if evicted is not None:
            self.ledger.count_dropped(evicted)

    def _decode(self) -> None:
        interval = 1.0 / self.settings.pace_fps if self.settings.pace_fps else None
        due = time.perf_counter()
        for frame in self.source.frames(self._stop):
            self.ledger.count_read()
            if frame.problem is not None:
                self.ledger.count_failed(frame.index, "decode", frame.problem)
                continue
            self.ledger.record_stage("decode", frame.seconds["decode"])
            self._push(self._to_extract, frame)
            if interval is not None:
                due += interval
                self._stop.wait(max(0.0, due - time.perf_counter()))  # Ctrl-C ends the wait
        self._to_extract.close()

    def _extract(self) -> None:
        while (frame := self._to_extract.get()) is not END:
            start = time.perf_counter()
            try:
                frame.condition = self.make_condition(frame.rgb)
            except UserError as err:  # e.g. no person in this frame for --extract pose
                self.ledger.count_failed(frame.index, "extract", str(err))
                continue
            frame.rgb = None  # the full-size frame is not needed any more
            frame.seconds["extract"] = time.perf_counter() - start
            self.ledger.record_stage("extract", frame.seconds["extract"])
            self._push(self._to_infer, frame)
        self._to_infer.close()

    def _drop_stale(self, batch: list[Frame]) -> list[Frame]:
        """The frames of `batch` young enough to translate (`max_latency_ms`); the newest frame in
        sight -- the batch's last when nothing waits behind it -- is always kept."""
        limit = self.settings.max_latency_ms
        if limit is None:
            return batch
        now = time.perf_counter()
        newer_waiting = self._to_infer.items_waiting() > 0
        kept = []
        for position, frame in enumerate(batch):
            has_newer = newer_waiting or position < len(batch) - 1
            if has_newer and (now - frame.started) * 1e3 > limit:
                self.ledger.count_dropped(frame)
            else:
                kept.append(frame)
        return kept

    def _infer(self) -> None:
        while batch := self._to_infer.get_batch(self.settings.batch):
            batch = self._drop_stale(batch)
            if not batch:
                continue
            conditions = np.stack([frame.condition for frame in batch])
            start = time.perf_counter()
            images = self.translate(conditions)
            seconds = time.perf_counter() - start
            self.ledger.record_stage("infer", seconds, frames=len(batch))
            for frame, image in zip(batch, images):
                frame.condition, frame.image = None, image
                frame.seconds["infer"] = seconds  # a frame waits for its whole batch
                self._to_encode.put(frame)  # never dropped: the translator's work is done
        self._to_encode.close()

    def _encode(self) -> None:
        while (frame := self._to_encode.get()) is not END:
            start = time.perf_counter()
            try:
                self.sink.write(to_uint8_rgb(frame.image), frame.index)
            except OutputWriteError as err:
                # A full disk fails every frame after this one too: stop reading; the frames in
                # flight still come through here and are counted as failed, each on its line.
                self.ledger.count_failed(frame.index, "encode", str(err))
                self.write_failed = True
                self.request_stop(by_user=False)
                continue
            frame.image = None
            now = time.perf_counter()
            frame.seconds["encode"] = now - start
            self.ledger.record_stage("encode", frame.seconds["encode"])
            self.ledger.count_written(frame, now)


def run_stream(stream: FrameStream, on_tick: Callable[[], None] | None = None, tick_seconds: float = 0.1) -> None:
    """Run the stream to its end in the calling (main) thread, calling `on_tick` while it runs.

    Waiting in short slices keeps the main thread responsive to signals. On any exception here
    (a second Ctrl-C) the stages are aborted before it propagates.
    """
    stream.start()
    try:
        while not stream.wait(tick_seconds):
            if on_tick is not None:
                on_tick()
    except BaseException:
        stream.abort()
        stream.wait(5.0)
        raise
    if on_tick is not None:
        on_tick()
    stream.result()
