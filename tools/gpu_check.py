"""The first thing to run on a machine with an NVIDIA GPU: every check of the GPU path this machine can
run, in priority order, within a time budget, written to DIR/report.json and DIR/report.md.

    python -m mclrt.tools.gpu_check --out gpu-report          # installed (pip install -e .)
    python3 tools/gpu_check.py --out gpu-report               # a bare checkout, nothing installed
    python -m mclrt.tools.gpu_check --plan                    # the checks and their estimates, any machine

NEVER RUN ON A GPU: this project has had no GPU; the checks are written to be the first run. What
each check proves is in `--plan` (and tools/gpu_checks/__init__.py). A check that cannot run here
(a package missing, no TensorRT, not enough budget left) is SKIP with the reason. Each check runs
in its own process with a hard time limit, so a crash or a CUDA error in one fails that check only.
Without a CUDA device the command exits 2 with one line and writes nothing.

On a bare checkout (no `pip install`), the `mclrt.*` names are mapped onto the repository's folders
through a temporary folder of symlinks put on sys.path (and PYTHONPATH for the checks' processes).
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXIT_FAILED, EXIT_NO_DEVICE = 1, 2
TOP_LEVEL = ("training", "export", "calibration", "runtime", "tools")


def repository_root() -> Path:
    return Path(__file__).resolve().parent.parent


def ensure_importable() -> str | None:
    """Make `import mclrt.runtime` work; returns the shim folder added to sys.path (None if installed)."""
    here = str(Path(__file__).resolve().parent)
    if sys.path and sys.path[0] == here:
        sys.path.pop(0)  # run as a script: tools/ itself must not shadow top-level modules
    try:
        import mclrt.runtime  # noqa: F401

        return None
    except ImportError:
        pass
    root = repository_root()
    shim = Path(tempfile.mkdtemp(prefix="mclrt-shim-"))
    package = shim / "mclrt"
    package.mkdir()
    for name in TOP_LEVEL:  # the same mapping as pyproject's package-dir
        if (root / name).is_dir():
            (package / name).symlink_to(root / name, target_is_directory=True)
    atexit.register(shutil.rmtree, shim, True)  # the checks' processes end before this one does
    sys.path.insert(0, str(shim))
    for name in [m for m in sys.modules if m == "mclrt" or m.startswith("mclrt.")]:
        del sys.modules[name]  # a failed import may have left a half-made namespace
    importlib.import_module("mclrt.runtime")  # raises if the shim does not work: a bug, not user input

    return str(shim)


def child_environment(shim: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if shim is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (shim, env.get("PYTHONPATH", "")) if p)
    return env


class Context:
    """What a check gets: a scratch folder, the seconds it may use, and the environment for its processes."""

    def __init__(self, work: Path, seconds_left: float, child_env: dict[str, str]):
        self.work = work
        self.seconds_left = seconds_left
        self.child_env = child_env


def run_one(name: str, work: Path, seconds_left: float, result_path: Path) -> int:
    """In the check's own process: run it, write its numbers (or the error) as JSON."""
    import importlib
    import traceback

    from mclrt.tools.gpu_checks import FAIL, PASS

    work.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    try:
        module = importlib.import_module(f"mclrt.tools.gpu_checks.{name}")
        numbers = module.run(Context(work, seconds_left, dict(os.environ)))
        status = numbers.pop("status", PASS)
        reason = numbers.pop("reason", "")
    except Exception as err:  # noqa: BLE001  a check's failure is its result, written to the report
        status, reason = FAIL, f"{type(err).__name__}: {err}".splitlines()[0][:300]
        numbers = {"traceback": traceback.format_exc().strip().splitlines()[-8:]}
    document = {"status": status, "reason": reason, "seconds": time.monotonic() - start, "numbers": numbers}
    result_path.write_text(json.dumps(document, default=str), encoding="utf-8")
    return 0


