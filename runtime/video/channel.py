"""The bounded queue between two stages, with an end marker, an abort switch and drop-oldest puts.

Built on `queue.Queue`. Every blocking call wakes up regularly to look at the shared `abort` event,
so when one stage fails the others stop instead of waiting forever on a queue nobody serves.
Each channel has exactly one producer thread and one consumer thread; `offer` relies on that.
"""

from __future__ import annotations

import queue
import threading
from typing import Generic, TypeVar

T = TypeVar("T")

# How often a blocked put/get checks the abort event. Short enough that an abort is prompt, long
# enough that an idle stage costs nothing measurable.
_POLL_SECONDS = 0.05


class Aborted(Exception):
    """The pipeline is being torn down (another stage failed); the stage should return now."""


class _End:
    """The marker a producer puts last: no more items will follow."""


END = _End()


class Channel(Generic[T]):
    def __init__(self, max_size: int, abort: threading.Event, name: str):
        if max_size < 1:
            raise ValueError("a channel holds at least one item")
        self.name = name
        self._queue: queue.Queue = queue.Queue(max_size)
        self._abort = abort
        self._ended = False  # the consumer has taken END

    # --- producer side ------------------------------------------------------------------------------
    def put(self, item: T) -> None:
        """Wait for room (back-pressure), unless the pipeline aborts."""
        while True:
            if self._abort.is_set():
                raise Aborted
            try:
                self._queue.put(item, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                continue

    def offer(self, item: T) -> T | None:
        """Put without waiting. When the queue is full, evict the oldest waiting item to make room
        and return it (the caller counts it as dropped); None when nothing was evicted.

        The newest item always gets in: for a live stream the freshest frame is the one worth
        translating, and the evicted one is the frame that has waited longest -- the late one.
        """
        if self._abort.is_set():
            raise Aborted
        try:
            self._queue.put_nowait(item)
            return None
        except queue.Full:
            pass
        try:
            evicted = self._queue.get_nowait()
        except queue.Empty:  # the consumer took one in the meantime
            evicted = None
        # Only this thread puts, so the slot just freed (by us or the consumer) is still free.
        self._queue.put_nowait(item)
        return evicted

    def close(self) -> None:
        """Tell the consumer that nothing more will come (waits for room like any put)."""
        self.put(END)  # type: ignore[arg-type]

    # --- consumer side ------------------------------------------------------------------------------
    def get(self) -> T | _End:
        """The next item, or END once the producer has closed the channel (and forever after)."""
        if self._ended:
            return END
        while True:
            if self._abort.is_set():
                raise Aborted
            try:
                item = self._queue.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue
            if item is END:
                self._ended = True
            return item

    def get_batch(self, size: int) -> list[T]:
        """Up to `size` items: waits for the first, then for the rest until `size` or the end.

        An empty list means the stream has ended. Waiting for a full batch (instead of taking what
        happens to be queued) keeps the batch size, and so the translator's shape, steady.
        """
        batch: list[T] = []
        while len(batch) < size:
            item = self.get()
            if item is END:
                break
            batch.append(item)  # type: ignore[arg-type]
        return batch

    def qsize(self) -> int:
        return self._queue.qsize()

    def items_waiting(self) -> int:
        """Items not yet taken, the end marker not counted (it is no newer frame)."""
        with self._queue.mutex:
            return sum(1 for item in self._queue.queue if item is not END)
