"""Add the one library symlink TensorRT-RTX's ONNX parser needs (run by `make install`).

The `tensorrt-rtx-cu13-libs` wheel ships `libtensorrt_rtx.so.1` only, but the parser dlopen()s the
unversioned name `libtensorrt_rtx.so` when it imports a plugin node; without the link the process
aborts inside `parse()` (a C++ exception thrown through a noexcept path). The parser's RPATH is
$ORIGIN, so a link next to it is found. Doing nothing when TensorRT-RTX is not installed is correct.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path


def ensure_symlink() -> Path | None:
    spec = importlib.util.find_spec("tensorrt_rtx_libs")
    if spec is None or not spec.submodule_search_locations:
        return None
    libdir = Path(list(spec.submodule_search_locations)[0])
    target = libdir / "libtensorrt_rtx.so.1"
    link = libdir / "libtensorrt_rtx.so"
    if target.exists() and not link.exists():
        os.symlink(target.name, link)
    return link if link.exists() else None


def main() -> int:
    link = ensure_symlink()
    print(f"TensorRT-RTX: {link}" if link else "TensorRT-RTX not installed; nothing to do", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
