"""`python -m mclrt.tools.gpu_check`: the plan, the budget and skip logic, the report format, the
no-device error, and the bare-checkout shim -- everything that does not need a GPU.

No test here produces or pretends a GPU result: the scheduled checks below are small CPU
functions standing in as *checks* (what the scheduler runs), and the one real check run in its own
process fails at the missing CUDA device, which is what is asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mclrt.tools.gpu_checks import CHECKS, FAIL, PASS, SKIP, Check, Result, missing_requirement, schedule

ROOT = Path(__file__).resolve().parent.parent
ISSUE_ORDER = ["launcher", "paper_correspondence", "triton_native", "trt_runner", "presets_inference", "training_steps", "doctor_selftest"]


def _has_gpu() -> bool:
    from mclrt.runtime.trt import device

    return bool(device.probe().gpus)


no_gpu_only = pytest.mark.skipif(_has_gpu(), reason="this machine has a CUDA device")


def _run(args, **kwargs):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=120, **kwargs)


def test_plan_lists_the_checks_in_priority_order():
    done = _run(["-m", "mclrt.tools.gpu_check", "--plan"])
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert [c["name"] for c in plan["checks"]] == ISSUE_ORDER
    assert plan["budget_s"] == 420 and plan["estimate_s"] == sum(c["estimate_s"] for c in plan["checks"])
    assert all(c["estimate_s"] > 0 and c["proves"] and c["title"] for c in plan["checks"])
    assert "TensorRT" in plan["checks"][3]["requires"] and "torch | cupy" in plan["checks"][0]["requires"]


@no_gpu_only
def test_without_a_cuda_device_it_exits_2_with_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "report"
    done = _run(["-m", "mclrt.tools.gpu_check", "--out", str(out)])
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "CUDA device" in done.stderr and "Traceback" not in done.stderr
    assert not out.exists() and not list(tmp_path.iterdir())


@no_gpu_only
def test_a_bare_checkout_runs_through_the_shim(tmp_path):
    """`python -S`: no site-packages, so no installed mclrt (nor numpy): the script maps mclrt.* itself."""
    probe = _run(["-S", "-c", "import mclrt.runtime"])
    assert probe.returncode != 0  # really nothing installed in this interpreter mode
    plan = _run(["-S", "tools/gpu_check.py", "--plan", "--only", "launcher", "training_steps"])
    assert plan.returncode == 0, plan.stderr
    assert [c["name"] for c in json.loads(plan.stdout)["checks"]] == ["launcher", "training_steps"]
    out = tmp_path / "report"
    done = _run(["-S", "tools/gpu_check.py", "--out", str(out)])
    assert done.returncode == 2 and "CUDA device" in done.stderr and not out.exists()


def test_bad_options_are_one_line_errors(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("keep")
    for args, message in (
        (["--plan", "--only", "nope"], "unknown check"),
        (["--out", str(tmp_path / "taken")], "not an empty folder"),
        (["--out", str(tmp_path / "r"), "--budget-s", "0"], "must be positive"),
    ):
        done = _run(["-m", "mclrt.tools.gpu_check", *args])
        assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1, (args, done.stderr)
    assert (tmp_path / "taken" / "x").read_text() == "keep"


# --- scheduling: budget and skips ----------------------------------------------------------------------
class FakeClock:
    """Seconds advance only when a check 'runs' (so the budget arithmetic is exact)."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _cpu_checks():
    return [
        Check("sum", "Sum on the CPU", "adds", 30),
        Check("needs_module", "Needs a module", "never runs", 5, requires=("mclrt_no_such_module",)),
        Check("needs_trt", "Needs TensorRT", "never runs", 5, needs_tensorrt=True),
        Check("big", "Too big for what is left", "never runs", 100),
        Check("small", "Fits at the end", "runs", 10),
    ]


def _schedule(budget: float):
    clock = FakeClock()
    ran = []

    def run(check: Check, seconds_left: float) -> Result:
        ran.append((check.name, seconds_left))
        clock.now += check.estimate_s + 5  # each check overruns its estimate by 5 s
        total = sum(range(1000))
        return Result(check.name, check.title, PASS if total == 499500 else FAIL, check.estimate_s + 5, {"sum": total})

    def why_not(check):
        return missing_requirement(check, has_tensorrt=lambda: False)

    return schedule(_cpu_checks(), budget, run, why_not=why_not, clock=clock), ran


