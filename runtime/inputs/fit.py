"""Fitting an input of any aspect ratio into the model's fixed frame, and back.

The graphs take one fixed size (square for every preset). An input of another shape is fitted by:
- `crop` (the default of `mclrt infer` and `mclrt video`): the largest centred region of the model's
  aspect ratio, resized -- nothing is distorted, the borders of wide or tall inputs are left out;
- `pad`: the whole input resized to fit inside the frame (aspect kept), the rest filled -- photos by
  repeating their border pixels, condition maps with 0 (no edge, class 0) so no edge appears at the seam;
- `stretch`: the whole input resized to the frame, distorting its proportions (what every input got
  before these options existed).

A `Placement` records where the input landed, so an output can be put back at the input's aspect
ratio (`restore_aspect`): the padded frame is cropped to the input's region; a stretched output is
resized to the input's proportions. A cropped output shows only the centre square, so it has no other
aspect ratio to go back to.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import cv2
import numpy as np

from mclrt.runtime.errors import UserError

FIT_CHOICES = ("crop", "pad", "stretch")


class Fit(str, enum.Enum):
    """The commands' --fit choices."""

    crop = "crop"
    pad = "pad"
    stretch = "stretch"


@dataclass(frozen=True)
class Placement:
    """Where an input of `source` (height, width) landed in the model's `frame` (height, width)."""

    fit: str
    source: tuple[int, int]
    frame: tuple[int, int]
    box: tuple[int, int, int, int]  # the input's region in the frame: top, left, height, width


def check_fit(fit: str) -> None:
    if fit not in FIT_CHOICES:
        raise ValueError(f"unknown fit {fit!r}; choose one of {', '.join(FIT_CHOICES)}")


def check_keep_aspect(fit: str, keep_aspect: bool) -> None:
    """--keep-aspect needs a fit that keeps the whole input: a centre crop has only the square to give back."""
    check_fit(fit)
    if keep_aspect and fit == "crop":
        raise UserError("--keep-aspect needs --fit pad or --fit stretch (a centre crop keeps only the model's aspect ratio)")


def placement(source: tuple[int, int], frame: tuple[int, int], fit: str) -> Placement:
    check_fit(fit)
    height, width = frame
    if fit == "pad":
        scale = min(height / source[0], width / source[1])
        inner = (max(1, min(height, round(source[0] * scale))), max(1, min(width, round(source[1] * scale))))
        box = ((height - inner[0]) // 2, (width - inner[1]) // 2, *inner)
    else:
        box = (0, 0, height, width)
    return Placement(fit, (int(source[0]), int(source[1])), (height, width), box)


def centre_crop(array: np.ndarray, aspect: tuple[int, int]) -> np.ndarray:
    """The largest centred region of `array` ([H, W, ...]) with aspect ratio height:width = `aspect`."""
    height, width = array.shape[:2]
    crop_h = min(height, round(width * aspect[0] / aspect[1]))
    crop_w = min(width, round(height * aspect[1] / aspect[0]))
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    return array[top : top + crop_h, left : left + crop_w]


def fit_array(array: np.ndarray, frame: tuple[int, int], fit: str, interpolation: int, fill: str) -> tuple[np.ndarray, Placement]:
    """An image or map [H, W] / [H, W, C] fitted into `frame`; `fill` is "edge" (repeat border pixels,
    for photos) or "zero" (for condition maps)."""
    where = placement(array.shape[:2], frame, fit)
    if fit == "crop":
        array = centre_crop(array, frame)
    top, left, inner_h, inner_w = where.box
    resized = array if array.shape[:2] == (inner_h, inner_w) else cv2.resize(array, (inner_w, inner_h), interpolation=interpolation)
    if fit != "pad" or (inner_h, inner_w) == tuple(frame):
        return np.ascontiguousarray(resized), where
    bottom, right = frame[0] - top - inner_h, frame[1] - left - inner_w
    border = cv2.BORDER_REPLICATE if fill == "edge" else cv2.BORDER_CONSTANT
    padded = cv2.copyMakeBorder(resized, top, bottom, left, right, border, value=0)
    if padded.ndim < resized.ndim:  # copyMakeBorder drops a trailing channel axis of 1
        padded = padded[..., None]
    return np.ascontiguousarray(padded), where


def fit_photo(rgb: np.ndarray, frame: tuple[int, int], fit: str) -> tuple[np.ndarray, Placement]:
    """An RGB uint8 photo at the model's size (area interpolation), padded with its own border pixels."""
    return fit_array(rgb, frame, fit, cv2.INTER_AREA, "edge")


def fit_map(array: np.ndarray, frame: tuple[int, int], fit: str) -> tuple[np.ndarray, Placement]:
    """A condition map [H, W] or [L, H, W] at the model's size (nearest as PIL and CoCosNet sample it:
    INTER_NEAREST_EXACT, pixel centres), padded with 0."""
    if array.ndim == 2:
        return fit_array(array, frame, fit, cv2.INTER_NEAREST_EXACT, "zero")
    channels = [fit_array(channel, frame, fit, cv2.INTER_NEAREST_EXACT, "zero") for channel in array]
    return np.stack([c for c, _ in channels]), channels[0][1]


def pad_content(content: np.ndarray, where: Placement) -> np.ndarray:
    """A map [L, h, w] made from the input's own region -> the whole frame, 0 outside (the `pad` fit)."""
    top, left, inner_h, inner_w = where.box
    frame = np.zeros((content.shape[0], *where.frame), dtype=content.dtype)
    frame[:, top : top + inner_h, left : left + inner_w] = content
    return frame


def restore_aspect(image: np.ndarray, where: Placement) -> np.ndarray:
    """An output [H, W, 3] at the model's size -> the input's aspect ratio, at most the model's size
    on each side: the input's region of a padded frame, or a stretched frame resized back."""
    if where.fit == "crop":
        return image
    top, left, inner_h, inner_w = where.box
    if where.fit == "pad":
        return np.ascontiguousarray(image[top : top + inner_h, left : left + inner_w])
    back = placement(where.source, where.frame, "pad")  # the input's proportions inside the frame
    return cv2.resize(image, (back.box[3], back.box[2]), interpolation=cv2.INTER_AREA)


def output_size(where: Placement) -> tuple[int, int]:
    """(height, width) of what `restore_aspect` returns for this placement."""
    if where.fit == "crop":
        return where.frame
    back = where if where.fit == "pad" else placement(where.source, where.frame, "pad")
    return back.box[2], back.box[3]


def describe_fit(fit: str, keep_aspect: bool) -> str:
    """One line for the command's summary: which fit was used."""
    what = {
        "crop": "centre crop of each input to the model's aspect ratio",
        "pad": "each whole input padded to the model's aspect ratio",
        "stretch": "each whole input stretched to the model's size",
    }[fit]
    back = "; outputs at the input's aspect ratio" if keep_aspect and fit != "crop" else ""
    return f"fit {fit}: {what}{back}"


__all__ = [
    "FIT_CHOICES",
    "Fit",
    "Placement",
    "centre_crop",
    "check_fit",
    "check_keep_aspect",
    "describe_fit",
    "fit_array",
    "fit_map",
    "fit_photo",
    "output_size",
    "pad_content",
    "placement",
    "restore_aspect",
]
