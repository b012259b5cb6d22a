"""`mclrt doctor [--selftest]`: what this machine can run, and whether TensorRT engines work on it.

`doctor` lists the GPU, driver and CUDA runtime, on a Jetson the board, L4T/JetPack, DLA cores, power
mode, clocks and memory (mclrt.runtime.jetson.facts), the TensorRT flavour and version (with the rows of
the version table that matter), ONNX Runtime's providers, the registered TensorRT plugins and the
engine cache. `--selftest` then builds the model's engines in FP32 and FP16 (the demo model unless
`--model` is given), and compares each with ONNX Runtime on the CPU: PASS/FAIL with the numbers.
Without a GPU it reports what the CPU can do (ONNX Runtime's providers and threads, whether TensorRT
plans can be built here: TensorRT-RTX builds ahead of time on a CPU), says plainly that no GPU was
found, and exits 0: a CPU-only machine is a supported place to run mclrt. The exit status is
non-zero only when something asked for is broken: 1 when a --selftest step fails, 2 for bad input
(e.g. a --model that is not a model directory).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Optional

import typer

from mclrt.runtime.errors import UserError

DEMO_MODEL = Path(__file__).resolve().parent.parent / "models" / "demo"


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _cuda_bindings_installed() -> bool:
    """cuda.bindings, not `cuda`: any `cuda` namespace package (cuda-pathfinder alone) has the latter."""
    from mclrt.runtime.trt.runner import module_installed

    return module_installed("cuda.bindings")


def facts(jetson_root: Path = Path("/")) -> list[tuple[str, str]]:
    """(topic, finding) rows of the machine report; never raises for a missing component."""
    from mclrt.runtime.trt import cache, compat, device, plugin

    rows: list[tuple[str, str]] = []
    info = device.probe()
    if info.gpus:
        for gpu in info.gpus:
            rows.append((f"GPU {gpu.index}", f"{gpu.name}, compute capability {gpu.compute_capability[0]}.{gpu.compute_capability[1]}, {gpu.total_memory_bytes / 2**30:.1f} GiB"))
    else:
        rows.append(("GPU", info.problem or "none"))
    rows.append(("CUDA driver", info.driver_version or "not installed"))
    rows.append(("CUDA runtime (cuda-python)", info.runtime_version or ("cuda-python not installed" if not _cuda_bindings_installed() else "unavailable")))
    from mclrt.runtime.jetson import facts as jetson

    rows += jetson.doctor_rows(jetson.read_facts(jetson_root))  # none off a Jetson

    installed = compat.detect()
    if installed is None:
        rows.append(("TensorRT", "not installed (pip install tensorrt; or mclrt[trt-check] for TensorRT-RTX)"))
    else:
        caps = installed.caps
        rows.append(("TensorRT", f"{caps.label} (module {installed.module_name})"))
        rows.append(
            (
                "TensorRT features",
                ", ".join(
                    [
                        "strongly typed" if caps.always_strongly_typed else "weak typing + opt-in strong typing" if caps.strongly_typed_opt_in else "weak typing",
                        "Python plugin" if caps.python_plugin_v3 else "no Python plugin",
                        "plugin overrides ONNX function" if caps.plugin_overrides_local_function else "ONNX function always inlined",
                        "QDP AOT plugin" if caps.qdp_aot else "no AOT plugin",
                        "compute-capability targets" if caps.compute_capability_targets else "builds for this GPU",
                        "timing cache" if caps.timing_cache else "no timing cache",
                        "DLA" if caps.dla else "no DLA",
                    ]
                ),
            )
        )
        # Report, never register: registering here decided the implementation for the whole process
        # (a later AOT build would silently get the Python plugin). Builds and runs register their own.
        from mclrt.runtime.trt import registration

        rows.append(("CorrespondenceSoftmax plugin", registration.describe(installed.module)))
        rows.append(("TensorRT plugins", ", ".join(plugin.registered_plugins(installed.module)) or "none"))
    rows.append(("Triton (plugin kernel)", _package_version("triton") or "not installed"))

    import onnxruntime

    from mclrt.runtime.runners import choose_ort_providers

    choice = choose_ort_providers()
    skipped = "; ".join(f"{p}: {why}" for p, why in choice.skipped.items())
    rows.append(("ONNX Runtime", f"{onnxruntime.__version__}: uses {', '.join(choice.providers)}" + (f" (skipped {skipped})" if skipped else "")))
    root = cache.cache_root()
    plans = list(root.glob("engines/*/*/*.plan")) if root.is_dir() else []
    rows.append(("Engine cache", f"{root} ({len(plans)} plans)"))
    rows += cpu_rows()
    return rows


def cpu_rows() -> list[tuple[str, str]]:
    """What runs on the CPU alone: cores, ONNX Runtime's threads, and whether plans can be built here."""
    import os

    from mclrt.runtime.trt import compat

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    rows = [
        ("CPU", f"{usable} usable cores (of {os.cpu_count()}); mclrt infer/video/bench/compare/quantize run here on ONNX Runtime"),
        ("CPU threads", f"ONNX Runtime uses one thread per core per graph by default (--threads N to change; at most {usable} help)"),
    ]
    installed = compat.detect()
    if installed is not None and installed.caps.compute_capability_targets:
        builds = f"yes: {installed.caps.label} builds plans ahead of time on the CPU (mclrt engine build, mclrt check --trt)"
    elif installed is not None:
        builds = f"no: {installed.caps.label} builds only on the GPU it runs on"
    else:
        builds = "no: TensorRT is not installed (TensorRT-RTX builds on a CPU: pip install 'mclrt[trt-check]')"
    rows.append(("Build TensorRT plans here", builds))
    return rows


