"""Sliced Wasserstein distance between the local patch statistics of two image sets (Karras et al. 2018,
"Progressive Growing of GANs", appendix D), as CoCosNet and MATEBIT report it (lower is better).

Per image: a Laplacian pyramid from full resolution down to 16 px; at every level, `patches_per_image`
random 7x7x3 neighbourhoods. Per level and set: the descriptors are normalized per colour channel (each
set by its own mean and standard deviation, as the reference code does), then the sliced Wasserstein
distance -- the mean over random unit directions of the 1-D Wasserstein-1 distance between the two sets
projected on it (sorted projections, mean absolute difference) -- with 4 x 128 directions. The score is
the mean over levels, x 1e3 (the papers' unit).

No library offers this image-pyramid SWD; the projection core is the few lines of `sliced_wasserstein`.
"""

from __future__ import annotations

import cv2
import numpy as np

PATCH = 7
MIN_LEVEL_SIZE = 16


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, directions: int = 512, seed: int = 0) -> float:
    """Mean over random unit directions of W1 between the projections of a [N, D] and b [N, D] (equal N)."""
    if a.shape != b.shape:
        raise ValueError(f"expected two sets of one shape, got {a.shape} and {b.shape}")
    rng = np.random.default_rng(seed)
    dirs = rng.standard_normal((a.shape[1], directions))
    dirs /= np.linalg.norm(dirs, axis=0, keepdims=True)
    projected_a = np.sort(a @ dirs, axis=0)
    projected_b = np.sort(b @ dirs, axis=0)
    return float(np.mean(np.abs(projected_a - projected_b)))


def laplacian_pyramid(rgb: np.ndarray) -> list[np.ndarray]:
    """float32 levels, full resolution first, down to the first level whose shorter side is <= 16 px."""
    levels, current = [], rgb.astype(np.float32)
    while min(current.shape[:2]) > MIN_LEVEL_SIZE:
        smaller = cv2.pyrDown(current)
        levels.append(current - cv2.pyrUp(smaller, dstsize=(current.shape[1], current.shape[0])))
        current = smaller
    levels.append(current)
    return levels


def _descriptors(images: list[np.ndarray], level: int, per_image: int, rng: np.random.Generator) -> np.ndarray:
    found = []
    for rgb in images:
        layer = laplacian_pyramid(rgb)[level]
        height, width = layer.shape[:2]
        ys = rng.integers(0, height - PATCH + 1, per_image)
        xs = rng.integers(0, width - PATCH + 1, per_image)
        found.append(np.stack([layer[y : y + PATCH, x : x + PATCH] for y, x in zip(ys, xs)]))
    patches = np.concatenate(found)  # [N, 7, 7, 3]
    patches = (patches - patches.mean(axis=(0, 1, 2))) / (patches.std(axis=(0, 1, 2)) + 1e-8)
    return patches.reshape(len(patches), -1)


def swd(real: list[np.ndarray], fake: list[np.ndarray], patches_per_image: int = 128, seed: int = 0) -> float:
    """SWD x 1e3 between two lists of RGB uint8 images of one size (the lists may differ in length:
    the larger set's descriptors are subsampled to the smaller's count)."""
    shapes = {image.shape for image in [*real, *fake]}
    if len(shapes) != 1:
        raise ValueError(f"every image must have one size, got {sorted(shapes)}")
    if min(shapes.pop()[:2]) < 2 * PATCH:
        raise ValueError("images must be at least 14 px on each side")
    scores = []
    for level in range(len(laplacian_pyramid(real[0]))):
        # The same patch positions in the i-th image of both sets: a set against itself scores exactly 0.
        a = _descriptors(real, level, patches_per_image, np.random.default_rng((seed, level)))
        b = _descriptors(fake, level, patches_per_image, np.random.default_rng((seed, level)))
        count = min(len(a), len(b))
        pick = np.random.default_rng((seed, level, 1))
        a, b = a[pick.permutation(len(a))[:count]], b[pick.permutation(len(b))[:count]]
        scores.append(sliced_wasserstein(a, b, seed=seed + level))
    return float(np.mean(scores)) * 1e3
