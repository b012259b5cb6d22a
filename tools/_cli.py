"""Running a `python -m mclrt.tools.<tool>` typer app with the CLI's error convention.

A `UserError` prints `error: <path>: <problem>` on one line and exits with code 2 (a traceback only
with `--debug`), exactly as `mclrt` does. Usage errors and --help are left to click's standalone mode
(typer vendors click, so there is no `click` module to import), which prints them and exits.
"""

from __future__ import annotations

import sys

import typer

from mclrt.runtime.errors import UserError


def run_tool(app: typer.Typer, argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    try:
        typer.main.get_command(app).main(args=args, standalone_mode=True)
    except UserError as err:
        if debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except SystemExit as done:  # standalone mode always ends with sys.exit: 0, or click's usage-error code
        return int(done.code or 0)
    return 0
