"""Training datasets (mclrt.training.data) on small layouts built here from package photos.

Each fixture writes a few real files in the published layout of its dataset (ADEChallengeData2016,
CelebAMask-HQ, DeepFashion + CoCosNet's list files); nothing is downloaded.
"""

from __future__ import annotations

import collections

import cv2
import numpy as np
import pytest
import torch

from mclrt.runtime.inputs import conditions as C
from mclrt.runtime.errors import UserError
from mclrt.training.data import (
    ADE20KConfig,
    ADE20KDataset,
    CelebAHQEdgeConfig,
    CelebAHQEdgeDataset,
    DeepFashionConfig,
    DeepFashionDataset,
    PhotosConfig,
    PhotosDataset,
    build_dataset,
)
from mclrt.training.data.deepfashion import pose_paths
from mclrt.training.data.sampling import Crop, ExemplarKind, choose_exemplar

SIZE = 32  # image_size of every test dataset; load size 36 (286/256)


@pytest.fixture(scope="module")
def photos():
    return [photo.rgb for photo in C.package_photos()]


def crop_of(rgb: np.ndarray, y: int, x: int, height: int, width: int) -> np.ndarray:
    return np.ascontiguousarray(rgb[y : y + height, x : x + width])


def write_rgb(path, rgb, jpeg=True):
    path.parent.mkdir(parents=True, exist_ok=True)
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    assert cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95] if jpeg else [])


def find_crops(full: np.ndarray, window: np.ndarray) -> list[Crop]:
    """Every crop (offset, flip) of `full` [C, S, S] equal to `window` [C, s, s]."""
    size, load = window.shape[-1], full.shape[-1]
    return [
        crop
        for y in range(load - size + 1)
        for x in range(load - size + 1)
        for crop in (Crop(x, y, size, False), Crop(x, y, size, True))
        if np.allclose(crop.apply(full), window, atol=1e-6)
    ]


def as_image(rgb_chw_uint8: np.ndarray) -> np.ndarray:
    return rgb_chw_uint8.astype(np.float32) / 127.5 - 1.0


# --- ADE20K ----------------------------------------------------------------------------------------

ADE_TRAIN = [f"ADE_train_{i:08d}.jpg" for i in range(1, 5)]
ADE_VAL = [f"ADE_val_{i:08d}.jpg" for i in range(1, 3)]


def random_labels(rng, height, width) -> np.ndarray:
    ids = np.zeros((height, width), np.uint8)
    for _ in range(6):
        y, x = rng.integers(0, height - 4), rng.integers(0, width - 4)
        ids[y : y + rng.integers(4, height), x : x + rng.integers(4, width)] = rng.integers(1, 151)
    return ids


@pytest.fixture
def ade_root(tmp_path, photos):
    root = tmp_path / "ADEChallengeData2016"
    rng = np.random.default_rng(0)
    for split, folder, names in (("train", "training", ADE_TRAIN), ("val", "validation", ADE_VAL)):
        for i, name in enumerate(names):
            photo = photos[i % len(photos)]
            height, width = 40 + 4 * i, 52 - 3 * i  # ADE20K images have any aspect ratio
            write_rgb(root / "images" / folder / name, crop_of(photo, 100, 100, height, width))
            label = root / "annotations" / folder / name.replace(".jpg", ".png")
            label.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(label), random_labels(rng, height, width))
    # easy (first), a middle one, hard (last): all different, so the choice is visible in the name
    lines = [f"{name}," + ",".join(ADE_TRAIN[(i + k) % 4] for k in (1, 2, 3)) for i, name in enumerate(ADE_TRAIN)]
    (root / "ade20k_ref.txt").write_text("\n".join(lines) + "\n")
    (root / "ade20k_ref_test.txt").write_text("".join(f"{name},{ADE_TRAIN[i]},{ADE_TRAIN[i + 1]}\n" for i, name in enumerate(ADE_VAL)))
    return root


