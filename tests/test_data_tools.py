"""The data tools: `python -m mclrt.tools.retrieval_lists` and `python -m mclrt.tools.prepare_conditions`."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mclrt.runtime.inputs import conditions as C
from mclrt.runtime.fsutil import sha256_file
from mclrt.tools import prepare_conditions, retrieval_lists
from mclrt.training.data.lists import read_reference_list


@pytest.fixture(scope="module")
def photos():
    return {photo.name: photo.rgb for photo in C.package_photos()}


def write_rgb(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))


@pytest.fixture
def near_duplicates(tmp_path, photos):
    """Three pairs of near-duplicates (a crop and the same crop slightly shifted and brightened)."""
    folder = tmp_path / "images"
    for name in ("chelsea", "coffee", "rocket"):
        rgb = photos[name]
        write_rgb(folder / f"{name}_a.png", rgb[:256, :256])
        write_rgb(folder / "more" / f"{name}_b.png", np.clip(rgb[4:260, 3:259].astype(int) + 12, 0, 255).astype(np.uint8))
    return folder


def expected_partner(name: str) -> str:
    stem = name.split("/")[-1].rsplit("_", 1)[0]
    return f"more/{stem}_b.png" if name.endswith("_a.png") else f"{stem}_a.png"


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_nearest_neighbours_match_a_brute_force_cosine_ranking():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(50, 7)).astype(np.float32)
    got = retrieval_lists.nearest_neighbours(features, k=4, chunk=16)  # several chunks
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    for i in range(50):
        similarity = {j: float(unit[i] @ unit[j]) for j in range(50) if j != i}
        assert list(got[i]) == sorted(similarity, key=lambda j: -similarity[j])[:4]


def test_retrieval_list_with_pixel_features(near_duplicates, tmp_path, capsys):
    out = tmp_path / "ref.txt"
    assert retrieval_lists.main([str(near_duplicates), "--out", str(out), "--k", "3", "--features", "pixels"]) == 0
    parsed = read_reference_list(out)
    assert len(parsed.references) == 6
    for name, refs in parsed.references.items():
        assert len(refs) == 3 and name not in refs and len(set(refs)) == 3
        assert refs[0] == expected_partner(name)  # the easy exemplar is the near-duplicate
    assert out.read_text().splitlines()[0].count(",") == 3  # CoCosNet's comma-separated lines
    # existing output is kept unless --overwrite
    before = out.read_text()
    capsys.readouterr()
    assert retrieval_lists.main([str(near_duplicates), "--out", str(out), "--features", "pixels"]) == 2
    assert "already exists" in one_line_error(capsys) and out.read_text() == before
    assert retrieval_lists.main([str(near_duplicates), "--out", str(out), "--k", "2", "--features", "pixels", "--overwrite"]) == 0
    assert all(len(refs) == 2 for refs in read_reference_list(out).references.values())


def test_retrieval_list_errors(near_duplicates, tmp_path, capsys, monkeypatch):
    assert retrieval_lists.main([str(tmp_path / "nope"), "--out", str(tmp_path / "r.txt"), "--features", "pixels"]) == 2
    assert f"{tmp_path / 'nope'}: no such folder" in one_line_error(capsys)
    assert retrieval_lists.main([str(near_duplicates), "--out", str(tmp_path / "r.txt"), "--k", "6", "--features", "pixels"]) == 2
    assert "--k must be between 1 and" in one_line_error(capsys)
    # VGG without weights: the message says where to put them; no list is written
    monkeypatch.delenv("MCLRT_VGG19", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    assert retrieval_lists.main([str(near_duplicates), "--out", str(tmp_path / "r.txt")]) == 2
    assert "MCLRT_VGG19" in one_line_error(capsys)
    assert not (tmp_path / "r.txt").exists()


def test_retrieval_list_with_a_vgg_network(near_duplicates, tmp_path):
    """The VGG path end to end with a real VGG-19 trunk. No ImageNet weights exist offline, so the trunk
    has seeded random weights: near-duplicates still map to near-identical pooled features."""
    import torch
    from safetensors.torch import save_file

    from mclrt.training.vgg import VGG19, InputNormalization, VggFeatures

    torch.manual_seed(0)
    trunk = VggFeatures(VGG19, InputNormalization.IMAGENET_RGB)
    for module in trunk.features:
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight)
    weights = tmp_path / "random_vgg19.safetensors"
    save_file({key: value.contiguous() for key, value in trunk.state_dict().items()}, str(weights))
    features = retrieval_lists.vgg_features("vgg19", weights, sha256=sha256_file(weights))
    lines = retrieval_lists.build_retrieval_lists(near_duplicates, features, k=2, size=64)
    assert len(lines) == 6
    for name, refs in lines:
        assert refs[0] == expected_partner(name)


def test_prepare_edge_conditions(tmp_path, photos, capsys):
    folder = tmp_path / "photos"
    write_rgb(folder / "cat.png", photos["chelsea"])
    write_rgb(folder / "kitchen" / "cup.png", photos["coffee"])
    out = tmp_path / "edges"
    assert prepare_conditions.main([str(folder), "--out", str(out), "--kind", "edge"]) == 0
    for relative, name in (("cat.png", "chelsea"), ("kitchen/cup.png", "coffee")):
        written = cv2.imread(str(out / relative), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(written, (C.edge_map(photos[name])[0] * 255).astype(np.uint8))
    # nothing is replaced without --overwrite, and the check comes before any writing
    (out / "cat.png").unlink()
    capsys.readouterr()
    assert prepare_conditions.main([str(folder), "--out", str(out), "--size", "64"]) == 2
    assert "already exists" in one_line_error(capsys) and not (out / "cat.png").exists()
    assert prepare_conditions.main([str(folder), "--out", str(out), "--size", "64", "--overwrite"]) == 0
    assert cv2.imread(str(out / "kitchen" / "cup.png"), cv2.IMREAD_UNCHANGED).shape == (64, 64)
    assert not list(out.rglob("*.tmp*"))  # no temporary files left behind


@pytest.mark.skipif(C.mediapipe_available(), reason="mediapipe is installed here")
def test_prepare_face_and_pose_need_mediapipe(tmp_path, photos, capsys):
    write_rgb(tmp_path / "photos" / "a.png", photos["astronaut"])
    for kind in ("face", "pose"):
        assert prepare_conditions.main([str(tmp_path / "photos"), "--out", str(tmp_path / "out"), "--kind", kind]) == 2
        assert "pip install --no-deps mediapipe==0.10.21" in one_line_error(capsys)
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not C.mediapipe_available(), reason="needs mediapipe 0.10.21 (the [extract] extra)")
def test_prepare_pose_and_face_with_mediapipe(tmp_path, photos, capsys):
    folder = tmp_path / "img"
    write_rgb(folder / "astronaut.png", photos["astronaut"])
    write_rgb(folder / "coffee.png", photos["coffee"])
    assert prepare_conditions.main([str(folder), "--out", str(tmp_path / "pose"), "--kind", "pose"]) == 0
    assert "no person found in 1: coffee.png" in capsys.readouterr().err
    keypoints = C.read_candidate_subset(tmp_path / "pose" / "astronaut_candidate.txt", tmp_path / "pose" / "astronaut_subset.txt")
    assert np.allclose(keypoints, C.pose_keypoints_from_photo(photos["astronaut"]), atol=1e-3)
    assert not (tmp_path / "pose" / "coffee_candidate.txt").exists()
    assert prepare_conditions.main([str(folder), "--out", str(tmp_path / "face"), "--kind", "face"]) == 0
    assert "no face found (plain Canny) in 1: coffee.png" in capsys.readouterr().err
    written = cv2.imread(str(tmp_path / "face" / "astronaut.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(written, (C.edge_map(photos["astronaut"], face=True)[0] * 255).astype(np.uint8))
