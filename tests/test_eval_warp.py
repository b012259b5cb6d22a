"""`mclrt eval warp`: pseudo pairs with a known ideal warp, the pixel metrics against independent
formulas, and the command end to end on the committed demo model with package photos."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from mclrt.runtime.cli import main
from mclrt.runtime.image_out import to_uint8_rgb
from mclrt.runtime.inputs.conditions import edge_map
from mclrt.runtime.inputs.preprocess import photo_to_tensor
from mclrt.runtime.model_dir import load_model_dir
from mclrt.runtime.backends import RunnerOptions
from mclrt.runtime.pipeline import TranslationPipeline
from mclrt.runtime.backends import RunnerOptions
from mclrt.training.eval.metrics.l1 import l1
from mclrt.training.eval.metrics.psnr import psnr
from mclrt.training.eval.metrics.ssim import ssim
from mclrt.training.eval.pairs import PairKind, make_pair
from model_dir_fixtures import TinySpec, build_tiny_model_dir, write_photo

DEMO_MODEL = Path(__file__).resolve().parents[1] / "runtime" / "models" / "demo"


def _smooth_image(height: int = 64, width: int = 64, seed: int = 0) -> np.ndarray:
    """Generated, smooth (so bilinear resampling is nearly exact) and asymmetric (so a flip shows)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    channels = [127 + 100 * np.sin(x / rng.uniform(6, 12) + c) * np.cos(y / rng.uniform(7, 13) - c) + 0.3 * x for c in range(3)]
    return np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)


# --- pairs -----------------------------------------------------------------------------------------------


def test_flip_shift_exemplar_holds_each_photo_pixel_where_the_transform_says():
    photo = _smooth_image()
    pair = make_pair(photo, PairKind.flip_shift)
    # Independently: mirror, then move 8 px right and 4 px down (1/8 and 1/16 of 64).
    expected = np.zeros_like(photo)
    expected[4:, 8:] = photo[:, ::-1][:60, :56]
    assert np.array_equal(pair.exemplar[4:, 8:], expected[4:, 8:])
    assert pair.exemplar_position(0, 0) == (63 + 8, 4)
    ex, ey = pair.exemplar_position(10, 20)
    assert np.array_equal(pair.exemplar[int(ey), int(ex)], photo[20, 10])


def test_crop_exemplar_is_the_photos_centre_enlarged():
    photo = _smooth_image()
    pair = make_pair(photo, PairKind.crop)
    # Independently: the central 48x48 window (3/4 of 64) resized back to 64x64 by OpenCV's resize.
    expected = cv2.resize(photo[8:56, 8:56], (64, 64), interpolation=cv2.INTER_LINEAR)
    assert np.abs(pair.exemplar.astype(int) - expected.astype(int)).max() <= 2
    # The window's edges land on the exemplar's edges (pixel-edge coordinates: -0.5 and 63.5).
    assert pair.exemplar_position(8 - 0.5, 8 - 0.5) == pytest.approx((-0.5, -0.5))
    assert pair.exemplar_position(56 - 0.5, 56 - 0.5) == pytest.approx((63.5, 63.5))


# --- metrics against independent formulas ------------------------------------------------------------


def test_l1_and_psnr_of_a_constant_offset():
    rng = np.random.default_rng(1)
    reference = rng.integers(10, 240, (32, 40, 3), dtype=np.uint8)
    image = (reference.astype(int) + 6).astype(np.uint8)
    assert l1(image, reference) == pytest.approx(6.0)
    assert psnr(image, reference) == pytest.approx(20 * math.log10(255 / 6))
    assert psnr(reference, reference) == math.inf


