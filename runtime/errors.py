"""User-facing errors and the exit codes every command shares.

A `UserError` is a problem with something the user gave us (a file, a flag, a model directory).
The CLI prints it as one line -- `error: <path>: <problem>` -- and exits with its `exit_code`,
without a traceback unless `--debug` is given. Everything else is a bug and propagates with its
traceback (exit code 1).

Exit codes (docs/troubleshooting.md, "Exit codes"):
    0    everything asked for was written
    1    a bug in mclrt (a traceback)
    2    bad input or usage: refused, or stopped at a bad input (the outputs already written are complete)
    3    the run went on, but not everything made it: some inputs or frames failed, or writing failed
         (disk full); what was written is complete and what is missing is reported
    130  interrupted (Ctrl-C); what was written is complete and what is missing is reported
"""

from __future__ import annotations

import os

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_INCOMPLETE = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a program Ctrl-C stopped


class UserError(Exception):
    """A problem with user input, reported as one line naming the file and the problem."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, problem: str, path: str | os.PathLike | None = None):
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class OutputWriteError(UserError):
    """Writing an output failed part way (file system full, file size limit, I/O error)."""

    exit_code = EXIT_INCOMPLETE
