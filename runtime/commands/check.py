"""`mclrt check --model DIR`: is this exported model sound, and will TensorRT take it? (No GPU needed.)

`--model` is how every command names its model directory. `mclrt check DIR` (the positional form
of earlier releases) still works and prints a one-line deprecation note on stderr; it is hidden from
--help and will be removed.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Optional

import typer

_STATUS_STYLE = {"pass": "[green]pass[/]", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]", "skip": "[dim]skip[/]"}
_EXAMPLES_SHOWN = 3


def check(
    model: Optional[Path] = typer.Option(None, "--model", help="Model directory written by `mclrt export`.", show_default=False),
    positional_model: Optional[Path] = typer.Argument(None, hidden=True, show_default=False, metavar="DIR (deprecated: use --model)"),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
    trt: Optional[bool] = typer.Option(
        None, "--trt/--no-trt", help="Parse and build with TensorRT-RTX on the CPU (default: when it is installed)."
    ),
    target: str = typer.Option(
        "sm86", "--target", help="Compute capability of the TensorRT-RTX CPU build: sm86, SM86 or 8.6 (as engine build --target)."
    ),
    compute_capability_alias: Optional[str] = typer.Option(None, "--compute-capability", hidden=True),  # the old name of --target
) -> None:
    """Check a model directory: ONNX validity, TensorRT op support, the correspondence op, ONNX Runtime, FP16 risks."""
    import re
    import sys

    from mclrt.runtime.checks.model_check import CheckOptions, check_model_dir, tensorrt_rtx_installed
    from mclrt.runtime.errors import UserError
    from mclrt.runtime.trt.compat import normalize_compute_capability

    if model is not None and positional_model is not None:
        raise UserError("give the model directory once, with --model")
    if model is None:
        if positional_model is None:
            raise UserError("missing --model DIR (the model directory to check)")
        print(f"note: `mclrt check DIR` is deprecated; use `mclrt check --model {positional_model}`", file=sys.stderr)
        model = positional_model
    compute_capability = normalize_compute_capability(compute_capability_alias or target)
    if not re.fullmatch(r"sm\d{2,3}", compute_capability):
        raise UserError(f"--target {target!r}: name one compute capability, e.g. sm86 or 8.6")
    if trt and not tensorrt_rtx_installed():
        raise UserError("--trt needs TensorRT-RTX: pip install 'mclrt[trt-check]' && python -m mclrt.tools.trt_rtx_setup")
    from mclrt.runtime.progress import working

    with working(f"checking {model}"):
        report = check_model_dir(model, CheckOptions(tensorrt=trt, compute_capability=compute_capability.upper()))
    if json_output:
        print(json.dumps(report.to_dict()))
    else:
        _print_report(report)
    if not report.ok:
        raise SystemExit(1)


def _print_report(report) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    steps = Table(title=f"mclrt check {report.model}", title_justify="left")
    steps.add_column("step", no_wrap=True)
    steps.add_column("graph", no_wrap=True)
    steps.add_column("result", no_wrap=True)
    steps.add_column("detail", overflow="fold")
    for step in report.steps:
        steps.add_row(step.step, step.graph or "", _STATUS_STYLE[step.status], escape(step.detail))
    console.print(steps)

    # Findings grouped by (check, graph, message) so 40 identical InstanceNorm warnings are one line.
    groups: dict[tuple, list[str]] = defaultdict(list)
    for finding in report.findings:
        groups[(finding.severity, finding.check, finding.graph or "", finding.message)].append(finding.node or "")
    if groups:
        console.print("[bold]findings[/]")
        for (severity, check, graph, message), nodes in sorted(groups.items(), key=lambda item: item[0][0]):
            named = [n for n in nodes if n]
            where = ", ".join(named[:_EXAMPLES_SHOWN]) + (f" (+{len(named) - _EXAMPLES_SHOWN} more)" if len(named) > _EXAMPLES_SHOWN else "")
            mark = "[red]error[/]" if severity == "error" else "[yellow]warning[/]"
            place = f"{graph}: " if graph else ""
            at = f" [dim]at {escape(where)}[/]" if where else ""
            console.print(f"  {mark} {escape(f'[{check}]')} {escape(place + message)}{at}", highlight=False)
    verdict = "[green]passed[/]" if report.ok else "[red]failed[/]"
    errors = sum(f.severity == "error" for f in report.findings)
    warnings = sum(f.severity == "warning" for f in report.findings)
    console.print(f"check {verdict}: {errors} error(s), {warnings} warning(s)")
