"""Writing and composing result images: exact round trips, atomic writes, the titled results grid."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mclrt.runtime.errors import UserError
from mclrt.runtime.image_out import condition_to_rgb, results_grid, side_by_side, to_uint8_rgb, write_png


def _photo(index: int, size: int = 64) -> np.ndarray:
    from mclrt.runtime.inputs.conditions import package_photos

    return cv2.resize(package_photos()[index].rgb, (size, size), interpolation=cv2.INTER_AREA)


def test_png_round_trip_and_no_silent_overwrite(tmp_path):
    rgb = _photo(0)
    path = tmp_path / "a.png"
    write_png(path, rgb)
    np.testing.assert_array_equal(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB), rgb)
    with pytest.raises(UserError, match="already exists"):
        write_png(path, _photo(1))
    write_png(path, _photo(1), overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]  # no temporary file left behind


def test_model_range_to_uint8():
    chw = np.stack([np.full((2, 2), -1.0), np.zeros((2, 2)), np.full((2, 2), 2.0)]).astype(np.float32)
    assert to_uint8_rgb(chw)[0, 0].tolist() == [0, 128, 255]


def test_condition_renderings():
    edges = np.zeros((1, 8, 8), np.float32)
    edges[0, 3] = 1
    picture = condition_to_rgb(edges, "edge")
    assert picture[3].max() == 0 and picture[0].min() == 255  # black lines on white
    labels = np.zeros((4, 8, 8), np.float32)
    labels[2, :, 4:] = 1
    labels[0, :, :4] = 1
    picture = condition_to_rgb(labels, "label")
    assert picture[0, 0].tolist() == [0, 0, 0] and picture[0, 7].sum() > 0  # class 0 black, class 2 coloured


def test_results_grid_layout_and_titles():
    rows = [[_photo(i), _photo(i + 1, 40), _photo(i + 2, 100), _photo(i + 3)] for i in range(2)]
    grid = results_grid(rows, cell=64, gap=4, title_height=20)
    assert grid.shape == (20 + 2 * 64 + 3 * 4, 4 * 64 + 5 * 4, 3)
    header = grid[:20]
    for column in range(4):  # every column has a title drawn in black on white
        strip = header[:, 4 + column * 68 : 4 + column * 68 + 64]
        assert strip.min() < 100 and strip.max() == 255
    np.testing.assert_array_equal(grid[24 : 24 + 64, 4 : 4 + 64], rows[0][0])  # cells already at size stay exact
    with pytest.raises(ValueError, match="4 images"):
        results_grid([rows[0][:3]])
    # row labels: a text column first, the cells move right by its width
    labelled = results_grid(rows, cell=64, gap=4, title_height=20, row_labels=["one\ntwo", "three"], label_width=80)
    assert labelled.shape == (grid.shape[0], grid.shape[1] + 84, 3)
    np.testing.assert_array_equal(labelled[24 : 24 + 64, 88 : 88 + 64], rows[0][0])
    assert labelled[24 : 24 + 64, :80].min() < 100  # the label is drawn
    with pytest.raises(ValueError, match="row labels"):
        results_grid(rows, row_labels=["only one"])


def test_side_by_side_matches_heights():
    strip = side_by_side([_photo(0, 32), _photo(1, 64)], gap=2)
    assert strip.shape == (32, 32 + 2 + 32, 3)
