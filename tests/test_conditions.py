"""Condition maps and input loading (mclrt.runtime.inputs.conditions) on real package photos and drawn layouts.

The mediapipe tests run only where mediapipe 0.10.21 is installed (the `[extract]` extra); the
tests of the no-mediapipe error run only where it is not.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest

from mclrt.runtime.inputs import conditions as C
from mclrt.runtime.errors import UserError

HAVE_MEDIAPIPE = C.mediapipe_available()


@pytest.fixture(scope="module")
def photos():
    return {photo.name: photo.rgb for photo in C.package_photos()}


def square(rgb: np.ndarray, size: int) -> np.ndarray:
    side = min(rgb.shape[:2])
    return cv2.resize(rgb[:side, :side], (size, size), interpolation=cv2.INTER_AREA)


def write_jpeg(path, rgb, progressive=False):
    flags = [cv2.IMWRITE_JPEG_QUALITY, 90, cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)]
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), flags)
    assert ok
    path.write_bytes(data.tobytes())
    return data.tobytes()


def one_line_error(excinfo, path) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    return message


# --- package photos ------------------------------------------------------------------------------


def test_package_photos_are_real_rgb_photos_with_licences(photos):
    listed = C.package_photos()
    assert [p.name for p in listed] == ["astronaut", "chelsea", "coffee", "rocket", "china", "flower", "grace_hopper"]
    for photo in listed:
        assert photo.rgb.dtype == np.uint8 and photo.rgb.ndim == 3 and photo.rgb.shape[2] == 3
        assert min(photo.rgb.shape[:2]) >= 300
        assert photo.rgb.std() > 20  # a photo, not a flat image
        assert photo.licence and not photo.rgb.flags.writeable
    assert "public domain" in dict((p.name, p.licence) for p in listed)["grace_hopper"]


# --- loading ---------------------------------------------------------------------------------------


def test_load_rgb_round_trips_png_and_jpeg(tmp_path, photos):
    rgb = square(photos["chelsea"], 64)
    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert np.array_equal(C.load_rgb(tmp_path / "a.png"), rgb)
    write_jpeg(tmp_path / "b.jpg", rgb)
    loaded = C.load_rgb(tmp_path / "b.jpg")
    assert loaded.shape == (64, 64, 3) and np.abs(loaded.astype(int) - rgb).mean() < 6  # lossy, but the same picture
    # RGB order: chelsea is an orange cat, red > blue on average
    assert loaded[..., 0].mean() > loaded[..., 2].mean()


def test_load_rgb_accepts_grey_and_opaque_rgba_refuses_transparency(tmp_path, photos):
    grey = cv2.cvtColor(square(photos["coffee"], 32), cv2.COLOR_RGB2GRAY)
    cv2.imwrite(str(tmp_path / "grey.png"), grey)
    loaded = C.load_rgb(tmp_path / "grey.png")
    assert loaded.shape == (32, 32, 3) and np.array_equal(loaded[..., 0], grey) and np.array_equal(loaded[..., 2], grey)
    bgra = np.dstack([cv2.cvtColor(square(photos["coffee"], 32), cv2.COLOR_RGB2BGR), np.full((32, 32), 255, np.uint8)])
    cv2.imwrite(str(tmp_path / "opaque.png"), bgra)
    assert C.load_rgb(tmp_path / "opaque.png").shape == (32, 32, 3)
    bgra[0, 0, 3] = 10
    cv2.imwrite(str(tmp_path / "transparent.png"), bgra)
    with pytest.raises(UserError, match="transparent") as excinfo:
        C.load_rgb(tmp_path / "transparent.png")
    one_line_error(excinfo, tmp_path / "transparent.png")


@pytest.mark.parametrize("progressive", [False, True])
def test_truncated_jpeg_is_detected_wherever_it_is_cut(tmp_path, photos, progressive):
    data = write_jpeg(tmp_path / "full.jpg", square(photos["astronaut"], 96), progressive)
    assert C.load_rgb(tmp_path / "full.jpg").shape == (96, 96, 3)
    for cut in (len(data) - 2, len(data) * 3 // 4, len(data) // 2, 200):
        path = tmp_path / f"cut{cut}.jpg"
        path.write_bytes(data[:cut])
        with pytest.raises(UserError, match="truncated") as excinfo:
            C.load_rgb(path)
        one_line_error(excinfo, path)


def test_jpeg_with_thumbnail_and_trailing_bytes(tmp_path, photos):
    """An EXIF-like segment holding a whole JPEG (a thumbnail, with its own end marker) must not hide a cut."""
    thumbnail = cv2.imencode(".jpg", square(photos["chelsea"], 16))[1].tobytes()
    main = cv2.imencode(".jpg", square(photos["astronaut"], 96))[1].tobytes()
    payload = b"Exif\x00\x00" + thumbnail
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    with_thumbnail = main[:2] + app1 + main[2:]
    (tmp_path / "thumb.jpg").write_bytes(with_thumbnail + b"\x00\x00trailing")  # padding after EOI is fine
    assert C.load_rgb(tmp_path / "thumb.jpg").shape == (96, 96, 3)
    (tmp_path / "thumb_cut.jpg").write_bytes(with_thumbnail[: len(with_thumbnail) - 500])
    with pytest.raises(UserError, match="truncated"):
        C.load_rgb(tmp_path / "thumb_cut.jpg")


def test_truncated_png_not_an_image_missing_and_empty_files(tmp_path, photos):
    ok, png = cv2.imencode(".png", square(photos["coffee"], 64))
    (tmp_path / "cut.png").write_bytes(png.tobytes()[:-20])
    (tmp_path / "text.jpg").write_text("this is not a photo")
    (tmp_path / "empty.png").write_bytes(b"")
    cases = {"cut.png": "truncated", "text.jpg": "not an image", "missing.png": "no such file", "empty.png": "empty"}
    for name, problem in cases.items():
        for loader in (C.load_rgb, C.load_label_png):
            with pytest.raises(UserError, match=problem) as excinfo:
                loader(tmp_path / name)
            one_line_error(excinfo, tmp_path / name)


def _palette_png(ids: np.ndarray) -> bytes:
    """A minimal 8-bit palette PNG (colour type 3), which OpenCV cannot write."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    height, width = ids.shape
    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)
    palette = bytes(v for i in range(256) for v in (i, (i * 7) % 256, 255 - i))
    raw = b"".join(b"\x00" + row.tobytes() for row in ids.astype(np.uint8))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"PLTE", palette) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_load_label_png_reads_ids_and_refuses_lossy_or_coloured_maps(tmp_path, photos):
    ids = np.random.default_rng(0).integers(0, 151, (20, 30)).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "ids.png"), ids)
    assert np.array_equal(C.load_label_png(tmp_path / "ids.png"), ids)
    cv2.imwrite(str(tmp_path / "grey_rgb.png"), np.dstack([ids, ids, ids]))
    assert np.array_equal(C.load_label_png(tmp_path / "grey_rgb.png"), ids)
    cv2.imwrite(str(tmp_path / "colour.png"), square(photos["coffee"], 16))
    write_jpeg(tmp_path / "ids.jpg", np.dstack([ids, ids, ids]))
    (tmp_path / "palette.png").write_bytes(_palette_png(ids))
    for name, problem in {"colour.png": "colour image", "ids.jpg": "JPEG", "palette.png": "palette"}.items():
        with pytest.raises(UserError, match=problem) as excinfo:
            C.load_label_png(tmp_path / name)
        one_line_error(excinfo, tmp_path / name)


