"""Image fidelity of INT8 against FP32: PSNR, SSIM, max abs error. numpy + OpenCV only.

All three work on images in [0, 1] (model outputs in [-1, 1] are mapped with (x + 1) / 2 and
clipped), channel-first [C, H, W]:
- PSNR = 10 log10(1 / MSE), capped at 100 dB (MSE < 1e-10, i.e. equal up to float rounding) so
  identical images give a finite number and the JSON stays valid;
- SSIM as Wang et al. 2004: Gaussian window 11x11 with sigma 1.5, C1 = (0.01)^2, C2 = (0.03)^2 for
  a data range of 1, population (not sample) variances, averaged over the "valid" region (the window
  fully inside the image, i.e. 5 pixels trimmed on each side) and then over channels -- the same
  definition as scikit-image's `structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1)`;
- max abs error in [0, 1] units (1/255 is one 8-bit grey level).
"""

from __future__ import annotations

import cv2
import numpy as np

PSNR_CAP_DB = 100.0
_WINDOW, _SIGMA = 11, 1.5
_C1, _C2 = 0.01**2, 0.03**2


def to_unit(image: np.ndarray) -> np.ndarray:
    """A model image in [-1, 1] -> float64 in [0, 1]."""
    return np.clip((np.asarray(image, np.float64) + 1.0) / 2.0, 0.0, 1.0)


def psnr(reference: np.ndarray, test: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(reference, np.float64) - np.asarray(test, np.float64)) ** 2))
    if mse < 10 ** (-PSNR_CAP_DB / 10):
        return PSNR_CAP_DB
    return float(10.0 * np.log10(1.0 / mse))


def max_abs_error(reference: np.ndarray, test: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(reference, np.float64) - np.asarray(test, np.float64))))


def _gaussian_filter_valid(channel: np.ndarray) -> np.ndarray:
    kernel_1d = cv2.getGaussianKernel(_WINDOW, _SIGMA, cv2.CV_64F)
    filtered = cv2.sepFilter2D(channel, cv2.CV_64F, kernel_1d, kernel_1d, borderType=cv2.BORDER_REFLECT)
    trim = _WINDOW // 2
    return filtered[trim:-trim, trim:-trim]


def ssim(reference: np.ndarray, test: np.ndarray) -> float:
    """Mean SSIM of two [C, H, W] images in [0, 1] (H and W at least 11)."""
    reference = np.asarray(reference, np.float64)
    test = np.asarray(test, np.float64)
    if reference.shape != test.shape or reference.ndim != 3:
        raise ValueError(f"expected two [C, H, W] images of one shape, got {reference.shape} and {test.shape}")
    if min(reference.shape[1:]) < _WINDOW:
        raise ValueError(f"SSIM needs images of at least {_WINDOW}x{_WINDOW}")
    scores = []
    for x, y in zip(reference, test):
        mu_x, mu_y = _gaussian_filter_valid(x), _gaussian_filter_valid(y)
        var_x = _gaussian_filter_valid(x * x) - mu_x * mu_x
        var_y = _gaussian_filter_valid(y * y) - mu_y * mu_y
        cov = _gaussian_filter_valid(x * y) - mu_x * mu_y
        numerator = (2 * mu_x * mu_y + _C1) * (2 * cov + _C2)
        denominator = (mu_x**2 + mu_y**2 + _C1) * (var_x + var_y + _C2)
        scores.append(float(np.mean(numerator / denominator)))
    return float(np.mean(scores))
