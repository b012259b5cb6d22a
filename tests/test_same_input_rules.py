"""The same input rules in every command (issue 24): `--alpha flatten` wherever a person's pictures are
read (video frame folders, eval warp photos, quantize calibration photos), and `quantize
--continue-on-error` over a calibration folder with one bad photo.

Real package photos made transparent in a band, through the real CLI (in process); the flattened
pixels are checked against `flatten_alpha` on the same array.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from mclrt.runtime.cli import main
from mclrt.runtime.inputs.image_io import flatten_alpha, load_rgb
from mclrt.runtime.inputs.package_photos import package_photos
from model_dir_fixtures import build_tiny_model_dir, write_photo

WHITE = (255, 255, 255)


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rules")
    build_tiny_model_dir(root / "model")
    write_photo(root / "exemplar.png", index=1, size=64)
    return root


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def transparent_png(path: Path, index: int, size: int) -> np.ndarray:
    """A package photo as RGBA with a fully transparent band and a half-transparent one; returns the BGRA array written."""
    rgb = cv2.resize(package_photos()[index].rgb, (size, size), interpolation=cv2.INTER_AREA)
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    bgra = np.dstack([bgr, np.full(bgr.shape[:2], 255, np.uint8)])
    bgra[: size // 4, :, 3] = 0
    bgra[size // 4 : size // 2, :, 3] = 100
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), bgra)
    return bgra


def one_error(err: str, name: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and name in lines[0] and "--alpha flatten" in lines[0] and "Traceback" not in err, err
    return lines[0]


def test_loaders_flatten_exactly_as_flatten_alpha(tmp_path):
    from mclrt.runtime.video.sources import open_source

    bgra = transparent_png(tmp_path / "frames" / "f0.png", 0, 48)
    expected = flatten_alpha(bgra, WHITE)
    np.testing.assert_array_equal(load_rgb(tmp_path / "frames" / "f0.png", "white"), expected)
    with open_source(str(tmp_path / "frames"), alpha="white") as source:
        frame = next(source.frames(threading.Event()))
    np.testing.assert_array_equal(frame.rgb, expected)


# --- mclrt video: a folder of frames --------------------------------------------------------------------------


def test_video_refuses_transparent_frames_unless_flattened(ws, tmp_path, capsys):
    frames = tmp_path / "frames"
    arrays = [transparent_png(frames / f"f{i}.png", i, 64) for i in range(2)]
    args = ["video", "--model", ws / "model", "--source", frames, "--exemplar", ws / "exemplar.png", "--extract", "canny"]
    code, _, err = run(capsys, *args, "--out", tmp_path / "refused")
    assert code == 2, err
    one_error(err, "f0.png")
    assert not (tmp_path / "refused").exists()

    code, _, err = run(capsys, *args, "--out", tmp_path / "flat", "--alpha", "flatten")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "flat").iterdir()) == ["frame_000000.png", "frame_000001.png"]
    # The frames the pipeline translated are the flattened arrays: the same outputs as opaque copies of them.
    opaque = tmp_path / "opaque"
    opaque.mkdir()
    for i, bgra in enumerate(arrays):
        cv2.imwrite(str(opaque / f"f{i}.png"), cv2.cvtColor(flatten_alpha(bgra, WHITE), cv2.COLOR_RGB2BGR))
    code, _, err = run(capsys, "video", "--model", ws / "model", "--source", opaque, "--exemplar", ws / "exemplar.png", "--extract", "canny", "--out", tmp_path / "same")
    assert code == 0, err
    for name in ("frame_000000.png", "frame_000001.png"):
        np.testing.assert_array_equal(cv2.imread(str(tmp_path / "flat" / name)), cv2.imread(str(tmp_path / "same" / name)))


def test_video_flattens_a_transparent_exemplar_and_checks_the_colour_first(ws, tmp_path, capsys):
    frames = tmp_path / "frames"
    write_photo(frames / "f0.png", index=0, size=64)
    transparent_png(tmp_path / "clear.png", 1, 64)
    args = ["video", "--model", ws / "model", "--source", frames, "--exemplar", tmp_path / "clear.png", "--extract", "canny"]
    code, _, err = run(capsys, *args, "--out", tmp_path / "a")
    assert code == 2
    one_error(err, "clear.png")
    code, _, err = run(capsys, *args, "--out", tmp_path / "b", "--alpha", "flatten", "--alpha-colour", "puce")
    assert code == 2 and "--alpha-colour must be" in err and not (tmp_path / "b").exists(), err
    code, _, err = run(capsys, *args, "--out", tmp_path / "c", "--alpha", "flatten", "--alpha-colour", "#00ff00")
    assert code == 0, err


# --- mclrt eval warp ----------------------------------------------------------------------------------------------


def test_eval_warp_refuses_a_transparent_photo_unless_flattened(ws, tmp_path, capsys):
    from mclrt.runtime.model_dir import load_model_dir
    from mclrt.training.eval.photos import load_photos

    photos = tmp_path / "photos"
    size = load_model_dir(ws / "model").image_size
    bgra = transparent_png(photos / "clear.png", 2, size[0])
    write_photo(photos / "opaque.png", index=0, size=64)
    code, _, err = run(capsys, "eval", "warp", "--model", ws / "model", "--photos", photos)
    assert code == 2, err
    one_error(err, "clear.png")
    code, out, err = run(capsys, "eval", "warp", "--model", ws / "model", "--photos", photos, "--alpha", "flatten", "--json")
    assert code == 0, err
    assert json.loads(out)["photos"] == 2
    # At the model's own size the photo is used as read: exactly the flattened array.
    loaded = {photo.name: photo.rgb for photo in load_photos(str(photos), size, alpha="black")}
    np.testing.assert_array_equal(loaded["clear.png"], flatten_alpha(bgra, (0, 0, 0)))


# --- mclrt quantize -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nano(request) -> Path:
    return Path(request.getfixturevalue("nano_model_dir"))


def calib_folder(folder: Path, count: int) -> list[Path]:
    return [write_photo(folder / f"p{i}.png", index=i % 6, size=96) for i in range(count)]


def test_quantize_refuses_a_transparent_calibration_photo_unless_flattened(nano, tmp_path, capsys):
    from mclrt.calibration.calib_data import CalibrationImage, Preprocessor
    from mclrt.runtime.inputs.preprocess import photo_to_tensor, resize_photo
    from mclrt.runtime.model_dir import load_model_dir

    calib = tmp_path / "calib"
    calib_folder(calib, 2)
    bgra = transparent_png(calib / "p2.png", 3, 96)
    args = ["quantize", "--model", nano, "--calib", calib, "--no-sweep", "--encoding", "cpu", "--holdout", "1"]
    code, _, err = run(capsys, *args, "--out", tmp_path / "refused")
    assert code == 2, err
    line = one_error(err, "p2.png")
    assert line.startswith(f"error: {calib}: 1 of 3 photo(s) failed preprocessing"), line
    assert not (tmp_path / "refused").exists()
    code, _, err = run(capsys, *args, "--out", tmp_path / "flat", "--alpha", "flatten")
    assert code == 0, err
    report = json.loads((tmp_path / "flat" / "accuracy.json").read_text())
    assert report["calibration_set"]["skipped"] == 0 and report["calibration_set"]["images"] + 1 == 3
    # What calibration saw of that photo: the flattened array, preprocessed as infer would.
    model = load_model_dir(nano)
    prepared = Preprocessor(model, "white")(CalibrationImage(calib / "p2.png", ""))
    np.testing.assert_array_equal(prepared.exemplar, photo_to_tensor(resize_photo(flatten_alpha(bgra, WHITE), model.image_size)))


def test_quantize_continue_on_error_skips_a_garbage_photo_and_exits_3(nano, tmp_path, capsys):
    from mclrt.runtime.model_dir import load_model_dir

    calib = tmp_path / "calib"
    calib_folder(calib, 4)
    (calib / "p1x.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 40)  # a PNG that stops before IEND
    args = ["quantize", "--model", nano, "--calib", calib, "--no-sweep", "--encoding", "cpu", "--holdout", "2"]
    code, _, err = run(capsys, *args, "--out", tmp_path / "refused")
    assert code == 2 and not (tmp_path / "refused").exists(), err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "p1x.png" in lines[0] and "--continue-on-error" in lines[0], err

    out = tmp_path / "int8"
    code, stdout, err = run(capsys, *args, "--out", out, "--continue-on-error")
    assert code == 3, err
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("error: ")] == [
        f"error: {calib / 'p1x.png'}: is a truncated or damaged PNG (its chunks stop before IEND) (skipped)"
    ], err
    assert "1 photo(s) failed preprocessing and were skipped" in err
    assert "1 bad photo(s) skipped" in stdout
    report = json.loads((out / "accuracy.json").read_text())
    cset = report["calibration_set"]
    assert cset["skipped"] == 1 and cset["skipped_images"] == ["p1x.png"]
    assert cset["images"] == 2 and len(cset["holdout_images"]) == 2 and "p1x.png" not in cset["calibration_images"] + cset["holdout_images"]
    loaded = load_model_dir(out)
    assert loaded.manifest.precision == "int8-cpu"

    code, stdout, err = run(capsys, *args, "--out", tmp_path / "json", "--continue-on-error", "--json")
    assert code == 3, err
    assert json.loads(stdout)["report"]["calibration_set"]["skipped"] == 1


# --- mclrt eval images --------------------------------------------------------------------------------------------


def test_eval_images_refuses_a_transparent_image_unless_flattened(tmp_path, capsys):
    from mclrt.training.eval.images import read_folder

    pred, real = tmp_path / "pred", tmp_path / "real"
    for i in range(2):
        write_photo(real / f"x{i}.png", index=i, size=64)
    write_photo(pred / "x0.png", index=2, size=64)
    bgra = transparent_png(pred / "x1.png", 3, 64)
    args = ["eval", "images", "--pred", pred, "--real", real, "--metrics", "swd", "--json"]
    code, out, err = run(capsys, *args)
    assert code == 2, err
    assert "x1.png" in json.loads(out)["error"] and "--alpha flatten" in err
    code, out, err = run(capsys, *args, "--alpha", "flatten", "--alpha-colour", "grey")
    assert code == 0, err
    assert json.loads(out)["images"] == {"pred": 2, "real": 2}
    images, _ = read_folder(pred, None, "--pred", generated=True, alpha="grey")
    np.testing.assert_array_equal(images["x1"], flatten_alpha(bgra, (128, 128, 128)))