def test_schedule_skips_what_is_missing_or_does_not_fit():
    results, ran = _schedule(budget=80)
    assert [r.status for r in results] == [PASS, SKIP, SKIP, SKIP, PASS]
    assert ran == [("sum", 80), ("small", 45)]  # each run is told the seconds left
    reasons = {r.name: r.reason for r in results}
    assert "mclrt_no_such_module" in reasons["needs_module"]
    assert "TensorRT is not installed" in reasons["needs_trt"]
    assert reasons["big"] == "budget: ~100 s needed, 45 s of --budget-s 80 left"
    # A smaller budget: the first check no longer fits, a later smaller one still runs.
    results, ran = _schedule(budget=20)
    assert ran == [("small", 20)] and [r.status for r in results] == [SKIP, SKIP, SKIP, SKIP, PASS]


def test_the_real_checks_name_what_they_need():
    everything = missing_requirement(CHECKS[0], available=lambda name: True, has_tensorrt=lambda: True)
    nothing = missing_requirement(CHECKS[0], available=lambda name: False, has_tensorrt=lambda: False)
    assert everything is None
    assert nothing == "not installed: triton, cuda.bindings, torch or cupy"
    trt_check = next(c for c in CHECKS if c.name == "trt_runner")
    assert "TensorRT" in missing_requirement(trt_check, available=lambda name: True, has_tensorrt=lambda: False)


# --- the report ----------------------------------------------------------------------------------------
def test_report_json_and_markdown(tmp_path):
    from mclrt.tools.gpu_checks import report

    results, _ = _schedule(budget=80)
    results[0].numbers = {"rows": [{"case": "a", "ms": 1.25}, {"case": "b", "ms": 2.5, "note": "x|y"}], "device": "CPU stand-in"}
    doc = report.document({"gpu 0": "none (test)", "torch": "2.x"}, results, 80, 12.345)
    report.write(tmp_path, doc)
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["summary"] == {PASS: 2, FAIL: 0, SKIP: 3} and data["seconds"] == 12.3
    assert [c["status"] for c in data["checks"]] == [PASS, SKIP, SKIP, SKIP, PASS]
    assert data["checks"][3]["reason"].startswith("budget:")
    md = (tmp_path / "report.md").read_text()
    assert "| gpu 0 | none (test) |" in md and "2 PASS, 0 FAIL, 3 SKIP in 12.3 s (budget 80 s)" in md
    assert "| Too big for what is left (`big`) | SKIP | 0.0 | budget: ~100 s needed" in md
    assert "| case | ms | note |" in md and "| b | 2.5 | x\\|y |" in md  # table cells escaped


def test_a_check_that_raises_is_a_fail_result_from_its_own_process(tmp_path):
    """The trt_runner check for real, in its own process: on this machine it stops at the missing
    CUDA device (or at a missing TensorRT), and that becomes its FAIL reason, not a crash."""
    result = tmp_path / "r.json"
    done = _run(["-m", "mclrt.tools.gpu_check", "--run-one", "trt_runner", "--work", str(tmp_path / "w"), "--seconds-left", "60", "--result", str(result)])
    assert done.returncode == 0, done.stderr
    data = json.loads(result.read_text())
    if _has_gpu():
        pytest.skip("a GPU machine: the check may really pass here")
    assert data["status"] == FAIL and data["numbers"]["traceback"]
    if (tmp_path / "w" / "tiny.plan").exists():  # TensorRT(-RTX) built the tiny plan on the CPU ...
        assert data["reason"].startswith("UserError: no CUDA device")  # ... and the runner stopped at the device
    else:
        assert "TensorRT" in data["reason"]


def test_every_check_module_imports_without_torch_or_cuda():
    """Each check imports its heavy packages inside run(): listing or scheduling needs none of them."""
    names = ", ".join(repr(c.name) for c in CHECKS)
    code = (
        "import importlib, sys\n"
        f"for name in ({names}, 'sanitized_case', 'report', 'common'):\n"
        "    module = importlib.import_module('mclrt.tools.gpu_checks.' + name)\n"
        "    assert name in ('sanitized_case', 'report', 'common') or callable(module.run), name\n"
        "heavy = [m for m in ('torch', 'triton', 'cupy', 'tensorrt', 'cuda.bindings') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = _run(["-c", code])
    assert done.returncode == 0, done.stderr
