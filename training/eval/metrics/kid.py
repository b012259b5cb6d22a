"""Kernel Inception Distance (Binkowski et al. 2018): the unbiased MMD^2 between real and generated
Inception features under the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random
subsets (lower is better). torchmetrics' estimator, on features from `mclrt.training.eval.inception`."""

from __future__ import annotations

import warnings

import torch

from mclrt.training.eval.metrics._features import PrecomputedFeatures, as_features

DEFAULT_SUBSETS = 100
DEFAULT_SUBSET_SIZE = 1000  # the KID paper's and torch-fidelity's; capped at the smaller set's size


def kernel_inception_distance(real_features, fake_features, subsets: int = DEFAULT_SUBSETS, subset_size: int | None = None, seed: int = 0) -> tuple[float, float]:
    """(mean, standard deviation) of the MMD^2 over `subsets` random subsets of `subset_size` samples."""
    from torchmetrics.image.kid import KernelInceptionDistance

    real, fake = as_features(real_features), as_features(fake_features)
    size = min(subset_size or DEFAULT_SUBSET_SIZE, real.shape[0], fake.shape[0])
    with warnings.catch_warnings():  # "will save all extracted features in buffer": that is what we hand it
        warnings.simplefilter("ignore", UserWarning)
        metric = KernelInceptionDistance(feature=PrecomputedFeatures(real.shape[1]), subsets=subsets, subset_size=size)
    metric.set_dtype(torch.float64)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    with torch.random.fork_rng():  # torchmetrics draws the subsets from the global generator
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)
