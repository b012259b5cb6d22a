"""Hands features that were already computed to torchmetrics' FID and KID, which otherwise run their
own network on images: both metrics then share one pass of the Inception network."""

from __future__ import annotations

import torch
from torch import nn


class PrecomputedFeatures(nn.Module):
    """The identity, with the `num_features` attribute torchmetrics reads instead of probing the network."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def as_features(features) -> torch.Tensor:
    features = torch.as_tensor(features, dtype=torch.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"expected features [N >= 2, D], got {tuple(features.shape)}")
    return features
