"""The input limits every command shares (infer, video, eval, quantize and the Python API).

One set of rules, here, so that a picture one command refuses is not silently taken by another:
- size: an input is enlarged at most `MAX_ENLARGEMENT` times to reach the model's size (as fitted by
  `--fit`), and is never smaller than `MIN_SIDE` pixels a side. A 12x9 photo or a 1x1 PNG blown up to
  the model's size is blur the model never saw in training: refused with one line naming the file.
- channels: pictures are grey, RGB or RGBA (image_io.load_rgb; RGBA with transparency only with
  `--alpha flatten`); condition arrays have the model's channels (preprocess).
- emptiness: an edge map the extractor made from a photo with almost no edges (a dim or flat photo) or
  almost nothing but edges (noise) is still used, with one warning line naming the file.
"""

from __future__ import annotations

import math
import os

import numpy as np

from mclrt.runtime.errors import UserError
from mclrt.runtime.notices import warn

MAX_ENLARGEMENT = 2.0
MIN_SIDE = 8
# Shares of edge pixels outside which an extracted map is reported: Canny maps of photos hold roughly
# 3-15 % edges; below 0.2 % the photo gave the model almost nothing, above 50 % it is texture or noise.
NEAR_EMPTY_EDGES = 0.002
NEAR_FULL_EDGES = 0.5

_reported_extractions: set[str] = set()


def enlargement(shape: tuple[int, int], size: tuple[int, int], fit: str = "crop") -> float:
    """How many times an input of (height, width) `shape` is enlarged to fill the model's `size` under `fit`."""
    scales = (size[0] / max(1, shape[0]), size[1] / max(1, shape[1]))
    # crop and stretch fill the frame on both axes (the larger scale decides); pad fits the whole input inside.
    return min(scales) if fit == "pad" else max(scales)


def check_input_size(shape: tuple[int, int], size: tuple[int, int], path: str | os.PathLike | None, fit: str = "crop", what: str = "input") -> None:
    """Refuse an input too small for the model: smaller than MIN_SIDE, or enlarged more than MAX_ENLARGEMENT times."""
    height, width = int(shape[0]), int(shape[1])
    factor = enlargement((height, width), size, fit)
    if min(height, width) < MIN_SIDE or factor > MAX_ENLARGEMENT:
        need_h = max(MIN_SIDE, math.ceil(size[0] / MAX_ENLARGEMENT))
        need_w = max(MIN_SIDE, math.ceil(size[1] / MAX_ENLARGEMENT))
        raise UserError(
            f"{what} is {width}x{height}; a {size[1]}x{size[0]} model needs at least {need_w}x{need_h} (--fit {fit} would enlarge it "
            f"{factor:.1f}x, more than {MAX_ENLARGEMENT:g}x: blur the model never saw)",
            path,
        )


def warn_if_edges_degenerate(edges: np.ndarray, path: str | os.PathLike | None) -> None:
    """One warning line when an extracted edge map is nearly empty or nearly full (once per file)."""
    share = float(np.mean(edges > 0.5)) if edges.size else 0.0
    if NEAR_EMPTY_EDGES <= share <= NEAR_FULL_EDGES:
        return
    key = os.fspath(path) if path is not None else "<array>"
    if key in _reported_extractions:
        return
    _reported_extractions.add(key)
    if share < NEAR_EMPTY_EDGES:
        warn(
            f"the edge map extracted from this photo is almost empty ({share:.2%} edge pixels): the photo is too dim, "
            "flat or blurred for edges, and the output will show little of it",
            path,
        )
    else:
        warn(f"the edge map extracted from this photo is {share:.0%} edges (noise or fine texture): the output will be cluttered", path)
