"""Run the CorrespondenceSoftmax Triton kernel under TRITON_INTERPRET=1 on cases saved by a test.

    TRITON_INTERPRET=1 python tests/triton_interpret_worker.py cases.npz outputs.npz

A separate process because `@triton.jit` reads TRITON_INTERPRET when the kernel module is first
imported, and the test process (or another test in the same pytest worker) may already have
imported Triton without it. For every case `<name>` the input file holds `<name>/q`, `<name>/k`,
`<name>/v` and `<name>/attrs` = [scale, mask_negative]; the output file gets `<name>` = the kernel's
output. npz stores arrays contiguously, so a case flagged `<name>/strided` has its q and v turned
into non-contiguous views here, to exercise the kernel's stride arguments.
"""

from __future__ import annotations

import os
import sys

import numpy as np


def as_strided_view(a: np.ndarray) -> np.ndarray:
    """The same values as a non-contiguous view: feature stride B*N, row stride 1, batch stride N."""
    view = np.ascontiguousarray(a.transpose(2, 0, 1)).transpose(1, 2, 0)
    assert not view.flags.c_contiguous and view.strides[2] == a.shape[0] * a.shape[1] * a.itemsize
    return view


def main(cases_path: str, out_path: str) -> int:
    if os.environ.get("TRITON_INTERPRET") != "1":
        print("TRITON_INTERPRET=1 must be set", file=sys.stderr)
        return 2
    from mclrt.tools.kernel_interpret import interpret

    cases = np.load(cases_path)
    names = sorted({key.split("/")[0] for key in cases.files})
    outputs = {}
    for name in names:
        q, k, v = (cases[f"{name}/{part}"] for part in "qkv")
        scale, mask_negative = cases[f"{name}/attrs"]
        if f"{name}/strided" in cases.files:
            q, v = as_strided_view(q), as_strided_view(v)
        outputs[name] = interpret(q, k, v, scale=float(scale), mask_negative=bool(mask_negative))
    np.savez(out_path, **outputs)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
