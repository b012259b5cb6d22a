"""The `mclrt` command line.

This module imports neither torch nor TensorRT: each command imports what it needs when it runs,
so `mclrt infer` works on a machine (or a Jetson) that has only the runtime installed.
Commands are plain functions defined next to the code they drive; this file only lists them.
"""

from __future__ import annotations

import sys

import typer

from mclrt.runtime.errors import UserError

app = typer.Typer(
    name="mclrt",
    help="MCL-Net exemplar-based image translation: train, export, check and run.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_state = {"debug": False}


@app.callback()
def _global_options(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
) -> None:
    _state["debug"] = debug


# --- commands (each defined beside the code it drives) --------------------------------------
from mclrt.calibration.quantize_cli import quantize  # noqa: E402

app.command("quantize")(quantize)
from mclrt.runtime.commands.engine import engine_app  # noqa: E402

app.add_typer(engine_app, name="engine")
from mclrt.runtime.commands.compare import compare  # noqa: E402
from mclrt.runtime.commands.doctor import doctor  # noqa: E402

app.command("compare")(compare)
app.command("doctor")(doctor)
from mclrt.training.info import info  # noqa: E402  (torch is imported when the command runs)

app.command("info")(info)
from mclrt.export.cli import export  # noqa: E402  (torch is imported when the command runs)

app.command("export")(export)
from mclrt.training.cli import train_command  # noqa: E402  (torch is imported when the command runs)

app.command("train")(train_command)
from mclrt.training.eval.cli import eval_app  # noqa: E402  (scikit-image and torch are imported when a command runs)

app.add_typer(eval_app, name="eval")
from mclrt.runtime.commands.infer import infer  # noqa: E402

app.command("infer")(infer)
from mclrt.runtime.commands.video import video  # noqa: E402

app.command("video")(video)
from mclrt.runtime.commands.bench import bench  # noqa: E402
from mclrt.runtime.commands.check import check  # noqa: E402

app.command("bench")(bench)
app.command("check")(check)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script: one-line errors with exit code 2 unless --debug."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        # Outside standalone mode click returns typer.Exit(n)'s code (and a command's return value).
        result = app(args=args, standalone_mode=False)
    except UserError as err:
        if debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:  # typer/click exits (e.g. --help)
        return int(exc.code or 0)
    except Exception as exc:  # click usage errors carry their own exit code
        try:
            import click
        except ImportError:  # typer >= 0.25 vendors click as typer._click instead of depending on it
            from typer import _click as click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            return exc.exit_code
        if isinstance(exc, click.exceptions.Abort):
            print("aborted", file=sys.stderr)
            return 130
        raise
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
