"""Peak signal-to-noise ratio in dB, peak 255 (higher is better; identical images give infinity)."""

from __future__ import annotations

import numpy as np

from mclrt.training.eval.metrics.l1 import _check_pair


def psnr(image: np.ndarray, reference: np.ndarray) -> float:
    """10 log10(255^2 / MSE) over pixels and channels of two uint8 RGB images."""
    from skimage.metrics import peak_signal_noise_ratio

    _check_pair(image, reference)
    if np.array_equal(image, reference):
        return float("inf")  # scikit-image divides by zero here
    return float(peak_signal_noise_ratio(reference, image, data_range=255))
