"""Turning model tensors into pictures: PNG files (written atomically), condition renderings, and the
results grid (condition | exemplar | warped exemplar | output) with column titles.

Reading images is `mclrt.runtime.inputs.image_io`'s job; this module only writes and composes.
"""

from __future__ import annotations

import os
from typing import Sequence

import cv2
import numpy as np

from mclrt.runtime.fsutil import atomic_write_bytes


def to_uint8_rgb(chw: np.ndarray) -> np.ndarray:
    """A model image [3, H, W] in [-1, 1] -> RGB uint8 [H, W, 3] (values outside the range are clipped)."""
    chw = np.asarray(chw, np.float32)
    if chw.ndim != 3 or chw.shape[0] != 3:
        raise ValueError(f"expected an image [3, H, W], got {chw.shape}")
    scaled = np.clip((chw.transpose(1, 2, 0) + 1.0) * 127.5, 0, 255)
    return np.round(scaled).astype(np.uint8)


def label_palette(num_classes: int) -> np.ndarray:
    """Distinct, fixed colours per class id (uint8 [num_classes, 3]); id 0 ("unknown") is black."""
    hues = (np.arange(num_classes) * 0.618033988749895) % 1.0  # golden-ratio steps keep neighbours apart
    hsv = np.stack([hues * 179, np.full(num_classes, 200), np.full(num_classes, 230)], axis=1).astype(np.uint8)
    rgb = cv2.cvtColor(hsv[None], cv2.COLOR_HSV2RGB)[0]
    rgb[0] = 0
    return rgb


def condition_to_rgb(condition: np.ndarray, kind: str) -> np.ndarray:
    """A condition map [L, H, W] in [0, 1] as a picture a person can read (RGB uint8 [H, W, 3]).

    edge: black lines on white; label: one colour per class; pose: its RGB skeleton channels;
    celeba-edge: its all-edges channel.
    """
    condition = np.asarray(condition, np.float32)
    if kind == "label":
        return label_palette(condition.shape[0])[condition.argmax(axis=0)]
    if kind == "pose":
        return np.round(np.clip(condition[:3].transpose(1, 2, 0), 0, 1) * 255).astype(np.uint8)
    lines = condition[0]  # edge, celeba-edge: channel 0 holds every edge
    gray = np.round((1.0 - np.clip(lines, 0, 1)) * 255).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)


def encode_png(rgb: np.ndarray) -> bytes:
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected RGB uint8 [H, W, 3], got {rgb.dtype} {rgb.shape}")
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("OpenCV could not encode a PNG")
    return data.tobytes()


def write_png(path: str | os.PathLike, rgb: np.ndarray, overwrite: bool = False) -> None:
    """Write RGB uint8 as PNG through a temporary file and a rename: never a partial file."""
    atomic_write_bytes(path, encode_png(rgb), overwrite=overwrite)


def fit(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to (height, width): area when shrinking, nearest when enlarging (keeps edges crisp)."""
    height, width = size
    if rgb.shape[:2] == (height, width):
        return rgb
    shrinking = rgb.shape[0] > height or rgb.shape[1] > width
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_NEAREST)


def labelled(panel: np.ndarray, label: str, height: int = 18) -> np.ndarray:
    """`panel` (RGB uint8) under a white strip holding `label` in black, scaled to fit its width."""
    font, thickness = cv2.FONT_HERSHEY_SIMPLEX, 1
    width = panel.shape[1]
    scale = 0.4
    (text_width, text_height), _ = cv2.getTextSize(label, font, scale, thickness)
    if text_width > width - 4:
        scale *= (width - 4) / text_width
        (text_width, text_height), _ = cv2.getTextSize(label, font, scale, thickness)
    strip = np.full((height, width, 3), 255, np.uint8)
    cv2.putText(strip, label, (max(2, (width - text_width) // 2), (height + text_height) // 2), font, scale, (0, 0, 0), thickness, cv2.LINE_AA)
    return np.concatenate([strip, np.asarray(panel, np.uint8)], axis=0)


def condition_as_input(condition: np.ndarray, kind: str) -> np.ndarray:
    """The map the model saw, written so `mclrt infer` reads it back as it was: an edge map as white
    lines on black (its input format); other kinds as `condition_to_rgb` draws them."""
    if kind == "edge":
        gray = np.round(np.clip(np.asarray(condition, np.float32)[0], 0, 1) * 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    return condition_to_rgb(condition, kind)


def side_by_side(panels: Sequence[np.ndarray], gap: int = 4, background: int = 255) -> np.ndarray:
    """Panels of one height next to each other, separated by a gap."""
    height = panels[0].shape[0]
    spacer = np.full((height, gap, 3), background, np.uint8)
    pieces: list[np.ndarray] = []
    for i, panel in enumerate(panels):
        if i:
            pieces.append(spacer)
        pieces.append(fit(panel, (height, int(round(panel.shape[1] * height / panel.shape[0])))))
    return np.concatenate(pieces, axis=1)


def results_grid(
    rows: Sequence[Sequence[np.ndarray]],
    titles: Sequence[str] = ("condition", "exemplar", "warped exemplar", "output"),
    cell: int = 256,
    gap: int = 4,
    title_height: int = 28,
    row_labels: Sequence[str] | None = None,
    label_width: int = 250,
) -> np.ndarray:
    """One picture of several results: a row per result, a column per title, titles on top.

    Every cell is an RGB uint8 image, fitted to cell x cell. With `row_labels` (one per row; lines
    separated by newlines) a column of that text comes first. Returns RGB uint8.
    """
    if not rows or any(len(row) != len(titles) for row in rows):
        raise ValueError(f"every row needs {len(titles)} images (one per title)")
    if row_labels is not None and len(row_labels) != len(rows):
        raise ValueError(f"{len(rows)} rows but {len(row_labels)} row labels")
    offset = label_width + gap if row_labels is not None else 0
    columns = len(titles)
    width = offset + columns * cell + (columns + 1) * gap
    height = title_height + len(rows) * cell + (len(rows) + 1) * gap
    canvas = np.full((height, width, 3), 255, np.uint8)
    font, scale, thickness = cv2.FONT_HERSHEY_SIMPLEX, 0.55, 1
    for c, title in enumerate(titles):
        (text_width, text_height), _ = cv2.getTextSize(title, font, scale, thickness)
        x = offset + gap + c * (cell + gap) + max(0, (cell - text_width) // 2)
        y = (title_height + text_height) // 2
        cv2.putText(canvas, title, (x, y), font, scale, (0, 0, 0), thickness, cv2.LINE_AA)
    for r, row in enumerate(rows):
        top = title_height + gap + r * (cell + gap)
        if row_labels is not None:
            for line_number, line in enumerate(row_labels[r].splitlines()):
                y = top + 24 + line_number * 24
                cv2.putText(canvas, line, (gap, y), font, scale, (0, 0, 0), thickness, cv2.LINE_AA)
        for c, image in enumerate(row):
            left = offset + gap + c * (cell + gap)
            canvas[top : top + cell, left : left + cell] = fit(np.asarray(image, np.uint8), (cell, cell))
    return canvas
