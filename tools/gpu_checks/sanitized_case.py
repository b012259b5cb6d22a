"""One small launcher case, run under compute-sanitizer by the triton_native check (exit 0 = right result)."""

from __future__ import annotations

import sys

from mclrt.tools.gpu_checks.common import Buffers
from mclrt.tools.gpu_checks.launcher import launch_case

if __name__ == "__main__":
    row = launch_case(Buffers("cupy"), (2, 100, 70, 64, 3, "fp32", True), "cubin", seed=5)
    print(row)
    sys.exit(0 if row["ok"] else 1)