def selftest_rows(model: Path) -> tuple[list[tuple[str, str, str]], bool]:
    """(check, verdict, detail) rows for the build half of the self-test, and whether all passed."""
    from mclrt.runtime.model_dir import load_model_dir
    from mclrt.runtime.trt import builder

    model_dir = load_model_dir(model)
    rows, ok = [], True
    for precision in ("fp32", "fp16"):
        try:
            results = builder.build_engines(model_dir, builder.BuildOptions(precision=precision))
        except UserError as err:
            rows.append((f"build {precision}", "FAIL", str(err)))
            ok = False
            continue
        for result in results:
            report = result.report
            detail = f"{result.status}, {result.plan_bytes / 1e6:.1f} MB"
            if report is not None:
                detail += f", {report.half_layers} layers in Half, {len(report.protected_layers)} protected layers in FP32"
            if result.fp16 is not None and result.fp16.max_abs_error:
                detail += f", FP16 ONNX max |err| {max(result.fp16.max_abs_error.values()):.1e} (ORT CPU)"
            detail += "".join(f"; {note}" for note in result.notes)  # e.g. the FP16 converter's warnings, summarised
            rows.append((f"build {precision} {result.graph}", "PASS", detail))
    return rows, ok


def selftest_compare_rows(model: Path) -> tuple[list[tuple[str, str, str]], bool]:
    """(check, verdict, detail) rows of TensorRT vs ONNX Runtime (CPU); needs a GPU."""
    from mclrt.runtime.model_dir import load_model_dir
    from mclrt.runtime.compare import compare_backends

    model_dir = load_model_dir(model)
    rows, ok = [], True
    for precision in ("fp32", "fp16"):
        for r in compare_backends(model_dir, ["ort", "trt"], precision):
            rows.append(
                (f"trt {precision} vs ort {r.graph}/{r.output}", "PASS" if r.passed else "FAIL", f"max abs {r.max_abs:.2e}, max rel {r.max_rel:.2e}, PSNR {r.psnr_db:.1f} dB")
            )
            ok &= r.passed
    return rows, ok


def run_selftest(model: Path, has_device: bool, device_problem: str | None) -> tuple[list[tuple[str, str, str]], bool]:
    """All self-test rows: load, build FP32/FP16, and (with a GPU) TensorRT vs ONNX Runtime."""
    from mclrt.runtime.model_dir import load_model_dir
    from mclrt.runtime.trt import compat

    try:
        load_model_dir(model)
    except UserError as err:
        return [("load model", "FAIL", str(err))], False
    if compat.detect() is None:
        return [("build", "FAIL", "TensorRT is not installed")], False
    rows, ok = selftest_rows(model)
    if not has_device:
        rows.append(("run plans vs ONNX Runtime", "SKIP", device_problem or "no CUDA device"))
    elif ok:
        compared, compared_ok = selftest_compare_rows(model)
        rows += compared
        ok &= compared_ok
    return rows, ok


def doctor(
    selftest: bool = typer.Option(False, "--selftest", help="Build the model's FP32 and FP16 engines and compare them with ONNX Runtime (CPU)."),
    model: Optional[Path] = typer.Option(None, "--model", help="Model directory to load and check (and to --selftest; default: the demo model)."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object (facts, GPU found, self-test rows) instead of tables."),
) -> None:
    """Report CPU, GPU, driver, CUDA, TensorRT, ONNX Runtime, plugins and engine cache; --selftest checks engines end to end."""
    import json

    from rich.console import Console
    from rich.table import Table

    from mclrt.runtime.trt import device

    console = Console()
    rows = facts()
    if model is not None:  # a model that does not load is bad input (exit 2), with or without --selftest
        from mclrt.runtime.model_dir import load_model_dir

        loaded = load_model_dir(model)
        rows.append(("Model", f"{model}: {loaded.manifest.preset}, {loaded.manifest.precision}, graphs match their SHA-256"))
    info = device.probe()
    if not json_output:  # the machine report first: a self-test on a GPU takes minutes
        table = Table(title="mclrt doctor", show_header=False)
        for topic, finding in rows:
            table.add_row(topic, finding)
        console.print(table)
    test_rows, ok = run_selftest(model or DEMO_MODEL, info.has_device, info.problem) if selftest else ([], True)
    if info.has_device:
        verdict = "GPU found" + ("" if not selftest else "; self-test " + ("PASS" if ok else "FAIL"))
    else:
        verdict = f"no GPU found ({info.problem or 'no CUDA device'}); mclrt runs here on the CPU with ONNX Runtime (CPU rows above)"
        if selftest:
            verdict += f"; self-test builds {'PASS' if ok else 'FAIL'} (running the plans needs a GPU: not checked here)"
    if json_output:
        print(json.dumps({
            "facts": dict(rows), "gpu": info.has_device, "summary": verdict,
            "selftest": None if not selftest else {"passed": ok, "rows": [dict(zip(("check", "verdict", "detail"), r)) for r in test_rows]},
        }))
    else:
        if selftest:
            results = Table(title=f"self-test: {model or DEMO_MODEL}")
            for column in ("check", "verdict", "detail"):
                results.add_column(column)
            for row in test_rows:
                results.add_row(*row)
            console.print(results)
        console.print(verdict, highlight=False, soft_wrap=True)
    if not ok:
        raise typer.Exit(1)