# --- edge ------------------------------------------------------------------------------------------


def test_edge_map_of_a_photo_is_binary_and_sparse(photos):
    for name in ("astronaut", "chelsea", "coffee"):
        edges = C.edge_map(square(photos[name], 128))
        assert edges.shape == (1, 128, 128) and edges.dtype == np.float32
        assert set(np.unique(edges)) <= {0.0, 1.0}
        assert 0.02 < edges.mean() < 0.3, name


def test_edge_map_traces_the_outline_of_a_drawn_square():
    rgb = np.full((64, 64, 3), 30, np.uint8)
    rgb[16:48, 16:48] = 220
    edges = C.edge_map(rgb)[0]
    assert C.edge_map(np.full((64, 64, 3), 128, np.uint8)).sum() == 0  # a flat image has no edges
    ys, xs = np.nonzero(edges)
    assert len(ys) > 100
    # every edge pixel lies within 2 px of the square's outline, and each side is traced
    distance_to_outline = np.minimum(np.minimum(abs(ys - 15.5), abs(ys - 47.5)), np.minimum(abs(xs - 15.5), abs(xs - 47.5)))
    assert distance_to_outline.max() <= 2
    for column in (16, 47):
        assert edges[20:44, column - 2 : column + 3].any(axis=1).all()


