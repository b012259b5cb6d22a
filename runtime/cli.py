"""The `mclrt` command line.

This module imports neither torch nor TensorRT: each command imports what it needs when it runs,
so `mclrt infer` works on a machine (or a Jetson) that has only the runtime installed.
Commands are plain functions defined next to the code they drive; this file only lists them.
"""

from __future__ import annotations

import sys

import typer
from typer.core import TyperCommand, TyperGroup

from mclrt.runtime.errors import EXIT_INTERRUPTED, UserError


def _plain_flags(params: list) -> list:
    """Show on/off flags (--json, --overwrite, --help) without a type: typer's rich help prints
    `<bool>` beside them, as if they took a value. One place, for every command."""
    for param in params:
        if getattr(param, "is_flag", False):
            param.metavar = ""
    return params


class _Command(TyperCommand):
    def get_params(self, ctx):
        return _plain_flags(super().get_params(ctx))


class _Group(TyperGroup):
    def get_params(self, ctx):
        return _plain_flags(super().get_params(ctx))


app = typer.Typer(
    name="mclrt",
    help="MCL-Net exemplar-based image translation: train, export, check and run.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_Group,
)

_state = {"debug": False}


def mclrt_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mclrt")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown (not installed)"


def _print_version(value: bool) -> None:
    if value:
        print(f"mclrt {mclrt_version()}")
        raise typer.Exit(0)


@app.callback()
def _global_options(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version, help="Print mclrt's version and exit."),
) -> None:
    _state["debug"] = debug


def _add_group(group: typer.Typer, name: str) -> None:
    """Register a command group (`mclrt engine ...`) with the same help rendering as every command."""
    group.info.cls = _Group
    for command in group.registered_commands:
        command.cls = _Command
    app.add_typer(group, name=name)


# --- commands (each defined beside the code it drives) --------------------------------------
from mclrt.calibration.quantize_cli import quantize  # noqa: E402

app.command("quantize", cls=_Command)(quantize)
from mclrt.runtime.commands.engine import engine_app  # noqa: E402

_add_group(engine_app, "engine")
from mclrt.runtime.commands.compare import compare  # noqa: E402
from mclrt.runtime.commands.doctor import doctor  # noqa: E402

app.command("compare", cls=_Command)(compare)
app.command("doctor", cls=_Command)(doctor)
from mclrt.training.info import info  # noqa: E402  (torch is imported when the command runs)

app.command("info", cls=_Command)(info)
from mclrt.export.cli import export  # noqa: E402  (torch is imported when the command runs)

app.command("export", cls=_Command)(export)
from mclrt.training.cli import train_command  # noqa: E402  (torch is imported when the command runs)

app.command("train", cls=_Command)(train_command)
from mclrt.training.import_cli import import_app  # noqa: E402  (torch is imported when the command runs)

_add_group(import_app, "import")  # `mclrt import cocosnet`
from mclrt.training.eval.cli import eval_app  # noqa: E402  (scikit-image and torch are imported when a command runs)

_add_group(eval_app, "eval")
from mclrt.runtime.commands.infer import infer  # noqa: E402

app.command("infer", cls=_Command)(infer)
from mclrt.runtime.commands.video import video  # noqa: E402

app.command("video", cls=_Command)(video)
from mclrt.runtime.commands.bench import bench  # noqa: E402
from mclrt.runtime.commands.check import check  # noqa: E402

app.command("bench", cls=_Command)(bench)
app.command("check", cls=_Command)(check)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script: one-line errors and the exit codes of runtime/errors.py.

    A UserError prints one line (its traceback only with --debug); click's usage errors print their
    usage message; Ctrl-C exits 130. Anything else is a bug in mclrt: it propagates with one
    traceback and exit code 1.
    """
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
        return EXIT_INTERRUPTED
    except SystemExit as exc:  # typer/click exits (e.g. --help) and a command's own exit status
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)  # what the interpreter does with SystemExit("message")
        return 1
    except _click_exceptions().ClickException as exc:  # usage errors carry their own exit code
        exc.show()
        return exc.exit_code
    except typer.Abort:  # end of input at a prompt (typer turns Ctrl-C itself into exit code 130)
        print("aborted", file=sys.stderr)
        return 1
    return result if isinstance(result, int) else 0


def _click_exceptions():
    """click's exception module: typer >= 0.25 vendors click as typer._click instead of depending on it."""
    try:
        from click import exceptions
    except ImportError:
        from typer._click import exceptions
    return exceptions


if __name__ == "__main__":
    sys.exit(main())
