"""The correspondence as a picture: for a few query points on the condition, where in the exemplar
they land (`mclrt eval warp --heatmaps DIR`).

One PNG per pseudo pair, one row of panels:
- the condition, with the query points numbered in their colours;
- the model's warped exemplar;
- per query point, the exemplar (greyed) under the attention of that point as a heat-map (bright =
  most weight), a circle in the point's colour at the attention's peak, and a white cross where the
  point truly is in the exemplar (known from the pair's transform; absent when it falls outside).
Query points sit at fixed fractions of the image, each moved to the nearest condition pixel that is
set (an edge, a limb) within 1/8 of the image, because a point on an empty patch has nothing to match.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mclrt.runtime.image_out import condition_to_rgb, results_grid
from mclrt.runtime.model_dir import ModelDir
from mclrt.training.eval.attention import Attention, correspondence_grid

QUERY_FRACTIONS = ((0.3, 0.3), (0.7, 0.3), (0.3, 0.7), (0.7, 0.7))  # (x, y) as fractions of width, height
QUERY_COLOURS = ((255, 64, 64), (64, 200, 64), (64, 128, 255), (255, 200, 0))
CELL = 192  # panel side in the PNG


@dataclass(frozen=True)
class QueryResult:
    point: tuple[int, int]  # (x, y) in the condition, model pixels
    peak: tuple[float, float]  # (x, y) in the exemplar where the attention peaks (centre of its cell)
    truth: tuple[float, float]  # (x, y) in the exemplar where the point truly is
    weights: np.ndarray  # float [rows, cols]: the attention over the exemplar's correspondence grid

    @property
    def error(self) -> float:
        """Distance from the peak to the true position, in model pixels."""
        return float(np.hypot(self.peak[0] - self.truth[0], self.peak[1] - self.truth[1]))


def query_points(condition: np.ndarray) -> list[tuple[int, int]]:
    """QUERY_FRACTIONS, each snapped to the nearest set condition pixel within 1/8 of the image."""
    height, width = condition.shape[1:]
    ys, xs = np.nonzero(condition.max(axis=0) > 0.5)
    reach = max(height, width) / 8
    points = []
    for fx, fy in QUERY_FRACTIONS:
        x, y = int(fx * width), int(fy * height)
        if len(xs):
            distance = np.hypot(xs - x, ys - y)
            nearest = int(distance.argmin())
            if distance[nearest] <= reach:
                x, y = int(xs[nearest]), int(ys[nearest])
        points.append((x, y))
    return points


def query_results(model: ModelDir, attention: Attention, condition: np.ndarray, truth_of) -> list[QueryResult]:
    """The attention of each query point; `truth_of(x, y)` gives its true (x, y) in the exemplar."""
    rows, cols, stride = correspondence_grid(model)
    points = query_points(condition)
    positions = np.array([(y // stride) * cols + x // stride for x, y in points])
    weights = attention.rows(0, positions).reshape(len(points), rows, cols)
    results = []
    for point, grid in zip(points, weights):
        r, c = np.unravel_index(int(grid.argmax()), grid.shape)
        peak = (c * stride + (stride - 1) / 2, r * stride + (stride - 1) / 2)
        results.append(QueryResult(point, peak, truth_of(*point), grid))
    return results


def heatmap_picture(model: ModelDir, condition: np.ndarray, exemplar: np.ndarray, warped: np.ndarray, queries: list[QueryResult]) -> np.ndarray:
    """The row of panels described above, RGB uint8."""
    height, width = model.image_size
    sx, sy = CELL / width, CELL / height

    def enlarged(rgb: np.ndarray) -> np.ndarray:
        return cv2.resize(rgb, (CELL, CELL), interpolation=cv2.INTER_NEAREST)

    def at(x: float, y: float) -> tuple[int, int]:
        return int(round((x + 0.5) * sx - 0.5)), int(round((y + 0.5) * sy - 0.5))

    first = enlarged(condition_to_rgb(condition, model.condition.kind))
    for i, query in enumerate(queries):
        colour = QUERY_COLOURS[i % len(QUERY_COLOURS)]
        cv2.circle(first, at(*query.point), 7, colour, 2, cv2.LINE_AA)
        cv2.putText(first, str(i + 1), (at(*query.point)[0] + 8, at(*query.point)[1] - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    panels, titles = [first, enlarged(warped)], ["condition + queries", "warped exemplar"]
    grey = np.repeat(cv2.cvtColor(enlarged(exemplar), cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2).astype(np.float32)
    for i, query in enumerate(queries):
        colour = QUERY_COLOURS[i % len(QUERY_COLOURS)]
        heat = cv2.resize((query.weights / query.weights.max()).astype(np.float32), (CELL, CELL), interpolation=cv2.INTER_NEAREST)
        coloured = cv2.cvtColor(cv2.applyColorMap(np.round(heat * 255).astype(np.uint8), cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)
        panel = np.round(0.35 * grey + 0.65 * coloured).astype(np.uint8)
        cv2.circle(panel, at(*query.peak), 7, colour, 2, cv2.LINE_AA)
        tx, ty = at(*query.truth)
        if 0 <= tx < CELL and 0 <= ty < CELL:
            cv2.drawMarker(panel, (tx, ty), (255, 255, 255), cv2.MARKER_CROSS, 14, 2, cv2.LINE_AA)
        panels.append(panel)
        titles.append(f"query {i + 1}: {query.error:.0f} px off")
    return results_grid([panels], titles=titles, cell=CELL)


def heatmap_path(folder: Path, photo_name: str, kind: str) -> Path:
    """`<photo path without suffix, / as __>_<kind>.png` in `folder`."""
    stem = Path(photo_name).with_suffix("").as_posix().replace("/", "__")
    return folder / f"{stem}_{kind}.png"