def _reference_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al. 2004, eq. 13, written out with SciPy's Gaussian filter: sigma 1.5, an 11x11 window
    (radius 5), K1 0.01, K2 0.03, L 255; the mean over the valid interior, then over channels."""
    from scipy.ndimage import gaussian_filter

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    scores = []
    for channel in range(3):
        x, y = a[..., channel].astype(np.float64), b[..., channel].astype(np.float64)
        blur = lambda z: gaussian_filter(z, sigma=1.5, truncate=5 / 1.5)  # noqa: E731
        mx, my = blur(x), blur(y)
        vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
        ssim_map = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
        scores.append(ssim_map[5:-5, 5:-5].mean())
    return float(np.mean(scores))


def test_ssim_matches_the_papers_formula():
    reference = _smooth_image(48, 56, seed=2)
    noisy = np.clip(reference + np.random.default_rng(3).normal(0, 20, reference.shape), 0, 255).astype(np.uint8)
    assert ssim(noisy, reference) == pytest.approx(_reference_ssim(noisy, reference), abs=1e-6)
    assert ssim(reference, reference) == pytest.approx(1.0)
    assert 0.0 < ssim(noisy, reference) < 0.95


# --- the command ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("eval-photos")
    write_photo(folder / "astronaut.png", index=0, size=160)
    write_photo(folder / "sub" / "coffee.jpg", index=2, size=200)
    return folder


def _run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_eval_warp_json_report_on_the_demo_model(photos, tmp_path, capsys):
    report = tmp_path / "warp.json"
    code, out, err = _run(capsys, "eval", "warp", "--model", DEMO_MODEL, "--photos", photos, "--recursive", "--json", "--report", report, "--threads", "1")
    assert code == 0, err
    data = json.loads(out)
    assert json.loads(report.read_text()) == data
    assert data["photos"] == 2 and data["pair_kinds"] == ["flip-shift", "crop"]
    assert set(data["summary"]) == {"flip-shift", "crop", "all"}
    for kind in data["summary"].values():
        assert set(kind) == {"model", "unwarped", "mean_colour"}
        for scores in kind.values():
            assert scores["l1"] > 0 and 0 < scores["psnr"] < 60 and -1 <= scores["ssim"] <= 1
        # Only the model has attention to score.
        assert 0 <= kind["model"]["peak_hits"] <= 1
        assert "peak_hits" not in kind["unwarped"] and "peak_hits" not in kind["mean_colour"]
    assert len(data["pairs"]) == 4

    # Recompute one pair independently: the condition is Canny of the photo at the model's size, the
    # model's warp comes from the pipeline, the baselines from the exemplar itself.
    model = load_model_dir(DEMO_MODEL)
    photo = cv2.cvtColor(cv2.imread(str(photos / "astronaut.png")), cv2.COLOR_BGR2RGB)
    photo = cv2.resize(photo, (128, 128), interpolation=cv2.INTER_AREA)
    pair = make_pair(photo, PairKind.flip_shift)
    with TranslationPipeline.open(model, RunnerOptions(backend="ort", threads=1)) as pipeline:
        # A maskmix model's encoder also takes the exemplar's own condition map (Canny of the exemplar).
        own = edge_map(pair.exemplar)[None] if model.condition.maskmix else None
        encoded = pipeline.encode(photo_to_tensor(pair.exemplar), own)
        warped = to_uint8_rgb(pipeline.translate(edge_map(photo)[None], encoded).warped[0])
    row = next(r for r in data["pairs"] if r["photo"] == "astronaut.png" and r["pairs"] == "flip-shift")
    # The report ran 4 pairs in one batch, this recomputation runs one: ONNX Runtime's float rounding may
    # differ by batch, and a bilinear warp turns that into a few pixels one grey level apart (~2e-5 each).
    assert row["model"]["l1"] == pytest.approx(np.abs(warped.astype(float) - photo).mean(), abs=5e-4)
    assert row["unwarped"]["l1"] == pytest.approx(np.abs(pair.exemplar.astype(float) - photo).mean(), abs=1e-6)
    mean_colour = np.round(pair.exemplar.reshape(-1, 3).mean(axis=0))
    assert row["mean_colour"]["l1"] == pytest.approx(np.abs(mean_colour - photo.astype(float)).mean(), abs=1e-6)


def test_eval_warp_table_has_the_three_rows(photos, capsys):
    code, out, err = _run(capsys, "eval", "warp", "--model", DEMO_MODEL, "--photos", str(photos / "*.png"), "--pairs", "crop", "--threads", "1")
    assert code == 0, err
    for title in ("model (warped exemplar)", "unwarped exemplar", "exemplar's mean colour", "pairs: crop"):
        assert title in out
    assert "flip-shift" not in out.split("\n", 1)[1]


def _one_error_line(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0]


def test_bad_photos_are_one_line_errors_and_write_nothing(photos, tmp_path, capsys):
    folder = tmp_path / "photos"
    write_photo(folder / "good.png", index=1, size=160)
    broken = folder / "broken.png"
    broken.write_bytes((folder / "good.png").read_bytes()[:200])
    report = tmp_path / "warp.json"
    code, out, err = _run(capsys, "eval", "warp", "--model", DEMO_MODEL, "--photos", folder, "--report", report)
    assert code == 2 and out == ""
    _one_error_line(err, str(broken), "truncated")
    assert not report.exists()

    broken.unlink()
    write_photo(folder / "tiny.png", index=1, size=40)
    code, _, err = _run(capsys, "eval", "warp", "--model", DEMO_MODEL, "--photos", folder)
    assert code == 2
    _one_error_line(err, "tiny.png", "needs at least 64x64")

    code, _, err = _run(capsys, "eval", "warp", "--model", DEMO_MODEL, "--photos", tmp_path / "missing")
    assert code == 2
    _one_error_line(err, "missing", "no such file or folder")

    code, _, err = _run(capsys, "eval", "warp", "--model", DEMO_MODEL, "--photos", photos, "--recursive", "--pairs", "rotate")
    assert code == 2
    _one_error_line(err, "--pairs", "rotate")


def test_a_model_whose_condition_cannot_come_from_a_photo_is_refused(photos, tmp_path, capsys):
    model = build_tiny_model_dir(tmp_path / "label-model", TinySpec(kind="label", channels=5, extract=None))
    code, _, err = _run(capsys, "eval", "warp", "--model", model, "--photos", photos, "--recursive")
    assert code == 2
    _one_error_line(err, str(model), "cannot be extracted from a photo")


def test_an_existing_report_is_never_replaced_without_overwrite(photos, tmp_path, capsys):
    report = tmp_path / "warp.json"
    report.write_text("mine")
    code, _, err = _run(capsys, "eval", "warp", "--model", DEMO_MODEL, "--photos", photos, "--recursive", "--report", report)
    assert code == 2 and report.read_text() == "mine"
    _one_error_line(err, str(report), "already exists")


# --- the correspondence picture ----------------------------------------------------------------------


def test_attention_probe_rows_reproduce_the_translators_warp():
    """The probe's softmax rows, times the exemplar's values, must give the translator's own warped
    exemplar: the 32x32 warp, enlarged as the model's config says (the demo model: bilinear, half-pixel
    centres, which OpenCV's INTER_LINEAR matches for enlarging)."""
    from mclrt.runtime.inputs.conditions import package_photos
    from mclrt.training.eval.attention import AttentionProbe

    model = load_model_dir(DEMO_MODEL)
    mode = model.manifest.provenance["model_config"]["warp"]
    assert mode in ("nearest", "bilinear")
    photo = cv2.resize(package_photos()[1].rgb, (128, 128), interpolation=cv2.INTER_AREA)
    condition = edge_map(photo)
    with TranslationPipeline.open(model, RunnerOptions(backend="ort", threads=1)) as pipeline, AttentionProbe(model, threads=1) as probe:
        mirrored = np.ascontiguousarray(photo[:, ::-1])
        own = edge_map(mirrored)[None] if model.condition.maskmix else None  # maskmix: the exemplar's own map
        encoded = pipeline.encode(photo_to_tensor(mirrored), own)
        warped = pipeline.translate(condition, encoded).warped[0]
        attention = probe.attention(condition, encoded)
    rows = attention.rows(0, np.arange(1024))
    assert rows.shape == (1024, 1024) and np.allclose(rows.sum(axis=1), 1.0)
    low = (rows @ encoded.values[0].astype(np.float64)).reshape(32, 32, 3).astype(np.float32)
    if mode == "nearest":
        enlarged = low.repeat(4, axis=0).repeat(4, axis=1)
    else:
        enlarged = cv2.resize(low, (128, 128), interpolation=cv2.INTER_LINEAR)
    assert np.abs(enlarged.transpose(2, 0, 1) - warped).max() < 1e-4
    # The peaks are the rows' argmax.
    assert np.array_equal(attention.peaks(0), rows.argmax(axis=1))


