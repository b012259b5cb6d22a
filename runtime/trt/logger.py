"""One TensorRT logger per process that records what the builder says.

TensorRT keeps the first logger it is given (a second Builder with another logger only gets a
warning), so mclrt makes one per TensorRT module and points it at a fresh `BuildLog` for each build:
`with shared_logger(trt).recording() as log: ...`. The records feed the precision check (the
builder's `Layers:` block) and the plugin check ("Importing this node as a plugin"). Errors always
go to stderr; with `verbose`, everything does.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from dataclasses import dataclass, field
from types import ModuleType
from typing import Iterator


@dataclass
class BuildLog:
    messages: list[str] = field(default_factory=list)  # every severity, in order
    errors: list[str] = field(default_factory=list)  # ERROR and INTERNAL_ERROR only


@functools.lru_cache(maxsize=None)
def shared_logger(trt: ModuleType):
    """The process's capturing logger for the TensorRT module `trt`."""
    error_level = int(trt.ILogger.Severity.ERROR)

    class CapturingLogger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.log_record: BuildLog | None = None
            self.echo_level = error_level

        def log(self, severity, msg):
            if self.log_record is not None:
                self.log_record.messages.append(msg)
                if int(severity) <= error_level:
                    self.log_record.errors.append(msg)
            if int(severity) <= self.echo_level:
                print(f"[TensorRT {severity.name}] {msg}", file=sys.stderr)

        @contextlib.contextmanager
        def recording(self, verbose: bool = False) -> Iterator[BuildLog]:
            """Record every message into the yielded BuildLog while the block runs."""
            previous = (self.log_record, self.echo_level)
            self.log_record = BuildLog()
            self.echo_level = int(trt.ILogger.Severity.VERBOSE) if verbose else error_level
            try:
                yield self.log_record
            finally:
                self.log_record, self.echo_level = previous

    return CapturingLogger()