def test_ade20k_sample_is_an_aligned_one_hot_crop(ade_root):
    dataset = ADE20KDataset(ADE20KConfig(root=ade_root, image_size=SIZE))
    assert len(dataset) == 4 and dataset.load_size == 36
    for index in range(4):
        sample = dataset.sample(index, epoch=0)
        assert sample["image"].shape == sample["exemplar"].shape == (3, SIZE, SIZE)
        assert sample["condition"].shape == sample["exemplar_condition"].shape == (151, SIZE, SIZE)
        assert sample["image"].dtype == torch.float32 and -1 <= sample["image"].min() and sample["image"].max() <= 1
        assert sample["is_pseudo_pair"].dtype == torch.bool and sample["is_pseudo_pair"].ndim == 0
        for prefix in ("", "exemplar_"):
            onehot, ids = sample[prefix + "condition"], sample[prefix + "label"]
            assert torch.equal(onehot.sum(0), torch.ones(SIZE, SIZE))
            assert torch.equal(onehot.argmax(0), ids)
        # the condition is cut from the same window of the same photo as the ground truth
        loaded = dataset.load(sample["name"])
        crops = find_crops(as_image(loaded.rgb), sample["image"].numpy())
        assert crops and any(np.array_equal(crop.apply(loaded.label_ids), sample["label"].numpy()) for crop in crops)


def classify(dataset, sample) -> ExemplarKind:
    if sample["is_pseudo_pair"]:
        assert sample["exemplar_name"] == sample["name"]
        return ExemplarKind.PSEUDO_PAIR
    refs = dataset.references.references[sample["name"]]
    return ExemplarKind.EASY if sample["exemplar_name"] == refs[0] else ExemplarKind.HARD


def test_exemplar_choice_frequencies_follow_cocosnet(ade_root):
    # the rule itself, many draws
    rng = np.random.default_rng(123)
    counts = collections.Counter(choose_exemplar(rng, 0.2, 0.7) for _ in range(20000))
    assert counts[ExemplarKind.HARD] / 20000 == pytest.approx(0.2, abs=0.01)
    assert counts[ExemplarKind.EASY] / 20000 == pytest.approx(0.5, abs=0.01)
    assert counts[ExemplarKind.PSEUDO_PAIR] / 20000 == pytest.approx(0.3, abs=0.01)
    assert {choose_exemplar(rng, 0.2, 0.0) for _ in range(200)} == {ExemplarKind.PSEUDO_PAIR}
    # and the dataset: hard = last reference, easy = first, pseudo = itself
    dataset = ADE20KDataset(ADE20KConfig(root=ade_root, image_size=SIZE, seed=7))
    kinds = collections.Counter(classify(dataset, dataset.sample(i, epoch)) for epoch in range(100) for i in range(4))
    assert kinds[ExemplarKind.HARD] / 400 == pytest.approx(0.2, abs=0.06)
    assert kinds[ExemplarKind.EASY] / 400 == pytest.approx(0.5, abs=0.06)
    assert kinds[ExemplarKind.PSEUDO_PAIR] / 400 == pytest.approx(0.3, abs=0.06)


def test_pseudo_pairs_are_independent_crops_and_flips_of_the_ground_truth(ade_root):
    dataset = ADE20KDataset(ADE20KConfig(root=ade_root, image_size=SIZE, real_probability=0.0))
    flips_differ = offsets_differ = 0
    for epoch in range(12):
        sample = dataset.sample(epoch % 4, epoch)
        assert sample["is_pseudo_pair"] and sample["exemplar_name"] == sample["name"]
        full = as_image(dataset.load(sample["name"]).rgb)
        (target,) = find_crops(full, sample["image"].numpy())
        (exemplar,) = find_crops(full, sample["exemplar"].numpy())
        # the exemplar's condition is the ground truth's own label map, cut with the exemplar's crop
        assert np.array_equal(exemplar.apply(dataset.load(sample["name"]).label_ids), sample["exemplar_label"].numpy())
        flips_differ += target.flip != exemplar.flip
        offsets_differ += (target.x, target.y) != (exemplar.x, exemplar.y)
    assert 0 < flips_differ < 12 and offsets_differ >= 8