def test_peak_hit_rate_against_cells_counted_by_hand():
    """On an 8x8 grid (32-px image, stride 4): peaks on each cell's true cell score 1, peaks two cells
    off score 0, and cells whose true position falls outside the exemplar are not counted."""
    from mclrt.training.eval.attention import Attention, peak_hit_rate

    pair = make_pair(_smooth_image(32, 32), PairKind.flip_shift)
    rows = cols = 8
    true_cells, inside = [], []
    for r in range(rows):
        for c in range(cols):
            x, y = pair.exemplar_position(4 * c + 1.5, 4 * r + 1.5)
            tc, tr = int(math.floor(x / 4)), int(math.floor(y / 4))
            inside.append(0 <= tc < cols and 0 <= tr < rows)
            true_cells.append((tr, tc))
    assert 0 < sum(inside) < rows * cols  # the flip-shift moves strips in: some cells have no true position

    def rate(peak_of) -> float:
        q = np.zeros((1, rows * cols, rows * cols), np.float32)
        for i, (tr, tc) in enumerate(true_cells):
            pr, pc = peak_of(tr, tc)
            q[0, i, min(max(pr, 0), rows - 1) * cols + min(max(pc, 0), cols - 1)] = 1.0
        k = np.eye(rows * cols, dtype=np.float32)[None]
        return peak_hit_rate(Attention(q, k, 100.0, False), 0, pair, (rows, cols, 4))

    assert rate(lambda tr, tc: (tr, tc)) == 1.0
    assert rate(lambda tr, tc: (tr + 1, tc - 1)) == 1.0  # a diagonal neighbour still counts
    assert rate(lambda tr, tc: (tr, tc + 2 if tc + 2 < cols else tc - 2)) == 0.0  # two columns off
    # Half the cells on their truth, half two rows off: the rate is the share of the counted ones.
    half = rate(lambda tr, tc: (tr, tc) if tc % 2 == 0 else (tr + 2 if tr + 2 < rows else tr - 2, tc))
    assert half == pytest.approx(sum(ok for (tr, tc), ok in zip(true_cells, inside) if tc % 2 == 0) / sum(inside))


