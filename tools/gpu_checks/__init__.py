"""The checks of `python -m mclrt.tools.gpu_check`, in priority order, and how they are scheduled.

Each check is a module here with `run(ctx) -> dict` (its numbers, and "status" when it decides
PASS/FAIL/SKIP itself); this file lists them with what they need and how long they are expected
to take on an H200-class machine (estimates, never measured: nothing here has run on a GPU yet).
`schedule` runs them in order within a time budget and turns what it cannot run into SKIP with
the reason. Importing this package needs only the standard library.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass, field
from typing import Callable

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


@dataclass(frozen=True)
class Check:
    name: str  # module in this package
    title: str
    proves: str  # one sentence: what a PASS shows
    estimate_s: int  # expected seconds on one H200 (including Python/torch start-up)
    requires: tuple[str, ...] = ()  # modules that must be importable
    requires_any: tuple[str, ...] = ()  # at least one of these
    needs_tensorrt: bool = False

    def plan_entry(self) -> dict:
        return {
            "name": self.name,
            "title": self.title,
            "proves": self.proves,
            "estimate_s": self.estimate_s,
            "requires": list(self.requires) + ([" | ".join(self.requires_any)] if self.requires_any else []) + (["TensorRT"] if self.needs_tensorrt else []),
        }


CHECKS: tuple[Check, ...] = (
    Check(
        "launcher",
        "Torch-free kernel launcher (cubin and PTX)",
        "correspondence_launch runs the kernel on a non-default stream from raw pointers, as cubin and as JIT-ed PTX, "
        "and matches a float64 reference over odd shapes (N != M, fp32/fp16, Cv 3/48/154, mask on/off)",
        60,
        requires=("triton", "cuda.bindings"),
        requires_any=("torch", "cupy"),
    ),
    Check(
        "paper_correspondence",
        "Paper-size correspondence: error and time",
        "at B 1 and 4, N = M = 4096, C = 2560 the kernel's error vs float64 and its CUDA-event time against torch "
        "explicit (TF32 off/on), the chunked path and SDPA",
        45,
        requires=("torch", "triton", "cuda.bindings"),
    ),
    Check(
        "triton_native",
        "Triton's own launcher + compute-sanitizer",
        "the same @triton.jit kernel through Triton's launcher matches the reference and the torch-free launcher; "
        "compute-sanitizer memcheck finds no error in a small launcher case (where the tool exists)",
        60,
        requires=("torch", "triton", "cuda.bindings"),
    ),
    Check(
        "trt_runner",
        "TensorRT runner buffers",
        "the TensorRT runner grows its device and pinned host buffers across batch 1 -> 4 -> 2, syncs its stream "
        "and returns the right values",
        40,
        requires=("cuda.bindings", "onnx"),
        needs_tensorrt=True,
    ),
    Check(
        "presets_inference",
        "PyTorch CUDA inference of every preset",
        "every preset (paper presets and edge-small at 256x256, nano at 128x128), B = 1 and 8, runs in fp32, TF32, "
        "fp16 and bf16 autocast with finite outputs; ms/image, peak memory, PSNR vs fp32, warp-argmax agreement",
        120,
        requires=("torch",),
    ),
    Check(
        "training_steps",
        "Training steps (AMP on/off) and paper-ade20k memory",
        "edge-small generator+discriminator steps with AMP on and off give finite losses (s/step, grad-scaler "
        "scale); paper-ade20k forward/backward at B = 2 fits, with its peak memory",
        75,
        requires=("torch",),
    ),
    Check(
        "doctor_selftest",
        "mclrt doctor --selftest",
        "TensorRT engines of the demo model build, run and agree with ONNX Runtime",
        150,
        requires=("cuda.bindings",),
        needs_tensorrt=True,
    ),
)

BY_NAME = {check.name: check for check in CHECKS}


def module_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a missing parent package of a dotted name
        return False


def tensorrt_available() -> bool:
    from mclrt.runtime.trt import compat

    return compat.detect() is not None


def missing_requirement(check: Check, available: Callable[[str], bool] = module_available, has_tensorrt: Callable[[], bool] = tensorrt_available) -> str | None:
    """Why `check` cannot run on this machine, or None."""
    missing = [name for name in check.requires if not available(name)]
    if check.requires_any and not any(available(name) for name in check.requires_any):
        missing.append(" or ".join(check.requires_any))
    if missing:
        return f"not installed: {', '.join(missing)}"
    if check.needs_tensorrt and not has_tensorrt():
        return "TensorRT is not installed here (enterprise TensorRT cannot be pip-installed offline; TensorRT-RTX has no sm_90)"
    return None


@dataclass
class Result:
    name: str
    title: str
    status: str
    seconds: float
    numbers: dict = field(default_factory=dict)
    reason: str = ""  # why SKIP or FAIL

    def to_json(self) -> dict:
        return {"name": self.name, "title": self.title, "status": self.status, "seconds": round(self.seconds, 2), "reason": self.reason, "numbers": self.numbers}


def schedule(
    checks: tuple[Check, ...] | list[Check],
    budget_s: float,
    run: Callable[[Check, float], Result],
    why_not: Callable[[Check], str | None] = missing_requirement,
    clock: Callable[[], float] = time.monotonic,
) -> list[Result]:
    """Run the checks in order. A check is skipped when something it needs is missing, or when the
    budget left is less than its estimate; `run(check, seconds_left)` must return within
    seconds_left (the caller enforces it with a timeout)."""
    start = clock()
    results = []
    for check in checks:
        reason = why_not(check)
        left = budget_s - (clock() - start)
        if reason is None and left < check.estimate_s:
            reason = f"budget: ~{check.estimate_s} s needed, {max(left, 0):.0f} s of --budget-s {budget_s:g} left"
        if reason is not None:
            results.append(Result(check.name, check.title, SKIP, 0.0, reason=reason))
            continue
        results.append(run(check, left))
    return results
