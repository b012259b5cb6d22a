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


def _refuse_repeated(command, ctx, args: list[str]) -> None:
    """An option that takes one value, given twice (`--cond a --cond b`), is refused in one line rather than
    silently keeping the last; options that take several (`--pairs`, `--metrics`) are repeatable."""
    counts: dict[str, list[str]] = {}
    names = {}
    for param in command.get_params(ctx):
        if getattr(param, "param_type_name", "") != "option" or getattr(param, "multiple", False) or getattr(param, "count", False):
            continue
        for opt in [*param.opts, *param.secondary_opts]:
            names[opt] = param.name
    for arg in args:
        if arg == "--":
            break
        opt = arg.split("=", 1)[0] if arg.startswith("--") else arg
        if opt in names:
            counts.setdefault(names[opt], []).append(opt)
    for given in counts.values():
        if len(given) > 1:
            raise _click_exceptions().UsageError(f"{given[0]} was given {len(given)} times; it takes one value (give it once)", ctx)


class _Command(TyperCommand):
    def get_params(self, ctx):
        return _plain_flags(super().get_params(ctx))

    def parse_args(self, ctx, args):
        _refuse_repeated(self, ctx, list(args))
        return super().parse_args(ctx, args)


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


def _options_before_end(args: list[str]) -> list[str]:
    return args[: args.index("--")] if "--" in args else args


def _json_stream(args: list[str]):
    """Where an error's JSON object goes: stdout, unless stdout carries the output itself (`--out -`)."""
    for i, arg in enumerate(args):
        if (arg == "--out" and i + 1 < len(args) and args[i + 1] == "-") or arg == "--out=-":
            return sys.stderr
    return sys.stdout


def _report(message: str, exit_code: int, path: str | None, as_json: bool, args: list[str]) -> int:
    """An error: one line on stderr; under --json also one JSON object (error, file, exit_code)."""
    print(f"error: {message}" if not message.startswith(("error:", "interrupted", "aborted")) else message, file=sys.stderr)
    if as_json:
        import json

        print(json.dumps({"error": message, "file": path, "exit_code": exit_code}), file=_json_stream(args), flush=True)
    return exit_code


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script: one-line errors and the exit codes of runtime/errors.py.

    A UserError prints one line (its traceback only with --debug); click's usage errors print one line
    too; Ctrl-C exits 130. `--debug` works before or after the subcommand. Under `--json` (anywhere on
    the line) every error is also one JSON object on stdout -- {"error", "file", "exit_code"} -- so a
    program reads failures the way it reads results. Anything else is a bug in mclrt: it propagates
    with one traceback and exit code 1.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    options = _options_before_end(args)
    debug = "--debug" in options
    as_json = "--json" in options or any(a.startswith("--json=") for a in options)
    if debug:  # a global option, accepted wherever it is written: click wants it before the subcommand
        args = ["--debug"] + [a for i, a in enumerate(args) if not (a == "--debug" and i < len(options))]
    if not app.registered_commands:  # a source tree on sys.path that was never installed: no entry points
        print(f"error: mclrt is not installed (no `{COMMANDS_GROUP}` entry points): run `make install` or `pip install -e .`", file=sys.stderr)
        return 1
    try:
        # Outside standalone mode click returns typer.Exit(n)'s code (and a command's return value).
        result = app(args=args, standalone_mode=False)
    except UserError as err:
        if debug:
            raise
        return _report(str(err), err.exit_code, err.path, as_json, args)
    except KeyboardInterrupt:
        return _report("interrupted", EXIT_INTERRUPTED, None, as_json, args)
    except SystemExit as exc:  # typer/click exits (e.g. --help) and a command's own exit status
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        return _report(str(exc.code), 1, None, as_json, args)  # what the interpreter does with SystemExit("message")
    except _click_exceptions().ClickException as exc:  # usage errors: one line, with where to read more
        context = getattr(exc, "ctx", None)
        where = f" (see `{context.command_path} --help`)" if context is not None else ""
        return _report(f"{exc.format_message()}{where}", exc.exit_code, None, as_json, args)
    except typer.Abort:  # end of input at a prompt (typer turns Ctrl-C itself into exit code 130)
        return _report("aborted", 1, None, as_json, args)
    return result if isinstance(result, int) else 0


def _click_exceptions():
    """The exception module of the click that typer runs on: typer >= 0.25 vendors its own copy as
    typer._click, and a separately installed click (mkdocs brings one) is then a different module
    whose exceptions typer never raises -- so the vendored copy first."""
    try:
        from typer._click import exceptions
    except ImportError:  # typer < 0.25 runs on the click package
        from click import exceptions
    return exceptions


if __name__ == "__main__":
    sys.exit(main())