def test_heatmaps_are_written_per_pair_and_never_replaced(photos, tmp_path, capsys):
    folder = tmp_path / "heatmaps"
    code, _, err = _run(capsys, "eval", "warp", "--model", DEMO_MODEL, "--photos", photos, "--recursive", "--pairs", "flip-shift", "--heatmaps", folder, "--threads", "1")
    assert code == 0, err
    written = sorted(p.name for p in folder.iterdir())
    assert written == ["astronaut_flip-shift.png", "sub__coffee_flip-shift.png"]
    picture = cv2.imread(str(folder / written[0]))
    assert picture.shape[1] == 6 * 192 + 7 * 4 and picture.std() > 10  # six panels: condition, warp, four queries
    before = (folder / written[0]).read_bytes()
    code, _, err = _run(capsys, "eval", "warp", "--model", DEMO_MODEL, "--photos", photos, "--recursive", "--pairs", "flip-shift", "--heatmaps", folder)
    assert code == 2 and (folder / written[0]).read_bytes() == before
    _one_error_line(err, "astronaut_flip-shift.png", "already exists")


def test_a_maskmix_model_gets_each_exemplars_own_condition(photos, tmp_path, capsys):
    """Maskmix encoders also take the exemplar's condition map: extracted from the transformed exemplar."""
    model = build_tiny_model_dir(tmp_path / "maskmix", TinySpec(kind="edge", channels=1, maskmix=True, extract="canny"))
    code, out, err = _run(capsys, "eval", "warp", "--model", model, "--photos", photos, "--recursive", "--json", "--heatmaps", tmp_path / "maps")
    assert code == 0, err
    data = json.loads(out)
    assert data["photos"] == 2 and len(data["pairs"]) == 4 and len(list((tmp_path / "maps").iterdir())) == 4


def test_a_report_inside_the_photo_folder_or_unwritable_is_refused_before_work(photos, tmp_path, capsys):
    code, _, err = _run(capsys, "eval", "warp", "--model", DEMO_MODEL, "--photos", photos, "--recursive", "--report", photos / "warp.json")
    assert code == 2 and not (photos / "warp.json").exists()
    _one_error_line(err, "warp.json", "inside the input folder")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code, _, err = _run(capsys, "eval", "warp", "--model", DEMO_MODEL, "--photos", photos, "--recursive", "--heatmaps", blocker / "maps")
    assert code == 2
    _one_error_line(err, "maps", "is not a folder")
