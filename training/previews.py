"""Image grids for TensorBoard: condition | exemplar | warped exemplar | output | ground truth, one row per sample."""

from __future__ import annotations

import torch

from mclrt.training.config import ConditionKind


def _palette(classes: int) -> torch.Tensor:
    """A fixed colour per class id (a golden-ratio hue walk, so neighbouring ids differ), [classes, 3] in [0, 1]."""
    hues = (torch.arange(classes, dtype=torch.float32) * 0.618034) % 1.0
    k = (torch.tensor([5.0, 3.0, 1.0]) + hues[:, None] * 6.0) % 6.0
    rgb = 1.0 - 0.8 * torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)
    rgb[0] = 0.0  # "unknown" (ADE20K id 0) in black
    return rgb


def condition_rgb(condition: torch.Tensor, kind: ConditionKind) -> torch.Tensor:
    """A condition map [B,L,H,W] as RGB in [0, 1] for display."""
    if kind == "label":
        ids = condition.argmax(dim=1)  # [B,H,W]
        return _palette(condition.shape[1]).to(condition.device)[ids].permute(0, 3, 1, 2)
    if kind == "pose":
        return condition[:, :3].clamp(0, 1)  # the rendered RGB skeleton
    # edge maps: channel 0 is the (union of all) edges
    return condition[:, :1].clamp(0, 1).expand(-1, 3, -1, -1)


def preview_grid(
    condition: torch.Tensor,
    exemplar: torch.Tensor,
    warped: torch.Tensor,
    output: torch.Tensor,
    ground_truth: torch.Tensor,
    kind: ConditionKind,
    max_rows: int = 4,
) -> torch.Tensor:
    """[3, rows*H, 5*W] in [0, 1]; images in [-1, 1] are mapped to [0, 1]."""

    def unit(x: torch.Tensor) -> torch.Tensor:
        return ((x[:max_rows].detach().float() + 1.0) / 2.0).clamp(0, 1).cpu()

    columns = [condition_rgb(condition[:max_rows].detach().float(), kind).cpu(), unit(exemplar), unit(warped), unit(output), unit(ground_truth)]
    rows = torch.cat(columns, dim=3)  # [B,3,H,5W]
    return torch.cat(list(rows), dim=1)


__all__ = ["preview_grid", "condition_rgb"]
