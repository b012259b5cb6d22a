"""Input that is probably wrong gets one warning line on stderr, not silence; edge maps keep thin lines
when reduced; `infer --extract` defaults to the model's own extractor for photos.

Real files (package photos, their Canny edges, 16-bit PNGs) through the real `mclrt` commands on a tiny
exported-format model directory (32x32, extractor canny).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mclrt.runtime.cli import main
from mclrt.runtime.model_dir import load_model_dir
from mclrt.runtime.inputs.preprocess import ConditionSource, _edge_image_to_map, load_condition
from model_dir_fixtures import build_tiny_model_dir, write_edge_conditions, write_photo


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("warnings")
    build_tiny_model_dir(root / "model")
    write_edge_conditions(root / "conds", count=2)
    write_photo(root / "exemplar.jpg", index=1)
    photo = write_photo(root / "photo.png", index=0)
    grey = cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(root / "grey_photo.png"), grey)
    return root


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning: ")]


def _infer(ws, out, *args: str) -> int:
    return main(["infer", "--model", str(ws / "model"), "--exemplar", str(ws / "exemplar.jpg"), "--out", str(out), *args])


def test_a_one_pixel_line_survives_reduction_that_nearest_would_break():
    big = np.zeros((512, 512), np.uint8)
    big[203, 40:470] = 255  # horizontal, 1 px
    cv2.line(big, (10, 500), (500, 30), 255, 1)  # diagonal, 1 px
    reduced = _edge_image_to_map(big, (128, 128))[0][0] > 0  # (map [1, H, W], placement)
    assert reduced[203 // 4, 10:117].all()  # the horizontal line is unbroken
    count, _ = cv2.connectedComponents(reduced.astype(np.uint8), connectivity=8)
    assert count - 1 == 1  # one connected drawing (the two lines cross), no dotted pieces
    assert reduced.mean() < 0.03  # and it stays a line drawing, not a filled area
    # What nearest did before: most of the line is gone.
    nearest = cv2.resize(big, (128, 128), interpolation=cv2.INTER_NEAREST) > 127
    assert nearest[203 // 4].sum() < 10 and cv2.connectedComponents(nearest.astype(np.uint8), connectivity=8)[0] - 1 > 1


def test_grayscale_photo_given_as_an_edge_map_warns_with_extract_none(ws, tmp_path, capsys):
    assert _infer(ws, tmp_path / "none", "--cond", str(ws / "grey_photo.png"), "--extract", "none") == 0
    warnings = _warnings(capsys.readouterr().err)
    assert len(warnings) == 1 and "grey_photo.png: looks like a grayscale photo" in warnings[0] and "--extract canny" in warnings[0]
    # Real edge maps do not warn.
    assert _infer(ws, tmp_path / "maps", "--cond", str(ws / "conds"), "--extract", "none") == 0
    assert _warnings(capsys.readouterr().err) == []


def test_extract_defaults_to_the_models_own_extractor_for_photos_and_reads_maps_as_they_are(ws, tmp_path, capsys):
    for name, cond, extract in (("auto-photo", "grey_photo.png", None), ("canny", "grey_photo.png", "canny"),
                                ("auto-map", "conds", None), ("none", "conds", "none")):  # fmt: skip
        args = ["--cond", str(ws / cond)] + ([] if extract is None else ["--extract", extract])
        assert _infer(ws, tmp_path / name, *args) == 0
    assert _warnings(capsys.readouterr().err) == []
    for auto, explicit in (("auto-photo", "canny"), ("auto-map", "none")):
        files = sorted(p.name for p in (tmp_path / auto).iterdir())
        assert files == sorted(p.name for p in (tmp_path / explicit).iterdir()) and files
        for file in files:
            assert np.array_equal(cv2.imread(str(tmp_path / auto / file)), cv2.imread(str(tmp_path / explicit / file))), file


def test_a_16_bit_png_holding_8_bit_values_warns_and_is_read_as_8_bit(ws, tmp_path, capsys):
    model = load_model_dir(ws / "model")
    eight = sorted((ws / "conds").glob("*.png"))[0]
    sixteen = tmp_path / "edges16.png"
    cv2.imwrite(str(sixteen), cv2.imread(str(eight), cv2.IMREAD_GRAYSCALE).astype(np.uint16))
    assert cv2.imread(str(sixteen), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    got = load_condition(ConditionSource("e", sixteen), model.condition, model.image_size, "none")
    want = load_condition(ConditionSource("e", eight), model.condition, model.image_size, "none")
    assert got.any() and np.array_equal(got, want)  # not the empty map >> 8 made of it
    warnings = _warnings(capsys.readouterr().err)
    assert len(warnings) == 1 and "edges16.png: is a 16-bit image whose values all fit in 8 bits" in warnings[0]


def test_files_a_folder_scan_skips_are_named(ws, tmp_path, capsys):
    folder = tmp_path / "conds"
    folder.mkdir()
    for path in (ws / "conds").iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "notes.txt").write_text("not a condition")
    (folder / ".DS_Store").write_bytes(b"\0\0")
    assert _infer(ws, tmp_path / "out", "--cond", str(folder), "--extract", "none") == 0
    warnings = _warnings(capsys.readouterr().err)
    assert len(warnings) == 1 and warnings[0].startswith(f"warning: {folder}: skipped 2: .DS_Store, notes.txt")
    assert len(list((tmp_path / "out").iterdir())) == 2


def test_quantize_warns_when_calibrating_on_fewer_images_than_asked(ws, tmp_path, capsys):
    photos = tmp_path / "photos"
    for index in range(4):
        write_photo(photos / f"p{index}.png", index=index)
    (photos / "calib.txt").write_text("list")
    code = main(["quantize", "--model", str(ws / "model"), "--calib", str(photos), "--out", str(tmp_path / "q"),
                 "--no-sweep", "--holdout", "2", "--encoding", "cpu", "--num", "16", "--json"])  # fmt: skip
    assert code == 0
    warnings = _warnings(capsys.readouterr().err)
    assert any(f"{photos}: skipped 1: calib.txt" in w for w in warnings)
    assert any("calibrating on 2 image(s), fewer than --num 16 asked (4 photo(s) found, 2 held out)" in w for w in warnings)
    assert any("only 2 calibration image(s)" in w for w in warnings)


def test_an_edge_map_much_larger_than_the_model_warns_once_per_size(ws, tmp_path, capsys):
    from mclrt.runtime.inputs import preprocess

    preprocess._reported_edge_sizes.clear()  # "once per size" is per process: start from a clean slate
    model = load_model_dir(ws / "model")
    big = np.zeros((160, 160), np.uint8)
    big[80, 10:150] = 255
    paths = [tmp_path / "a.png", tmp_path / "b.png"]
    for path in paths:
        cv2.imwrite(str(path), big)
    maps = [load_condition(ConditionSource(p.stem, p), model.condition, model.image_size, "none") for p in paths]
    warnings = _warnings(capsys.readouterr().err)
    assert len(warnings) == 1 and "a.png: edge map 160x160 is 5.0x the model's 32x32" in warnings[0]
    assert maps[0][0, 16, 2:30].all() and maps[0].sum() == 28  # the line, whole and one pixel thick
