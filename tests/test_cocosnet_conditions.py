"""mclrt's condition builders against CoCosNet's own data loaders, on the same inputs.

tests/fixtures/cocosnet_conditions/upstream.npz holds the condition tensors microsoft/CoCosNet's code
(HEAD de0c1bb: data/ade20k_dataset.py + pix2pix_dataset.py + models/pix2pix_model.py's one-hot,
data/celebahqedge_dataset.py, data/deepfashion_dataset.py, with upstream's TestOptions parser and the
README's test flags) computed from inputs/; see that folder's README.md. mclrt's code runs here on the
same files, through the functions `mclrt infer` and the training data sets call, at the presets' size.
Every comparison is exact: the maps are multiples of 1/255 on both sides.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mclrt.runtime.inputs import conditions as C
from mclrt.runtime.inputs.preprocess import ConditionSource, load_condition_placed
from mclrt.runtime.model_dir import ConditionSpec
from mclrt.training.config import load_model_config

FIXTURES = Path(__file__).parent / "fixtures" / "cocosnet_conditions"
INPUTS = FIXTURES / "inputs"
SIZE = (256, 256)


@pytest.fixture(scope="module")
def upstream():
    with np.load(FIXTURES / "upstream.npz") as data:
        return {key: data[key] for key in data.files}


def unpack_onehot(packed: np.ndarray, channels: int) -> np.ndarray:
    return np.unpackbits(packed, axis=0, count=channels).astype(np.float32)


def as_float(stored: np.ndarray) -> np.ndarray:
    return stored.astype(np.float32) / 255.0


@pytest.mark.parametrize("preset, kind, channels", [
    ("paper-ade20k", "label", 151), ("paper-celebahq-edge", "celeba-edge", 15), ("paper-deepfashion", "pose", 20),
])  # fmt: skip
def test_presets_take_upstream_size_and_channels(preset, kind, channels):
    config = load_model_config(preset)
    assert (config.image_size, config.condition_kind, config.label_nc) == (256, kind, channels)


@pytest.mark.parametrize("name", ["ade_256", "ade_311x203"])
def test_ade20k_onehot_equals_upstream(upstream, name):
    expected = unpack_onehot(upstream[f"{name}_onehot"], 151)
    spec = ConditionSpec(kind="label", channels=151, extract=None, maskmix=True)
    # `mclrt infer --cond labels.png` (and --exemplar-cond, the exemplar's map for maskmix) reads it so;
    # upstream resizes the label map to 256x256 whatever its aspect, which is --fit stretch.
    onehot, _ = load_condition_placed(ConditionSource(name, INPUTS / f"{name}.png"), spec, SIZE, fit="stretch")
    assert onehot.shape == expected.shape == (151, 256, 256)
    assert np.array_equal(onehot, expected)
    # Training's ADE20K data set resizes the ids with the same function.
    assert np.array_equal(C.resize_labels(C.load_label_png(INPUTS / f"{name}.png"), SIZE), upstream[f"{name}_ids"])


def test_ade20k_has_id_0_and_150(upstream):
    ids = C.load_label_png(INPUTS / "ade_256.png")
    assert ids.min() == 0 and ids.max() == 150 and len(np.unique(ids)) == 151
    assert upstream["ade_256_ids"].min() == 0 and upstream["ade_256_ids"].max() == 150


def test_celeba_edge_map_equals_upstream(upstream):
    expected = as_float(upstream["celeba"])
    photo = C.load_rgb(INPUTS / "celeba.png")  # 640 px; masks 320 px, both resized to 256 as upstream does
    masks = C.read_celeba_part_masks(INPUTS / "celeba.png")
    assert sorted(masks) == sorted(["skin", "hair", "l_brow", "r_brow", "l_eye", "r_eye", "nose", "u_lip", "mouth", "l_lip"])
    built = C.celeba_edge_map_resized(photo, masks, SIZE)
    assert built.shape == expected.shape == (15, 256, 256)
    assert np.array_equal(built, expected)
    # The absent parts (l_ear, r_ear, eye_g: channels 6, 7, 12) are all 1, on both sides.
    assert np.all(expected[[6, 7, 12]] == 1.0)
    assert expected[0].sum() > expected[14].sum() > 0  # the background Canny is there, the part edges too


def test_celeba_edge_cli_path_reads_photo_and_masks(upstream):
    spec = ConditionSpec(kind="celeba-edge", channels=15, extract=None, maskmix=True)
    for fit in ("stretch", "crop"):  # a square photo: crop is stretch
        built, _ = load_condition_placed(ConditionSource("celeba", INPUTS / "celeba.png"), spec, SIZE, fit=fit)
        assert np.array_equal(built, as_float(upstream["celeba"]))


def test_celeba_photo_without_masks_is_one_line_user_error(tmp_path):
    photo = tmp_path / "face.png"
    photo.write_bytes((INPUTS / "celeba.png").read_bytes())
    spec = ConditionSpec(kind="celeba-edge", channels=15, extract=None, maskmix=True)
    with pytest.raises(C.UserError) as err:
        load_condition_placed(ConditionSource("face", photo), spec, SIZE)
    assert "face.png" in str(err.value) and "part masks" in str(err.value) and "\n" not in str(err.value)


def test_pose_map_equals_upstream_at_model_size(upstream):
    spec = ConditionSpec(kind="pose", channels=20, extract=None, maskmix=False)
    source = ConditionSource("pose_256", INPUTS / "pose_256_candidate.txt", INPUTS / "pose_256_subset.txt")
    built, _ = load_condition_placed(source, spec, SIZE)
    expected = as_float(upstream["pose_256"])
    assert built.shape == expected.shape == (20, 256, 256)
    assert np.array_equal(built, expected)
    # keypoints 14 and 16 are missing: limbs 13 (0-14) and 14 (14-16) have no ellipse -> all 1.
    assert np.all(expected[3 + 13] == 1.0) and np.all(expected[3 + 14] == 1.0)


def test_pose_map_resized_from_photo_size_equals_upstream(upstream):
    # A 176x256 photo: drawn at its size, resized to 256x256 (training's DeepFashion data set does this).
    keypoints = C.read_candidate_subset(INPUTS / "pose_176x256_candidate.txt", INPUTS / "pose_176x256_subset.txt")
    built = C.pose_map_resized(keypoints, (256, 176), SIZE)
    assert np.array_equal(built, as_float(upstream["pose_176x256"]))


def test_openpose_json_gives_the_same_map(tmp_path, upstream):
    import json

    keypoints = C.read_candidate_subset(INPUTS / "pose_256_candidate.txt", INPUTS / "pose_256_subset.txt")
    flat = [float(v) for v in keypoints.reshape(-1)]
    (tmp_path / "person.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": flat}]}))
    spec = ConditionSpec(kind="pose", channels=20, extract=None, maskmix=False)
    built, _ = load_condition_placed(ConditionSource("person", tmp_path / "person.json"), spec, SIZE)
    assert np.array_equal(built, as_float(upstream["pose_256"]))


def test_pil_gray_is_pillows():
    pil = pytest.importorskip("PIL.Image")
    rgb = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    assert np.array_equal(C.pil_gray(rgb), np.asarray(pil.fromarray(rgb).convert("L")))


def test_runtime_conditions_do_not_import_torch():
    code = "import sys, mclrt.runtime.inputs.conditions, mclrt.runtime.inputs.preprocess; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
