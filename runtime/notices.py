"""Warnings about input that is probably wrong but still usable: one line each, on stderr.

`warn(problem, path)` prints `warning: <path>: <problem>`, the same shape as a `UserError` line, so a
user (or a log filter) reads both alike. Never silence: a photo given where an edge map belongs, a
16-bit image holding 8-bit values, files a folder scan skipped, a calibration set smaller than asked
all still run, and the user is told once, in words that say what to do.
"""

from __future__ import annotations

import os
import sys


def warn(problem: str, path: str | os.PathLike | None = None) -> None:
    where = f"{os.fspath(path)}: " if path is not None else ""
    print(f"warning: {where}{problem}", file=sys.stderr, flush=True)