@pytest.mark.skipif(HAVE_MEDIAPIPE, reason="mediapipe is installed here")
def test_face_contours_without_mediapipe_say_how_to_install(photos):
    with pytest.raises(UserError, match=r"--no-deps mediapipe==0\.10\.21"):
        C.edge_map(square(photos["astronaut"], 128), face=True)
    with pytest.raises(UserError, match="mediapipe"):
        C.pose_keypoints_from_photo(photos["astronaut"])


@pytest.mark.skipif(not HAVE_MEDIAPIPE, reason="needs mediapipe 0.10.21 (the [extract] extra)")
def test_face_contours_replace_canny_inside_the_face(photos):
    from mclrt.runtime.inputs.landmarks import face_contours

    for name in ("astronaut", "grace_hopper"):
        rgb = square(photos[name], 256)
        lines, inside = face_contours(rgb, line_width=1)
        assert 0.03 < inside.mean() < 0.6  # a face fills part of these portraits
        assert lines[inside].mean() > 0.02  # contour lines are drawn on it
        with_face, found = C.edge_map_and_face_found(rgb, face=True)
        canny = C.canny_edges(rgb)
        assert found
        assert np.array_equal(with_face[0].astype(bool)[inside & ~lines], np.zeros((inside & ~lines).sum(), bool))
        assert np.array_equal(with_face[0].astype(bool)[~inside], (canny | lines)[~inside])
    # no face in a cup of coffee: plain Canny
    coffee = square(photos["coffee"], 128)
    edges, found = C.edge_map_and_face_found(coffee, face=True)
    assert not found and np.array_equal(edges, C.edge_map(coffee))


@pytest.mark.skipif(not HAVE_MEDIAPIPE, reason="needs mediapipe 0.10.21 (the [extract] extra)")
def test_pose_keypoints_from_a_photo(photos):
    rgb = photos["astronaut"]
    keypoints = C.pose_keypoints_from_photo(rgb)
    assert keypoints.shape == (18, 3)
    nose, neck, right_shoulder, left_shoulder = keypoints[0], keypoints[1], keypoints[2], keypoints[5]
    assert nose[2] > 0.5 and right_shoulder[2] > 0.5 and left_shoulder[2] > 0.5
    assert np.allclose(neck[:2], (right_shoulder[:2] + left_shoulder[:2]) / 2, atol=1e-3)
    assert nose[1] < neck[1]  # the nose is above the neck
    assert right_shoulder[0] < left_shoulder[0]  # a person facing the camera: their right is our left
    assert (keypoints[keypoints[:, 2] == 0] == 0).all()
    with pytest.raises(UserError, match="no person"):
        C.pose_keypoints_from_photo(np.full((256, 256, 3), 127, np.uint8))


# --- label -----------------------------------------------------------------------------------------


def test_onehot_labels_is_a_one_hot_of_the_ids():
    ids = np.random.default_rng(1).integers(0, 151, (40, 50)).astype(np.uint8)
    onehot = C.onehot_labels(ids, 151)
    assert onehot.shape == (151, 40, 50) and onehot.dtype == np.float32
    assert np.array_equal(onehot.sum(axis=0), np.ones((40, 50)))
    assert np.array_equal(onehot.argmax(axis=0), ids)


def test_onehot_labels_names_the_file_and_the_bad_ids():
    ids = np.zeros((8, 8), np.uint8)
    ids[0, 0], ids[1, 1] = 151, 200
    with pytest.raises(UserError) as excinfo:
        C.onehot_labels(ids, 151, "labels/ADE_train_1.png")
    message = one_line_error(excinfo, "labels/ADE_train_1.png")
    assert "151, 200" in message and "151 classes" in message


