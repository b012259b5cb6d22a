"""Inputs of another aspect ratio than the model's: --fit crop|pad|stretch and --keep-aspect.

The pure functions are checked on arrays whose content shows where each pixel came from; `mclrt infer`
and `mclrt video` run as a user runs them, on a tiny real model directory and a wide photo.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from mclrt.runtime.inputs.conditions import package_photos
from mclrt.runtime.inputs.fit import fit_map, fit_photo, output_size, placement, restore_aspect
from mclrt.runtime.inputs.preprocess import condition_from_photo_placed
from model_dir_fixtures import build_tiny_model_dir


def run_cli(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mclrt.runtime.cli", *map(str, args)], capture_output=True, text=True, timeout=120)


def _ramp(height: int, width: int) -> np.ndarray:
    """uint8 [H, W, 3]: red = column, green = row (scaled to 0..255)."""
    columns = np.linspace(0, 255, width).round().astype(np.uint8)
    rows = np.linspace(0, 255, height).round().astype(np.uint8)
    return np.stack([np.broadcast_to(columns, (height, width)), np.broadcast_to(rows[:, None], (height, width)), np.zeros((height, width), np.uint8)], -1)


def test_crop_keeps_the_centre_and_pad_keeps_everything():
    wide = _ramp(100, 300)
    cropped, where = fit_photo(wide, (50, 50), "crop")
    assert cropped.shape == (50, 50, 3) and where.box == (0, 0, 50, 50)
    assert 80 < cropped[:, :, 0].min() and cropped[:, :, 0].max() < 175  # only the middle third (85..170) of the columns

    padded, where = fit_photo(wide, (60, 60), "pad")
    assert where.box == (20, 0, 20, 60) and padded.shape == (60, 60, 3)
    assert padded[20:40, :, 0].min() < 10 and padded[20:40, :, 0].max() > 245  # every column is there
    np.testing.assert_array_equal(padded[0], padded[20])  # photos are padded with their own border rows

    stretched, where = fit_photo(wide, (60, 60), "stretch")
    assert stretched.shape == (60, 60, 3) and where.box == (0, 0, 60, 60)

    edges = np.zeros((100, 300), np.uint8)
    edges[:, np.arange(300) % 10 < 5] = 255  # 5-px stripes: any nearest sampling of a 5x reduction hits some
    mapped, where = fit_map(edges, (60, 60), "pad")
    assert mapped[:20].max() == 0 and mapped[40:].max() == 0 and mapped[20:40].max() == 255  # maps pad with 0


def test_restore_aspect_gives_the_input_proportions_back():
    output = _ramp(60, 60)
    pad = placement((100, 300), (60, 60), "pad")
    assert restore_aspect(output, pad).shape == (20, 60, 3) == (*output_size(pad), 3)
    tall = placement((300, 100), (60, 60), "stretch")
    assert restore_aspect(output, tall).shape == (60, 20, 3) == (*output_size(tall), 3)
    crop = placement((100, 300), (60, 60), "crop")
    assert restore_aspect(output, crop).shape == (60, 60, 3)


def test_padded_photo_condition_draws_no_edge_at_the_seam():
    photo = package_photos()[1].rgb  # chelsea, 300 x 451
    condition, where = condition_from_photo_placed(photo, "canny", (64, 64), fit="pad")
    top, left, height, width = where.box
    assert condition.shape == (1, 64, 64) and (left, width) == (0, 64) and height < 64
    assert condition[:, :top].max() == 0 and condition[:, top + height :].max() == 0
    assert condition[:, top : top + height].mean() > 0.01


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fit")
    build_tiny_model_dir(root / "model")  # 32 x 32, canny
    wide = cv2.resize(package_photos()[1].rgb, (150, 100), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(root / "wide.png"), wide[:, :, ::-1])
    (root / "frames").mkdir()
    for index in range(2):
        cv2.imwrite(str(root / "frames" / f"f{index}.png"), np.roll(wide, 3 * index, axis=1)[:, :, ::-1])
    return root


@pytest.mark.parametrize("fit, keep, shape", [("crop", False, (32, 32)), ("pad", True, (21, 32)), ("stretch", True, (21, 32))])
def test_infer_fits_and_writes_at_the_input_aspect(ws, fit, keep, shape):
    out = ws / f"out-{fit}"
    extra = ["--keep-aspect"] if keep else []
    done = run_cli("infer", "--model", ws / "model", "--cond", ws / "wide.png", "--exemplar", ws / "wide.png",
                   "--extract", "canny", "--out", out, "--fit", fit, "--save-warp", *extra)
    assert done.returncode == 0, done.stderr
    assert f"fit {fit}:" in done.stdout
    assert cv2.imread(str(out / "wide.png")).shape[:2] == shape
    assert cv2.imread(str(out / "wide_warp.png")).shape[:2] == shape


def test_keep_aspect_with_a_centre_crop_is_refused_before_any_work(ws):
    out = ws / "refused"
    done = run_cli("infer", "--model", ws / "model", "--cond", ws / "wide.png", "--exemplar", ws / "wide.png",
                   "--extract", "canny", "--out", out, "--keep-aspect")
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "--fit pad" in done.stderr
    assert "Traceback" not in done.stderr and not out.exists()


def test_video_pads_frames_and_keeps_their_aspect(ws):
    out = ws / "video-frames"
    done = run_cli("video", "--model", ws / "model", "--source", ws / "frames", "--exemplar", ws / "wide.png",
                   "--out", out, "--fit", "pad", "--keep-aspect")
    assert done.returncode == 0, done.stderr
    assert "fit pad:" in done.stderr
    frames = sorted(out.glob("frame_*.png"))
    assert len(frames) == 2 and all(cv2.imread(str(f)).shape[:2] == (21, 32) for f in frames)
