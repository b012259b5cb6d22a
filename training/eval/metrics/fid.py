"""Frechet Inception Distance (Heusel et al. 2017): the Frechet distance between Gaussians fitted to the
Inception pool features of the real and the generated images (lower is better). torchmetrics' formula,
in float64, on features from `mclrt.training.eval.inception`."""

from __future__ import annotations

import torch

from mclrt.training.eval.metrics._features import PrecomputedFeatures, as_features


def frechet_distance(real_features, fake_features) -> float:
    """|mu_r - mu_f|^2 + Tr(S_r + S_f - 2 (S_r S_f)^1/2) of features [N, D] (N >= 2 each)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    real, fake = as_features(real_features), as_features(fake_features)
    metric = FrechetInceptionDistance(feature=PrecomputedFeatures(real.shape[1]))
    metric.set_dtype(torch.float64)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    return float(metric.compute())