# --- pose ------------------------------------------------------------------------------------------


def two_keypoints(neck=(20, 50), right_shoulder=(80, 50)) -> np.ndarray:
    keypoints = np.zeros((18, 3), np.float32)
    keypoints[1] = (*neck, 1.0)
    keypoints[2] = (*right_shoulder, 1.0)
    return keypoints


def test_pose_map_draws_a_limb_between_two_keypoints():
    pose = C.pose_map(two_keypoints(), (100, 120))
    assert pose.shape == (20, 100, 120) and pose.dtype == np.float32
    assert pose.min() >= 0 and pose.max() <= 1
    limb = pose[3]  # limb 0 joins neck (1) and right shoulder (2)
    # the segment and a band of +-3 px around it are inside the limb: distance 0
    assert (limb[47:54, 20:81] == 0).all()
    # 6 px beyond the ellipse's half-width 4 (at its middle): L1 distance 6, /3 = 2 -> 2/255
    assert limb[60, 50] == pytest.approx(2 / 255)
    assert limb[10, 110] > limb[60, 50] > 0
    # every other limb has a missing end: infinitely far
    assert (pose[4:] == 1).all()
    # colours (OpenPose's palette, drawn BGR and read back as RGB, as CoCosNet does): the limb is
    # 0.6 x its colour (255,0,0)->RGB(0,0,255) over black; the joints blend their circle under it
    assert np.allclose(pose[:3, 50, 50] * 255, (0, 0, 153))
    assert np.allclose(pose[:3, 50, 20] * 255, (0, round(0.4 * 85), 255))  # neck circle (255,85,0) under the limb
    assert np.allclose(pose[:3, 50, 80] * 255, (0, round(0.4 * 170), 255))  # shoulder circle (255,170,0)
    assert (pose[:3, 5, 5] == 0).all()


def test_pose_map_of_single_keypoints_draws_only_circles():
    keypoints = np.zeros((18, 3), np.float32)
    keypoints[0] = (30, 30, 0.9)  # nose alone: a circle of radius 4, no limb
    pose = C.pose_map(keypoints, (64, 64))
    assert np.allclose(pose[:3, 30, 30] * 255, (0, 0, 255))  # colour 0 is (255,0,0) in BGR
    assert (pose[:3, 30, 35] == 0).all() and (pose[:3, 30, 34] > 0).any()
    assert (pose[3:] == 1).all()


def test_candidate_subset_round_trip_and_errors(tmp_path):
    keypoints = two_keypoints()
    keypoints[0] = (50.5, 12.25, 0.75)
    candidate, subset = tmp_path / "a_candidate.txt", tmp_path / "a_subset.txt"
    C.write_candidate_subset(keypoints, candidate, subset)
    read = C.read_candidate_subset(candidate, subset)
    assert np.allclose(read, keypoints, atol=1e-3)
    # the files are what np.loadtxt (CoCosNet) reads: 3 rows of x y score id; one row of 18 indices + score + count
    assert np.loadtxt(candidate).shape == (3, 4) and np.loadtxt(subset).shape == (20,)
    # no person at all: every keypoint missing
    (tmp_path / "none_candidate.txt").write_text("")
    (tmp_path / "none_subset.txt").write_text("")
    assert (C.read_candidate_subset(tmp_path / "none_candidate.txt", tmp_path / "none_subset.txt") == 0).all()
    # malformed files name themselves
    (tmp_path / "bad_subset.txt").write_text("0 1 2 x\n")
    with pytest.raises(UserError, match="not a table of numbers") as excinfo:
        C.read_candidate_subset(candidate, tmp_path / "bad_subset.txt")
    one_line_error(excinfo, tmp_path / "bad_subset.txt")
    (tmp_path / "far_subset.txt").write_text(" ".join(["7"] + ["-1"] * 17) + "\n")
    with pytest.raises(UserError, match="candidate row 7"):
        C.read_candidate_subset(candidate, tmp_path / "far_subset.txt")
    with pytest.raises(UserError, match="no such file"):
        C.read_candidate_subset(tmp_path / "missing.txt", subset)


