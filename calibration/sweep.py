"""Per-layer-group sensitivity: quantize one group at a time, everything else FP32, and measure.

Groups come from the exporter's module paths (placement.layer_group): the adaptors' strided convs and
SPADE blocks, the shared trunk, theta/phi, the generator's head, middle and up blocks, its attention,
its output conv, and the SPADE modulation MLPs. A group that costs many dB on its own is the one to
`--exclude`; the report prints the sweep next to the exclusion list for that reason.

The sweep re-uses the one calibration: every step is `quantize_static` from the same ranges with a
smaller node list. User exclusions are ignored here on purpose -- the sweep is what justifies them.
"""

from __future__ import annotations

import fnmatch
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from mclrt.calibration.accuracy import HeldOut, compare, run
from mclrt.calibration.encodings import Encoding, quantize_with_ort
from mclrt.calibration.placement import GraphPlan, select_nodes
from mclrt.runtime.model_dir import GRAPH_FILES, ModelDir
from mclrt.runtime.pipeline import Translation

GRAPHS = tuple(GRAPH_FILES)  # exemplar_encoder, translator


@dataclass(frozen=True)
class GroupSensitivity:
    group: str
    nodes: int  # quantized in this step, over both graphs
    psnr_db_mean: float
    psnr_db_min: float
    ssim_mean: float
    in_models: str  # "quantized", "partly excluded" or "excluded" (by --exclude) in the written models

    def to_dict(self) -> dict:
        return asdict(self)


def sweep(
    model: ModelDir,
    prepared: Mapping[str, Path],
    ranges: Mapping[str, Path],
    plans: Mapping[str, GraphPlan],
    method: str,
    encoding: Encoding,
    exclude: Sequence[str],
    held_out: HeldOut,
    fp32: Sequence[Translation],
    workdir: Path,
    only: Sequence[str] = (),
    threads: int = 0,
    progress: Callable[[str], None] = lambda message: None,
) -> list[GroupSensitivity]:
    """Sensitivity of every layer group (or those matching a pattern of `only`), in name order."""
    groups = sorted({node.group for plan in plans.values() for node in plan.nodes})
    if only:
        groups = [group for group in groups if any(fnmatch.fnmatchcase(group, pattern) for pattern in only)]
    results = []
    for number, group in enumerate(groups, 1):
        progress(f"sweep {number}/{len(groups)}: {group}")
        step = workdir / f"sweep-{number}"
        step.mkdir(parents=True)
        paths, quantized = {}, 0
        for graph in GRAPHS:
            nodes = select_nodes(plans[graph], encoding.quantize_outputs, only_groups=[group])
            if nodes:
                paths[graph] = step / f"{graph}.onnx"
                quantize_with_ort(prepared[graph], ranges[graph], method, encoding, nodes, paths[graph])
            else:
                paths[graph] = prepared[graph]
            quantized += len(nodes)
        if not quantized:
            shutil.rmtree(step)
            continue  # e.g. a group whose every conv feeds a normalization, under the CPU encoding
        accuracy = compare(held_out, fp32, run(model, paths["exemplar_encoder"], paths["translator"], held_out, threads))
        kept = sum(len(select_nodes(plans[graph], encoding.quantize_outputs, exclude, only_groups=[group])) for graph in GRAPHS)
        results.append(
            GroupSensitivity(
                group=group,
                nodes=quantized,
                psnr_db_mean=accuracy.psnr_db_mean,
                psnr_db_min=accuracy.psnr_db_min,
                ssim_mean=accuracy.ssim_mean,
                in_models="quantized" if kept == quantized else "excluded" if kept == 0 else "partly excluded",
            )
        )
        shutil.rmtree(step)
    return results

