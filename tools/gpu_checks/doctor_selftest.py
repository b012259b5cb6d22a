"""Check 7: `mclrt doctor --selftest` (TensorRT engines of the demo model vs ONNX Runtime).

NEVER RUN: written for the first GPU run (needs TensorRT).
"""

from __future__ import annotations

import subprocess
import sys

from mclrt.tools.gpu_checks import FAIL, PASS


def run(ctx) -> dict:
    command = [sys.executable, "-m", "mclrt.runtime.cli", "doctor", "--selftest"]
    env = {**ctx.child_env, "MCLRT_CACHE_DIR": str(ctx.work / "cache")}
    done = subprocess.run(command, capture_output=True, text=True, timeout=max(ctx.seconds_left - 5, 10), env=env)
    tail = (done.stdout + done.stderr).strip().splitlines()[-12:]
    return {"status": PASS if done.returncode == 0 else FAIL, "reason": "" if done.returncode == 0 else f"exit {done.returncode}", "exit_code": done.returncode, "output_tail": tail}
