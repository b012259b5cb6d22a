"""User-facing errors.

A `UserError` is a problem with something the user gave us (a file, a flag, a model directory).
The CLI prints it as one line -- `error: <path>: <problem>` -- and exits with code 2, without a
traceback unless `--debug` is given. Everything else is a bug and propagates with its traceback.
"""

from __future__ import annotations

import os


class UserError(Exception):
    """A problem with user input, reported as one line naming the file and the problem."""

    exit_code = 2

    def __init__(self, problem: str, path: str | os.PathLike | None = None):
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)