def test_samples_depend_only_on_seed_epoch_and_index(ade_root):
    config = ADE20KConfig(root=ade_root, image_size=SIZE, seed=3)
    first, again = ADE20KDataset(config), ADE20KDataset(config)
    for index in range(4):
        a, b = first.sample(index, 5), again.sample(index, 5)
        assert all(torch.equal(a[key], b[key]) if torch.is_tensor(a[key]) else a[key] == b[key] for key in a)
    differs = [not torch.equal(first.sample(i, 5)["image"], first.sample(i, 6)["image"]) for i in range(4)]
    assert any(differs)
    # DataLoader workers (each with its own copy of the dataset) give exactly the direct samples
    first.set_epoch(5)
    loader = torch.utils.data.DataLoader(first, batch_size=2, num_workers=2, shuffle=False)
    batches = list(loader)
    direct = torch.stack([first.sample(i, 5)["condition"] for i in range(4)])
    assert torch.equal(torch.cat([batch["condition"] for batch in batches]), direct)


def test_validation_uses_whole_images_and_the_first_reference(ade_root):
    dataset = ADE20KDataset(ADE20KConfig(root=ade_root, split="val", image_size=SIZE))
    assert dataset.load_size == SIZE and len(dataset) == 2
    for epoch in range(5):
        for index, name in enumerate(ADE_VAL):
            sample = dataset.sample(index, epoch)
            assert sample["exemplar_name"] == ADE_TRAIN[index] and not sample["is_pseudo_pair"]
            assert torch.equal(sample["image"], torch.from_numpy(as_image(dataset.load(name).rgb)))


def test_ade20k_errors_name_the_file_and_line(ade_root):
    with pytest.raises(UserError, match="no such folder"):
        ADE20KDataset(ADE20KConfig(root=ade_root / "nope"))
    ref = ade_root / "ade20k_ref.txt"
    good = ref.read_text()
    ref.write_text(good + "lonely_name\n")  # a line without references
    with pytest.raises(UserError, match="line 5") as excinfo:
        ADE20KDataset(ADE20KConfig(root=ade_root, image_size=SIZE))
    assert str(excinfo.value).startswith(str(ref)) and "\n" not in str(excinfo.value)
    ref.write_text("\n".join(good.splitlines()[:3]) + "\n")
    with pytest.raises(UserError, match=f"no line for '{ADE_TRAIN[3]}'"):
        ADE20KDataset(ADE20KConfig(root=ade_root, image_size=SIZE))
    ref.write_text(good.replace(f",{ADE_TRAIN[0]}", ",ADE_train_99999999.jpg", 1))
    with pytest.raises(UserError, match="ADE_train_99999999.jpg"):
        ADE20KDataset(ADE20KConfig(root=ade_root, image_size=SIZE))
    ref.unlink()
    with pytest.raises(UserError, match="retrieval_lists") as excinfo:
        ADE20KDataset(ADE20KConfig(root=ade_root, image_size=SIZE))
    assert str(excinfo.value).startswith(str(ref))
    # pseudo pairs only: no retrieval list needed
    assert len(ADE20KDataset(ADE20KConfig(root=ade_root, image_size=SIZE, real_probability=0.0))) == 4
    # a class id the model does not have: named with its file on first use
    bad_label = ade_root / "annotations" / "training" / ADE_TRAIN[1].replace(".jpg", ".png")
    ids = cv2.imread(str(bad_label), cv2.IMREAD_UNCHANGED)
    ids[0, 0] = 200
    cv2.imwrite(str(bad_label), ids)
    dataset = ADE20KDataset(ADE20KConfig(root=ade_root, image_size=SIZE, real_probability=0.0))
    with pytest.raises(UserError, match="class ids 200") as excinfo:
        dataset.sample(1, 0)
    assert str(excinfo.value).startswith(str(bad_label))
    bad_label.unlink()
    with pytest.raises(UserError, match="no annotation"):
        ADE20KDataset(ADE20KConfig(root=ade_root, image_size=SIZE, real_probability=0.0))