def run_in_process(check, seconds_left: float, work: Path, env: dict[str, str]):
    """Run one check in a child process, killed when `seconds_left` runs out."""
    from mclrt.tools.gpu_checks import FAIL, Result

    result_path = work / f"{check.name}.result.json"
    command = [sys.executable, "-m", "mclrt.tools.gpu_check", "--run-one", check.name, "--work", str(work / check.name), "--seconds-left", f"{seconds_left:.0f}", "--result", str(result_path)]
    start = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds_left, env=env)
    except subprocess.TimeoutExpired:
        return Result(check.name, check.title, FAIL, time.monotonic() - start, reason=f"timed out after {seconds_left:.0f} s (the rest of the budget)")
    if not result_path.is_file():
        tail = (done.stdout + done.stderr).strip().splitlines()[-6:]
        return Result(check.name, check.title, FAIL, time.monotonic() - start, {"output_tail": tail}, reason=f"the check's process died (exit {done.returncode})")
    data = json.loads(result_path.read_text(encoding="utf-8"))
    return Result(check.name, check.title, data["status"], time.monotonic() - start, data["numbers"], data["reason"])


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def machine_facts(info) -> dict:
    """Versions, GPU and driver, read without torch (ctypes libcuda + package metadata)."""
    import platform

    facts = {"date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "python": platform.python_version(), "platform": platform.platform()}
    for index, gpu in enumerate(info.gpus):
        facts[f"gpu {index}"] = f"{gpu.name}, sm_{gpu.compute_capability[0]}{gpu.compute_capability[1]}, {gpu.total_memory_bytes / 2**30:.1f} GiB"
    facts["cuda driver"] = info.driver_version or "?"
    for package in ("torch", "triton", "cuda-bindings", "cuda-python", "cupy-cuda13x", "cupy-cuda12x", "numpy", "onnx", "onnxruntime", "onnxruntime-gpu", "tensorrt", "tensorrt-rtx-cu13-bindings"):
        facts[package] = _version(package)
    smi = shutil.which("nvidia-smi")
    if smi:
        done = subprocess.run([smi, "--query-gpu=name,driver_version,clocks.max.sm", "--format=csv,noheader"], capture_output=True, text=True)
        facts["nvidia-smi"] = done.stdout.strip() or done.stderr.strip()
    return facts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mclrt.tools.gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="folder for report.json and report.md (must not exist, or be empty)")
    parser.add_argument("--plan", action="store_true", help="print the checks and their estimated seconds as JSON, and exit")
    parser.add_argument("--budget-s", type=float, default=420.0, help="seconds for all checks together (default 420); checks that would not fit are skipped")
    parser.add_argument("--only", nargs="+", metavar="CHECK", help="run only these checks (names as in --plan)")
    parser.add_argument("--run-one", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--seconds-left", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    shim = ensure_importable()
    from mclrt.tools.gpu_checks import BY_NAME, CHECKS, PASS, FAIL, schedule
    from mclrt.tools.gpu_checks import report

    if args.run_one:
        return run_one(args.run_one, args.work, args.seconds_left, args.result)
    unknown = sorted(set(args.only or ()) - set(BY_NAME))
    if unknown:
        print(f"error: unknown check(s) {', '.join(unknown)}; choose from {', '.join(BY_NAME)}", file=sys.stderr)
        return EXIT_NO_DEVICE
    checks = [c for c in CHECKS if not args.only or c.name in args.only]
    if args.plan:
        plan = json.dumps({"budget_s": args.budget_s, "estimate_s": sum(c.estimate_s for c in checks), "checks": [c.plan_entry() for c in checks]}, indent=2)
        try:
            print(plan, flush=True)
        except BrokenPipeError:  # `--plan | head`: the reader has all it wanted
            sys.stdout = None  # nothing left to flush at exit (that flush would raise again)
        return 0
    if args.out is None:
        print("error: --out DIR is required (or --plan)", file=sys.stderr)
        return EXIT_NO_DEVICE
    if args.budget_s <= 0:
        print(f"error: --budget-s {args.budget_s:g}: must be positive", file=sys.stderr)
        return EXIT_NO_DEVICE
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        print(f"error: {args.out}: exists and is not an empty folder; choose another --out", file=sys.stderr)
        return EXIT_NO_DEVICE

    from mclrt.runtime.trt import device

    info = device.probe()
    if not info.gpus:
        print(f"error: {info.problem or 'no CUDA device found'}; gpu_check runs only on a machine with an NVIDIA GPU", file=sys.stderr)
        return EXIT_NO_DEVICE

    start = time.monotonic()
    env = child_environment(shim)
    with tempfile.TemporaryDirectory(prefix="mclrt-gpu-check-") as scratch:
        work = Path(scratch)

        def run(check, seconds_left):
            print(f"{check.name}: running (estimate {check.estimate_s} s, {seconds_left:.0f} s left) ...", file=sys.stderr, flush=True)
            return run_in_process(check, seconds_left, work, env)

        results = schedule(checks, args.budget_s, run)
    doc = report.document(machine_facts(info), results, args.budget_s, time.monotonic() - start)
    staging = args.out.with_name(args.out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    report.write(staging, doc)
    if args.out.exists():
        args.out.rmdir()
    staging.rename(args.out)  # the report appears whole or not at all
    for result in results:
        print(f"{result.status:4}  {result.name:22} {result.seconds:6.1f} s  {result.reason}")
    print(f"report: {args.out / 'report.md'}")
    return EXIT_FAILED if any(r.status == FAIL for r in results) else 0 if any(r.status == PASS for r in results) else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
