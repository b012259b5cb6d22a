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


# The order `mclrt --help` lists commands in: the main jobs first. A command this list does not name
# (a plug-in's) follows, alphabetically.
HELP_ORDER = ("infer", "video", "train", "export", "import", "quantize", "engine", "serve", "bench", "compare", "check", "eval", "info", "doctor")
COMMANDS_GROUP = "mclrt.commands"


def _register(name: str, command) -> None:
    """A command function, or a typer app for a group (`mclrt engine ...`), with the shared help rendering."""
    if isinstance(command, typer.Typer):
        command.info.cls = _Group
        for sub in command.registered_commands:
            sub.cls = _Command
        app.add_typer(command, name=name)
    else:
        app.command(name, cls=_Command)(command)


def _register_commands() -> None:
    """Every command, from the `mclrt.commands` entry points that pyproject.toml declares.

    Each floor (runtime/commands, training/commands, export/commands, calibration/commands) declares its
    own commands there, so this module -- the torch-free ground floor -- never imports the floors above
    it; a command module imports its heavy parts (torch, TensorRT) only when it runs.
    """
    from importlib.metadata import entry_points

    found = {point.name: point for point in entry_points(group=COMMANDS_GROUP)}
    rank = {name: i for i, name in enumerate(HELP_ORDER)}
    for name in sorted(found, key=lambda n: (rank.get(n, len(rank)), n)):
        _register(name, found[name].load())


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script: one-line errors and the exit codes of runtime/errors.py.

    A UserError prints one line (its traceback only with --debug); click's usage errors print their
    usage message; Ctrl-C exits 130. Anything else is a bug in mclrt: it propagates with one
    traceback and exit code 1.
    """
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    if not app.registered_commands:  # a source tree on sys.path that was never installed: no entry points
        print(f"error: mclrt is not installed (no `{COMMANDS_GROUP}` entry points): run `make install` or `pip install -e .`", file=sys.stderr)
        return 1
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