def test_cocosnet_layout_with_annotations_beside_the_images(ade_root):
    for png in (ade_root / "annotations" / "training").glob("*.png"):
        png.rename(ade_root / "images" / "training" / png.name)
    dataset = ADE20KDataset(ADE20KConfig(root=ade_root, image_size=SIZE))
    assert dataset.sample(0, 0)["condition"].shape == (151, SIZE, SIZE)


# --- CelebA-HQ edges -------------------------------------------------------------------------------

CELEBA_IDS = [0, 1, 2, 2001]


def draw_face(rng, size):
    yy, xx = np.mgrid[:size, :size]
    cy, cx, r = size * rng.uniform(0.5, 0.6), size * rng.uniform(0.4, 0.6), size * rng.uniform(0.25, 0.32)
    skin = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
    eye = (yy - cy + r / 4) ** 2 + (xx - cx + r / 3) ** 2 < (r / 6) ** 2
    hair = (yy < cy - r / 2) & ((yy - cy) ** 2 + (xx - cx) ** 2 < (1.3 * r) ** 2)
    rgb = (rng.integers(0, 255, (size // 8, size // 8, 3))).astype(np.uint8)
    rgb = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_NEAREST)  # blocky background
    rgb[skin], rgb[hair], rgb[eye] = (220, 170, 150), (60, 40, 20), (20, 20, 20)
    return rgb, {"skin": skin, "l_eye": eye, "hair": hair}


@pytest.fixture
def celeba_root(tmp_path):
    root = tmp_path / "CelebAMask-HQ"
    rng = np.random.default_rng(1)
    for image_id in CELEBA_IDS:
        rgb, masks = draw_face(rng, 64)  # photos 2x the masks' size, as 1024 vs 512 in the real set
        write_rgb(root / "CelebA-HQ-img" / f"{image_id}.jpg", rgb)
        folder = root / "CelebAMask-HQ-mask-anno" / str(image_id // 2000)
        folder.mkdir(parents=True, exist_ok=True)
        for part, mask in masks.items():
            small = cv2.resize(mask.astype(np.uint8) * 255, (32, 32), interpolation=cv2.INTER_NEAREST)
            cv2.imwrite(str(folder / f"{image_id:05d}_{part}.png"), small)
    (root / "train.txt").write_text("0\n1\n2\n2001\n")
    (root / "val.txt").write_text("2001\n")
    (root / "celebahq_ref.txt").write_text("".join(f"{i}.jpg,{CELEBA_IDS[(k + 1) % 4]}.jpg,{CELEBA_IDS[(k + 2) % 4]}.jpg\n" for k, i in enumerate(CELEBA_IDS)))
    (root / "celebahq_ref_test.txt").write_text("2001.jpg,0.jpg\n")
    return root


def test_celebahq_edge_samples(celeba_root):
    dataset = CelebAHQEdgeDataset(CelebAHQEdgeConfig(root=celeba_root, image_size=SIZE))
    assert dataset.names == ["0.jpg", "1.jpg", "2.jpg", "2001.jpg"]
    for index in range(4):
        sample = dataset.sample(index, 0)
        for key in ("condition", "exemplar_condition"):
            edge = sample[key]
            assert edge.shape == (15, SIZE, SIZE) and edge.min() >= 0 and edge.max() <= 1
            assert (edge[0] >= edge[14]).all()  # all edges include the part edges
            assert edge[14].sum() > 0 and (edge[1 + C.CELEBA_PARTS.index("nose")] == 1).all()
        assert "label" not in sample
        # the map is celeba_edge_map of the load-size photo, cut like the ground truth
        loaded = dataset.load(sample["name"])
        (crop,) = find_crops(as_image(loaded.rgb), sample["image"].numpy())
        assert torch.equal(sample["condition"], torch.from_numpy(crop.apply(loaded.condition)))
    val = CelebAHQEdgeDataset(CelebAHQEdgeConfig(root=celeba_root, split="val", image_size=SIZE))
    assert val.sample(0, 0)["exemplar_name"] == "0.jpg"


def test_celebahq_list_errors(celeba_root):
    (celeba_root / "train.txt").write_text("0\nabc\n")
    with pytest.raises(UserError, match="line 2: 'abc' is not a CelebA-HQ image id") as excinfo:
        CelebAHQEdgeDataset(CelebAHQEdgeConfig(root=celeba_root))
    assert str(excinfo.value).startswith(str(celeba_root / "train.txt"))
    (celeba_root / "train.txt").write_text("0\n7\n")
    with pytest.raises(UserError, match="line 2: no such image"):
        CelebAHQEdgeDataset(CelebAHQEdgeConfig(root=celeba_root))
    (celeba_root / "train.txt").unlink()
    with pytest.raises(UserError, match="no such file"):
        CelebAHQEdgeDataset(CelebAHQEdgeConfig(root=celeba_root))


# --- DeepFashion -----------------------------------------------------------------------------------

GARMENT = "img/WOMEN/Dresses/id_00000001"
DF_NAMES = [f"{GARMENT}/01_1_front.jpg", f"{GARMENT}/01_2_side.jpg", f"{GARMENT}/02_1_front.jpg"]


@pytest.fixture
def deepfashion_root(tmp_path, photos):
    root = tmp_path / "DeepFashion"
    for i, name in enumerate(DF_NAMES):
        write_rgb(root / name, crop_of(photos[i], 50, 80, 64, 44))  # portrait photos, like the real set
        keypoints = np.zeros((18, 3), np.float32)
        keypoints[0], keypoints[1], keypoints[2], keypoints[5] = (22, 10 + i, 1), (22, 20, 1), (12, 22, 1), (32, 22, 1)
        keypoints[3] = (10, 40, 0.8)
        candidate, subset = pose_paths(root, name)
        candidate.parent.mkdir(parents=True, exist_ok=True)
        C.write_candidate_subset(keypoints, candidate, subset)
    (root / "train.txt").write_text("\n".join(DF_NAMES) + "\n")
    (root / "val.txt").write_text(DF_NAMES[2] + "\n")
    (root / "deepfashion_ref.txt").write_text("".join(f"{n},{DF_NAMES[(i + 1) % 3]},{DF_NAMES[(i + 2) % 3]}\n" for i, n in enumerate(DF_NAMES)))
    # Windows separators, as in the published files
    pairs = f"{DF_NAMES[0]},{DF_NAMES[1]},{DF_NAMES[2]}\n{DF_NAMES[2]},{DF_NAMES[0]}\n".replace("/", "\\")
    (root / "deepfashion_self_pair.txt").write_text(pairs)
    return root


def test_deepfashion_pose_samples_are_not_flipped(deepfashion_root):
    dataset = DeepFashionDataset(DeepFashionConfig(root=deepfashion_root, image_size=SIZE))
    for epoch in range(4):
        sample = dataset.sample(epoch % 3, epoch)
        assert sample["condition"].shape == sample["exemplar_condition"].shape == (20, SIZE, SIZE)
        assert sample["condition"].min() >= 0 and sample["condition"].max() <= 1
        assert sample["condition"][:3].sum() > 0  # the skeleton is drawn
        loaded = dataset.load(sample["name"])
        crops = find_crops(as_image(loaded.rgb), sample["image"].numpy())
        assert crops and not any(crop.flip for crop in crops)
        assert torch.equal(sample["condition"], torch.from_numpy(crops[0].apply(loaded.condition)))
    # the pose map is drawn at photo size, then resized: 64 x 44 photo -> 36 x 36 at load size
    loaded = dataset.load(DF_NAMES[0])
    assert loaded.condition.shape == (20, 36, 36)


def test_deepfashion_self_pairs_show_the_same_garment(deepfashion_root):
    config = DeepFashionConfig(root=deepfashion_root, image_size=SIZE, real_probability=0.0, self_pairs=deepfashion_root / "deepfashion_self_pair.txt")
    dataset = DeepFashionDataset(config)
    for epoch in range(6):
        front = dataset.sample(0, epoch)
        # 01_1_front's listed partners: 01_2_side (same person, other view) and 02_1_front (not the same "01_")
        assert front["exemplar_name"] == DF_NAMES[1] and front["is_pseudo_pair"]
        other = dataset.sample(2, epoch)
        assert other["exemplar_name"] == DF_NAMES[2] and other["is_pseudo_pair"]  # 01_... is another garment: itself


def test_deepfashion_missing_pose_file_is_named(deepfashion_root):
    candidate, _ = pose_paths(deepfashion_root, DF_NAMES[1])
    candidate.unlink()
    with pytest.raises(UserError, match=f"line 2: no such file {candidate}") as excinfo:
        DeepFashionDataset(DeepFashionConfig(root=deepfashion_root))
    assert str(excinfo.value).startswith(str(deepfashion_root / "train.txt"))
    (deepfashion_root / "train.txt").write_text("WOMEN/x.jpg\n")
    with pytest.raises(UserError, match="line 1: 'WOMEN/x.jpg' is not a DeepFashion photo path"):
        DeepFashionDataset(DeepFashionConfig(root=deepfashion_root))


# --- photos ----------------------------------------------------------------------------------------


def to_uint8(image: torch.Tensor) -> np.ndarray:
    return np.round((image.numpy().transpose(1, 2, 0) + 1) * 127.5).astype(np.uint8)


def test_package_photos_dataset(photos):
    dataset = PhotosDataset(PhotosConfig(image_size=64, face_contours="off", repeat=2))
    assert len(dataset) == 2 * len(photos) and dataset.photo_names[0] == "astronaut"
    kinds = []
    for epoch in range(20):
        for index in range(len(photos)):
            sample = dataset.sample(index, epoch)
            kinds.append(bool(sample["is_pseudo_pair"]))
            assert (sample["exemplar_name"] == sample["name"]) == kinds[-1]
    assert np.mean(kinds) == pytest.approx(0.5, abs=0.08)
    sample = dataset.sample(3, 0)
    assert sample["image"].shape == sample["exemplar"].shape == (3, 64, 64)
    assert sample["condition"].shape == sample["exemplar_condition"].shape == (1, 64, 64)
    # the condition is the edge map of exactly the ground-truth crop (and the exemplar's of the exemplar)
    assert np.array_equal(sample["condition"].numpy(), C.edge_map(to_uint8(sample["image"])))
    assert np.array_equal(sample["exemplar_condition"].numpy(), C.edge_map(to_uint8(sample["exemplar"])))
    assert 0.01 < sample["condition"].mean() < 0.4
    again = PhotosDataset(PhotosConfig(image_size=64, face_contours="off", repeat=2)).sample(3, 0)
    assert torch.equal(sample["image"], again["image"]) and torch.equal(sample["exemplar"], again["exemplar"])


def test_augmented_pseudo_pairs_are_shifted_rescaled_flipped_views_of_the_ground_truth(photos):
    # No shift, no rescale: the exemplar is the ground-truth crop itself or its mirror image.
    same = PhotosDataset(
        PhotosConfig(image_size=64, face_contours="off", pseudo_pair_probability=1.0, pseudo_pair_views="augment",
                     pseudo_pair_shift=0.0, pseudo_pair_scale=0.0)
    )
    flips = []
    for index in range(len(photos)):
        sample = same.sample(index, 0)
        image, exemplar = sample["image"], sample["exemplar"]
        flips.append(not torch.equal(image, exemplar))
        assert torch.equal(exemplar, image) or torch.equal(exemplar, image.flip(-1))
    assert any(flips) and not all(flips)
    # With shift and rescale, the exemplar differs but still shows mostly the same content: closer to the
    # ground truth (after undoing a flip) than the independent crops of the old pseudo pairs are.
    def mean_error(views: str) -> float:
        dataset = PhotosDataset(PhotosConfig(image_size=64, face_contours="off", pseudo_pair_probability=1.0, pseudo_pair_views=views))
        errors = []
        for epoch in range(6):
            for index in range(len(photos)):
                sample = dataset.sample(index, epoch)
                image, exemplar = sample["image"], sample["exemplar"]
                errors.append(min((exemplar - image).abs().mean(), (exemplar.flip(-1) - image).abs().mean()).item())
        return float(np.mean(errors))

    assert mean_error("augment") < 0.8 * mean_error("independent")
    with pytest.raises(UserError, match="pseudo_pair_views"):
        PhotosConfig(pseudo_pair_views="sideways")


def test_photos_from_a_folder(tmp_path, photos):
    write_rgb(tmp_path / "shots" / "a.jpg", photos[1])
    write_rgb(tmp_path / "shots" / "trip" / "b.png", photos[2], jpeg=False)
    dataset = PhotosDataset(PhotosConfig(root=tmp_path / "shots", image_size=48, face_contours="off"))
    assert dataset.photo_names == ["a.jpg", "trip/b.png"]
    names = {dataset.sample(0, epoch)["exemplar_name"] for epoch in range(10)}
    assert names == {"a.jpg", "trip/b.png"}  # pseudo pairs and the other photo
    data = (tmp_path / "shots" / "a.jpg").read_bytes()
    (tmp_path / "shots" / "a.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="truncated") as excinfo:
        dataset.sample(0, 0)
    assert str(excinfo.value).startswith(str(tmp_path / "shots" / "a.jpg"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no photos"):
        PhotosDataset(PhotosConfig(root=tmp_path / "empty"))


@pytest.mark.skipif(C.mediapipe_available(), reason="mediapipe is installed here")
def test_photos_face_contours_on_without_mediapipe():
    with pytest.raises(UserError, match="mediapipe"):
        PhotosDataset(PhotosConfig(face_contours="on"))
    assert not PhotosDataset(PhotosConfig(face_contours="auto")).face_contours_used


@pytest.mark.skipif(not C.mediapipe_available(), reason="needs mediapipe 0.10.21 (the [extract] extra)")
def test_photos_face_contours_auto_with_mediapipe():
    dataset = PhotosDataset(PhotosConfig(image_size=128, face_contours="auto", min_crop=0.9))
    assert dataset.face_contours_used
    sample = dataset.sample(0, 0)  # the astronaut
    assert np.array_equal(sample["condition"].numpy(), C.edge_map(to_uint8(sample["image"]), face=True))


def test_build_dataset_from_a_yaml_mapping(ade_root):
    dataset = build_dataset("ade20k", {"root": str(ade_root), "image_size": SIZE, "seed": 2})
    assert isinstance(dataset, ADE20KDataset) and dataset.config.seed == 2
    photos = build_dataset("photos", {"image_size": 32, "edge": {"low_threshold": 80.0}, "face_contours": "off"})
    assert photos.config.edge.low_threshold == 80.0
    with pytest.raises(UserError, match="unknown dataset kind 'cityscapes'"):
        build_dataset("cityscapes", {})
    with pytest.raises(UserError, match="unknown ade20k data option.*colour"):
        build_dataset("ade20k", {"root": str(ade_root), "colour": 1})
    with pytest.raises(UserError, match="need root"):
        build_dataset("deepfashion", {})
