"""A video frame -> the model's condition map, float32 [L, H, W] in [0, 1] at the model's size.

`--extract canny|face|pose` draws the condition from each frame with the same code `mclrt infer`
uses for photos (`preprocess.condition_from_photo`). `--extract none` takes the frame as the
condition itself: an edge video (white lines on black, thresholded at 50 % after a nearest resize)
or a label video whose first channel holds class ids -- lossy codecs smear ids, so label maps should
come as a folder of PNGs. Pose (20 channels) and celeba-edge (15) maps cannot travel as RGB frames.
"""

from __future__ import annotations

import functools
from typing import Callable

import cv2
import numpy as np

from mclrt.runtime.inputs.conditions import MEDIAPIPE_INSTALL, mediapipe_available, onehot_labels
from mclrt.runtime.errors import UserError
from mclrt.runtime.model_dir import ConditionSpec
from mclrt.runtime.inputs.fit import fit_map
from mclrt.runtime.inputs.limits import check_input_size
from mclrt.runtime.inputs.preprocess import check_extract, check_invert, condition_from_photo, orient_edges


def condition_maker(
    spec: ConditionSpec, size: tuple[int, int], extract: str, fit: str = "stretch", invert: str = "auto"
) -> Callable[[np.ndarray], np.ndarray]:
    """The per-frame function for this model, --extract, --fit and --invert; refuses combinations that cannot work, up front."""
    check_extract(extract, spec)
    check_invert(invert)
    if extract in ("face", "pose") and not mediapipe_available():
        raise UserError(f"--extract {extract} needs mediapipe (the [extract] extra): {MEDIAPIPE_INSTALL}")
    if extract != "none":
        return functools.partial(condition_from_photo, extract=extract, size=size, fit=fit)
    if spec.kind == "edge":
        return functools.partial(edge_from_frame, size=size, fit=fit, invert=invert)
    if spec.kind == "label":
        return functools.partial(labels_from_frame, classes=spec.channels, size=size, fit=fit)
    hint = " (make them from photos with --extract pose)" if spec.kind == "pose" else ""
    raise UserError(
        f"this model's {spec.kind} condition has {spec.channels} channels, which frames of a video cannot carry{hint}"
    )


def edge_from_frame(rgb: np.ndarray, size: tuple[int, int], fit: str = "stretch", invert: str = "auto") -> np.ndarray:
    """An edge frame (white lines on black; a mostly white frame is inverted, per `invert`, as `mclrt infer`
    reads edge images) -> float32 [1, H, W] of 0/1."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    check_input_size(gray.shape[:2], size, None, fit, "frame")
    gray = fit_map(orient_edges(gray, invert), size, fit)[0]
    return (gray > 127).astype(np.float32)[None]


def labels_from_frame(rgb: np.ndarray, classes: int, size: tuple[int, int], fit: str = "stretch") -> np.ndarray:
    """A label frame (class ids in the first channel) -> one-hot float32 [classes, H, W]."""
    ids = fit_map(np.ascontiguousarray(rgb[:, :, 0]), size, fit)[0]
    return onehot_labels(ids, classes)
