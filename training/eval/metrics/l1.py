"""Mean absolute error between two RGB images, on the 0..255 scale (lower is better)."""

from __future__ import annotations

import numpy as np


def l1(image: np.ndarray, reference: np.ndarray) -> float:
    """mean |image - reference| over pixels and channels; uint8 [H, W, 3] in, grey levels out."""
    _check_pair(image, reference)
    return float(np.mean(np.abs(image.astype(np.float64) - reference.astype(np.float64))))


def _check_pair(image: np.ndarray, reference: np.ndarray) -> None:
    if image.shape != reference.shape or image.dtype != np.uint8 or reference.dtype != np.uint8:
        raise ValueError(f"expected two uint8 images of one shape, got {image.dtype} {image.shape} and {reference.dtype} {reference.shape}")
