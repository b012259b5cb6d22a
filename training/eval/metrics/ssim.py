"""Structural similarity (Wang et al. 2004) of two RGB images, averaged over channels (higher is better).

The paper's settings, as scikit-image documents them for reproducing it: an 11x11 Gaussian window of
sigma 1.5, population (not sample) covariances, K1 = 0.01, K2 = 0.03, data range 255.
"""

from __future__ import annotations

import numpy as np

from mclrt.training.eval.metrics.l1 import _check_pair


def ssim(image: np.ndarray, reference: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    _check_pair(image, reference)
    return float(
        structural_similarity(
            reference, image, channel_axis=-1, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
    )
