"""Building on a Jetson, where memory is unified (the GPU allocates from the same RAM): a workspace cap
for the board's RAM and a check of free RAM + swap before a build starts, instead of the out-of-memory
killer halfway through it. Called by the builder (mclrt.runtime.trt.builder) at the start of a build;
off a Jetson it changes nothing.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from mclrt.runtime.errors import UserError
from mclrt.runtime.jetson import facts as jetson
from mclrt.runtime.model_dir import ModelDir

GRAPHS = ("exemplar_encoder", "translator")
# Expected peak of a build beyond the workspace: TensorRT's libraries and tactic scratch, plus the parser's
# and builder's copies of the weights (3x the ONNX). An estimate from published out-of-memory reports on
# 4-8 GB boards (builds "Killed"); never measured on a board by this project.
BUILDER_BASE_BYTES = 1536 << 20
WEIGHT_COPIES = 3


def jetson_workspace_cap(total_ram_bytes: int) -> int | None:
    """Default workspace limit on a Jetson without --workspace: 1 GiB on 8 GB boards, 2 GiB on 16 GB, none above."""
    if total_ram_bytes <= 8 << 30:
        return 1 << 30
    if total_ram_bytes <= 16 << 30:
        return 2 << 30
    return None


def check_build_memory(model: ModelDir, workspace_bytes: int | None, memory: jetson.Memory) -> None:
    """Refuse, in one line, a build that would not fit in free RAM + swap."""
    weights = sum(model.graph_path(graph).stat().st_size for graph in GRAPHS)
    needed = BUILDER_BASE_BYTES + WEIGHT_COPIES * weights + (workspace_bytes or 0)
    free = memory.available_bytes + memory.swap_free_bytes
    if needed > free:
        raise UserError(
            f"not enough memory for a TensorRT build here: about {needed / 2**30:.1f} GiB needed, {free / 2**30:.1f} GiB RAM + swap free "
            "(close other programs, add swap, lower --workspace, or pass --skip-memory-check)",
            model.path,
        )


def plan_for_jetson(resolved, model: ModelDir, options, root: Path = Path("/")):
    """builder.ResolvedBuild with the workspace capped for the board (unless --workspace), after the RAM + swap
    check (unless --skip-memory-check); `resolved` unchanged off a Jetson. (`resolved` and `options` are the
    builder's ResolvedBuild and BuildOptions; not imported here, the builder imports this module.)"""
    if not jetson.is_jetson(root):
        return resolved
    memory = jetson.read_memory(root)
    if memory is None:
        return resolved
    if options.workspace_mb is None:
        resolved = replace(resolved, workspace_bytes=jetson_workspace_cap(memory.total_bytes))
    if not options.skip_memory_check:
        check_build_memory(model, resolved.workspace_bytes, memory)
    return resolved
