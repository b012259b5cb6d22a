"""The MCL-Net networks: shapes, determinism, the SCM, the correspondence function, spectral norm."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch

from mclrt.training.config import PRESETS, load_model_config
from mclrt.training.correspondence import (
    correspondence_chunked,
    correspondence_explicit,
    correspondence_softmax,
)
from mclrt.training.networks import (
    MCLNet,
    SelfCorrelationMap,
    build_networks,
    count_parameters,
    patchify,
    remove_spectral_norm,
    unpatchify,
)


def _inputs(cfg, batch, generator=None):
    size = cfg.image_size
    condition = torch.rand(batch, cfg.label_nc, size, size, generator=generator)
    exemplar = torch.rand(batch, 3, size, size, generator=generator) * 2 - 1
    exemplar_condition = torch.rand(batch, cfg.label_nc, size, size, generator=generator) if cfg.maskmix else None
    return condition, exemplar, exemplar_condition


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("batch", [1, 3])
def test_forward_shapes_every_preset(preset, batch):
    """Every preset's training and inference paths, traced with shape-only (meta) tensors so that the
    1-TFLOP paper models are checked in seconds; the small presets also run for real below."""
    cfg = PRESETS[preset]
    with torch.device("meta"):
        nets = build_networks(cfg)
        model, disc = nets["model"], nets["discriminator"]
        condition, exemplar, exemplar_condition = _inputs(cfg, batch)
        corr = model.corr(condition, exemplar, exemplar_condition)
        keys, values = model.encode_exemplar(exemplar, exemplar_condition)
        image, warped = model.translate(condition, keys, values)
        d_out = disc(condition, image)
    size, n = cfg.image_size, cfg.positions
    assert corr.warped.shape == (batch, 3, size, size)
    assert corr.warped_low.shape == (batch, cfg.value_width, cfg.corr_size, cfg.corr_size)
    assert corr.q.shape == (batch, n, cfg.descriptor_width) and corr.k.shape == corr.q.shape
    assert corr.cond_feat.shape == (batch, cfg.feature_nc, cfg.corr_size, cfg.corr_size)
    assert keys.shape == (batch, n, cfg.descriptor_width)
    assert values.shape == (batch, n, cfg.value_width)
    assert image.shape == warped.shape == (batch, 3, size, size)
    assert len(d_out) == cfg.num_d and all(len(scale) == cfg.n_layers_d + 1 for scale in d_out)
    assert d_out[0][-1].shape[:2] == (batch, 1)


@pytest.mark.parametrize("preset", ["nano", "edge-small"])
def test_real_forward_small_presets(preset):
    cfg = PRESETS[preset]
    model = build_networks(cfg, seed=0)["model"].eval()
    batch = 3 if preset == "nano" else 1  # edge-small runs at 256²; batch 3 is covered by the shape test
    condition, exemplar, exemplar_condition = _inputs(cfg, batch, torch.Generator().manual_seed(1))
    with torch.no_grad():
        image, warped = model(condition, exemplar, exemplar_condition)
    assert image.shape == (batch, 3, cfg.image_size, cfg.image_size)
    assert torch.isfinite(image).all() and image.abs().max() <= 1
    # The warp is a convex combination of exemplar pixels: it stays inside the exemplar's range.
    assert warped.min() >= exemplar.min() - 1e-5 and warped.max() <= exemplar.max() + 1e-5


def test_paper_descriptor_widths_and_parameter_counts():
    cfg = PRESETS["paper-ade20k"]
    assert cfg.positions == 4096 and cfg.descriptor_width == 2304 + 256
    with torch.device("meta"):
        model = MCLNet(cfg)
    scm = count_parameters(model.corr.scm)
    assert scm == 4096 * 256 + 256
    # Reference counts measured on the upstream CoCosNet code (ADE20k test options), within 3 %.
    assert abs((count_parameters(model.corr) - scm) / 59.3e6 - 1) < 0.03
    assert abs(count_parameters(model.generator) / 96.7e6 - 1) < 0.03


def test_widths_follow_ngf():
    cfg = load_model_config("nano", {"ngf": 8})
    with torch.device("meta"):
        model = MCLNet(cfg)
    assert model.corr.theta.out_channels == 32 and model.corr.adaptor_cond.head_0.norm_0.mlp_shared[1].out_channels == 16
    assert model.generator.fc.out_channels == 128


def test_same_seed_same_outputs():
    cfg = PRESETS["nano"]
    inputs = _inputs(cfg, 1, torch.Generator().manual_seed(3))
    outs = []
    for _ in range(2):
        model = build_networks(cfg, seed=123)["model"].eval()
        with torch.no_grad():
            outs.append(model(*inputs)[0])
    assert torch.equal(outs[0], outs[1])
    other = build_networks(cfg, seed=124)["model"].eval()
    with torch.no_grad():
        assert not torch.equal(other(*inputs)[0], outs[0])


def test_scm_reassociation_equals_definition():
    torch.manual_seed(0)
    scm = SelfCorrelationMap(positions=4096, out_dim=256)
    torch.nn.init.normal_(scm.fc.weight, std=0.02)
    torch.nn.init.normal_(scm.fc.bias, std=0.02)
    x = torch.nn.functional.normalize(torch.randn(2, 256, 4096), dim=1)
    fast, naive = scm(x), scm.naive(x)
    rel = (fast - naive).norm() / naive.norm()
    assert rel < 1e-5
    assert (fast - naive).abs().max() / naive.abs().max() < 1e-5


@pytest.mark.parametrize("mask_negative", [False, True])
def test_correspondence_paths_agree(mask_negative):
    g = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(2, 1000, 96, generator=g), dim=2)
    k = torch.nn.functional.normalize(torch.randn(2, 700, 96, generator=g), dim=2)
    v = torch.rand(2, 700, 48, generator=g) * 2 - 1
    ref = correspondence_explicit(q, k, v, 100.0, mask_negative)
    chunked = correspondence_chunked(q, k, v, 100.0, mask_negative, chunk_size=128)
    auto = correspondence_softmax(q, k, v, 100.0, mask_negative, chunk_size=333)
    assert (ref - chunked).abs().max() < 1e-5
    assert (ref - auto).abs().max() < 1e-5
    # Independent float64 definition.
    sim = q.double() @ k.double().transpose(1, 2)
    if mask_negative:
        sim = sim.clamp_min(0)
    expected = torch.softmax(100 * sim, dim=-1) @ v.double()
    assert (ref.double() - expected).abs().max() < 1e-5


def test_mask_negative_changes_only_negative_similarities():
    q = torch.tensor([[[1.0, 0.0]]])
    k = torch.tensor([[[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]]])
    v = torch.eye(3).unsqueeze(0)
    plain = correspondence_softmax(q, k, v, 1.0)[0, 0]
    masked = correspondence_softmax(q, k, v, 1.0, mask_negative=True)[0, 0]
    # Without the mask the anti-correlated key gets less weight than the orthogonal one; with it, the same.
    assert plain[1] < plain[2]
    assert torch.allclose(masked[1], masked[2])


def test_chunked_path_gradients_match_explicit():
    g = torch.Generator().manual_seed(1)
    q = torch.randn(1, 300, 16, generator=g, requires_grad=True)
    k = torch.randn(1, 200, 16, generator=g, requires_grad=True)
    v = torch.randn(1, 200, 3, generator=g, requires_grad=True)
    grads = []
    for fn in (lambda: correspondence_explicit(q, k, v, 10.0), lambda: correspondence_chunked(q, k, v, 10.0, chunk_size=64)):
        q.grad = k.grad = v.grad = None
        fn().square().sum().backward()
        grads.append([t.grad.clone() for t in (q, k, v)])
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-5)


_PEAK_SCRIPT = textwrap.dedent(
    """
    import json, sys, torch
    from mclrt.training.correspondence import correspondence_softmax
    torch.set_num_threads(2)
    b, n, c = 4, 4096, 256
    q = torch.nn.functional.normalize(torch.randn(b, n, c), dim=2)
    k = torch.nn.functional.normalize(torch.randn(b, n, c), dim=2)
    v = torch.rand(b, n, 3)
    correspondence_softmax(q[:, :8], k[:, :8], v[:, :8])  # warm up the allocator and kernels

    def status_kib(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))

    # Reset the peak-RSS watermark (Linux: "5" > clear_refs), so an earlier peak -- imports, input
    # creation -- cannot hide the call's own; then the call's peak is VmHWM after minus VmRSS before.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = status_kib("VmRSS") * 1024
    with torch.no_grad():
        out = correspondence_softmax(q, k, v, chunk_size=None if sys.argv[1] == "auto" else int(sys.argv[1]))
    after = status_kib("VmHWM") * 1024
    print(json.dumps({"growth": after - before, "shape": list(out.shape)}))
    """
)


def _peak_growth(mode: str) -> int:
    proc = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, mode], capture_output=True, text=True, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["shape"] == [4, 4096, 3]
    return result["growth"]


def test_memory_efficient_path_never_builds_the_full_matrix():
    """64×64 correspondence at batch 4: one full similarity matrix is 4·4096·4096·4 B = 256 MiB."""
    full_matrix = 4 * 4096 * 4096 * 4
    chunked_growth = _peak_growth("auto")  # N·M = 16.7 M > the explicit limit, so this is chunked
    explicit_growth = _peak_growth("4096")  # one chunk = the explicit path, as a control
    assert explicit_growth >= full_matrix * 0.9
    # Chunks of 1024 rows: one 4·1024·4096 buffer (a quarter of the matrix) at a time.
    assert chunked_growth < full_matrix / 2


def test_patch_round_trip():
    x = torch.arange(2 * 3 * 16 * 16, dtype=torch.float32).reshape(2, 3, 16, 16)
    rows = patchify(x, 4)
    assert rows.shape == (2, 16, 48)
    assert torch.equal(unpatchify(rows, 3, 16, 4), x)
    # Row 0 is the top-left 4×4 patch, channel-major.
    assert torch.equal(rows[0, 0].reshape(3, 4, 4), x[0, :, :4, :4])


def test_spectral_norm_removal_keeps_outputs():
    cfg = PRESETS["nano"]
    nets = build_networks(cfg, seed=0)
    model, disc = nets["model"], nets["discriminator"]
    condition, exemplar, _ = _inputs(cfg, 2, torch.Generator().manual_seed(0))
    model.train()
    with torch.no_grad():  # a few training-mode forwards move the power-iteration vectors u, v
        for _ in range(3):
            model(condition, exemplar)
    model.eval()
    disc.eval()
    with torch.no_grad():
        before = model(condition, exemplar)[0]
        d_before = disc(condition, before)[0][-1]
        remove_spectral_norm(model)
        remove_spectral_norm(disc)
        after = model(condition, exemplar)[0]
        d_after = disc(condition, after)[0][-1]
    assert not any("parametrizations" in name for name in model.state_dict())
    assert (before - after).abs().max() < 1e-5
    assert (d_before - d_after).abs().max() < 1e-5


def test_unknown_preset_and_field_are_user_errors():
    from mclrt.runtime.errors import UserError

    with pytest.raises(UserError, match="unknown preset"):
        load_model_config("nope")
    with pytest.raises(UserError, match="unknown model field"):
        load_model_config("nano", {"ngff": 3})
    with pytest.raises(UserError, match="maskmix_downsample must be one of nearest, area"):
        load_model_config("nano", {"maskmix_downsample": "bicubic"})
    with pytest.raises(UserError, match="warp must be one of"):
        load_model_config("nano", {"warp": "linear"})


@pytest.mark.parametrize("downsample, sees_it", [("nearest", False), ("area", True)])
def test_maskmix_area_keeps_edges_that_nearest_sampling_drops(downsample, sees_it):
    """A 1-px Canny line on a column that nearest sampling to the correspondence grid never reads
    (columns 4j+1) changes the keys only when maskmix averages the map (edge density per cell)."""
    cfg = load_model_config("nano", {"maskmix": True, "maskmix_downsample": downsample})
    torch.manual_seed(0)
    model = build_networks(cfg, seed=0)["model"].eval()
    exemplar = torch.rand(1, 3, cfg.image_size, cfg.image_size) * 2 - 1
    blank = torch.zeros(1, 1, cfg.image_size, cfg.image_size)
    lined = blank.clone()
    lined[..., 4 * 10 + 1] = 1.0  # one vertical line, column 41
    with torch.no_grad():
        keys_blank, _ = model.encode_exemplar(exemplar, blank)
        keys_lined, _ = model.encode_exemplar(exemplar, lined)
    changed = (keys_blank - keys_lined).abs().amax().item()
    assert (changed > 1e-4) is sees_it, changed