def test_openpose_json_coco18_and_body25(tmp_path):
    coco = np.zeros((18, 3))
    coco[1], coco[2] = (20, 50, 0.8), (80, 50, 0.9)
    (tmp_path / "coco.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": coco.ravel().tolist()}]}))
    assert np.allclose(C.read_openpose_json(tmp_path / "coco.json"), coco)
    body25 = np.zeros((25, 3))
    body25[1], body25[2], body25[8], body25[9] = (20, 50, 0.8), (80, 50, 0.9), (50, 90, 0.7), (40, 90, 0.6)
    (tmp_path / "b25.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": body25.ravel().tolist()}]}))
    read = C.read_openpose_json(tmp_path / "b25.json")
    assert np.allclose(read[1], (20, 50, 0.8)) and np.allclose(read[8], (40, 90, 0.6))  # BODY_25 mid-hip (8) dropped
    for name, doc, problem in (
        ("empty.json", {"people": []}, "no person"),
        ("short.json", {"people": [{"pose_keypoints_2d": [1, 2, 3]}]}, "3 numbers"),
        ("other.json", {"persons": []}, "no 'people'"),
    ):
        (tmp_path / name).write_text(json.dumps(doc))
        with pytest.raises(UserError, match=problem):
            C.read_openpose_json(tmp_path / name)


# --- celeba-edge -----------------------------------------------------------------------------------


def drawn_face(size=96):
    """A synthetic CelebAMask-HQ sample: skin disc, one eye, hair band; striped background."""
    yy, xx = np.mgrid[:size, :size]
    skin = (yy - 56) ** 2 + (xx - 48) ** 2 < 28**2
    eye = (yy - 50) ** 2 + (xx - 38) ** 2 < 5**2
    hair = (yy < 30) & ((yy - 56) ** 2 + (xx - 48) ** 2 < 36**2)
    rgb = np.zeros((size, size, 3), np.uint8)
    rgb[...] = np.where((xx // 8) % 2 == 0, 40, 200)[..., None]  # vertical stripes: Canny edges everywhere
    rgb[skin] = (220, 170, 150)
    rgb[hair] = (60, 40, 20)
    rgb[eye] = (20, 20, 20)
    return rgb, {"skin": skin, "l_eye": eye, "hair": hair}


def test_celeba_edge_map_channels():
    rgb, masks = drawn_face()
    edge = C.celeba_edge_map(rgb, masks)
    assert edge.shape == (15, 96, 96) and edge.dtype == np.float32 and edge.min() >= 0 and edge.max() <= 1
    parts = edge[14].astype(bool)
    expected = C.part_boundaries(masks["skin"]) | C.part_boundaries(masks["l_eye"]) | C.part_boundaries(masks["hair"])
    assert np.array_equal(parts, expected)
    everything = edge[0].astype(bool)
    assert (everything >= parts).all()
    background_canny = everything & ~parts
    face_not_hair = (masks["skin"] | masks["l_eye"]) & ~masks["hair"]
    assert not background_canny[face_not_hair].any()  # Canny is dropped on the face
    assert background_canny[~(masks["skin"] | masks["hair"])].sum() > 50  # and kept on the striped background
    names = list(C.CELEBA_PARTS)
    skin_distance = edge[1 + names.index("skin")]
    assert (skin_distance[C.part_boundaries(masks["skin"])] == 0).all() and skin_distance[48, 48] > 0
    assert (edge[1 + names.index("nose")] == 1).all()  # an absent part is infinitely far
    with pytest.raises(ValueError, match="unknown"):
        C.celeba_edge_map(rgb, {"beard": masks["skin"]})


def test_runtime_modules_import_without_torch():
    code = (
        "import sys, mclrt.runtime.inputs.conditions, mclrt.runtime.inputs.image_io, mclrt.runtime.inputs.landmarks, "
        "mclrt.runtime.inputs.openpose, mclrt.runtime.inputs.package_photos; "
        "print(sorted(m for m in ('torch', 'tensorrt', 'mediapipe', 'skimage', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
