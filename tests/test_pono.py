"""The positional-normalization variant (model.pono): unbiased (÷ C-1) as CoCosNet computes it, biased
(÷ C) for every model trained before the field existed -- the committed demo model among them.

Real torch modules and real ONNX Runtime sessions; the only hand-written formulas are the two
definitions (mclrt's old expression, and `x.var(dim=1)` as CoCosNet's PositionalNorm2d calls it).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from mclrt.training.config import PRESETS, load_model_config, model_config_from_dict
from mclrt.training.networks import MCLNet, PositionalNorm2d, build_networks

DEMO = Path(__file__).resolve().parents[1] / "runtime" / "models" / "demo"


class _PonoBeforeTheField(torch.nn.Module):
    """mclrt's PositionalNorm2d exactly as it was before `model.pono` (commit bba8955)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=1, keepdim=True)
        var = (x - mean).pow(2).mean(dim=1, keepdim=True)
        return (x - mean) / torch.sqrt(var + 1e-5)


def _x(channels: int = 7) -> torch.Tensor:
    return torch.randn(2, channels, 5, 6, generator=torch.Generator().manual_seed(0)) * 3 + 1


def test_biased_is_the_old_expression_bit_for_bit():
    x = _x()
    assert torch.equal(PositionalNorm2d()(x), _PonoBeforeTheField()(x))


def test_unbiased_is_torch_var_over_channels():
    x = _x()
    expected = (x - x.mean(dim=1, keepdim=True)) / x.var(dim=1, keepdim=True).add(1e-5).sqrt()  # CoCosNet's formula
    got = PositionalNorm2d(unbiased=True)(x)
    assert torch.allclose(got, expected, atol=1e-6, rtol=0)
    # and the two variants really differ: the biased output is larger by sqrt(C/(C-1))
    ratio = (PositionalNorm2d()(x) / got)[x.std(dim=1, keepdim=True).expand_as(x) > 0.5]
    assert torch.allclose(ratio, torch.full_like(ratio, (7 / 6) ** 0.5), atol=1e-4)


def test_paper_presets_are_unbiased_the_others_and_old_configs_biased():
    assert {name: cfg.pono for name, cfg in PRESETS.items()} == {
        "paper-ade20k": "unbiased",
        "paper-celebahq-edge": "unbiased",
        "paper-deepfashion": "unbiased",
        "edge-small": "biased",
        "nano": "biased",
    }
    old = load_model_config("paper-ade20k").to_dict()
    del old["pono"]  # a checkpoint's model_config written before the field
    assert model_config_from_dict(old).pono == "biased"
    assert load_model_config("nano", {"pono": "unbiased"}).pono == "unbiased"
    from mclrt.runtime.errors import UserError

    with pytest.raises(UserError, match="model.pono must be one of biased, unbiased"):
        load_model_config("nano", {"pono": "n-1"})


def test_the_flag_reaches_every_spade_block():
    model = MCLNet(load_model_config("nano", {"ngf": 4, "pono": "unbiased"}))
    norms = [m for m in model.modules() if isinstance(m, PositionalNorm2d)]
    # adaptors: 3 blocks x 2 norms, + norm_s of G_middle_1; generator: 7 blocks x 2, + norm_s of up_0..up_3
    assert len(norms) == 2 * (3 * 2 + 1) + 7 * 2 + 4
    assert all(m.unbiased for m in norms)
    assert not any(m.unbiased for m in MCLNet(load_model_config("nano", {"ngf": 4})).modules() if isinstance(m, PositionalNorm2d))


def test_the_demo_model_keeps_its_biased_variant_and_outputs():
    """The demo model's recorded config (mclrt.json, written before the field) resolves to the biased
    variant, and a model of exactly that config computes bit-identical outputs to the pre-field code."""
    manifest = json.loads((DEMO / "mclrt.json").read_text())
    recorded = manifest["provenance"]["model_config"]
    assert "pono" not in recorded
    config = model_config_from_dict(recorded)
    assert config.pono == "biased"
    torch.manual_seed(0)
    model = build_networks(config, seed=3)["model"].eval()
    old = build_networks(config, seed=3)["model"].eval()
    for module in old.modules():  # the same network with the pre-field normalization swapped in
        for name, child in list(module.named_children()):
            if isinstance(child, PositionalNorm2d):
                setattr(module, name, _PonoBeforeTheField())
    size, nc = config.image_size, config.label_nc
    g = torch.Generator().manual_seed(1)
    condition = (torch.rand(1, nc, size, size, generator=g) > 0.9).float()
    exemplar = torch.rand(1, 3, size, size, generator=g) * 2 - 1
    with torch.no_grad():
        new_out = model(condition, exemplar, condition)
        old_out = old(condition, exemplar, condition)
    assert all(torch.equal(a, b) for a, b in zip(new_out, old_out))


@pytest.mark.parametrize("pono", ["biased", "unbiased"])
def test_export_carries_the_variant_into_onnx_without_a_custom_op(tmp_path, pono):
    """Export, then ONNX Runtime: matches PyTorch of its own variant, not the other one's; no new
    op domain in the graphs (only the correspondence node's)."""
    import onnx

    from mclrt.export.checkpoint import SourceModel, prepare_for_export
    from mclrt.export.onnx_export import ExportOptions, export_model_dir
    from mclrt.export.parity import ParityOptions, check_parity
    from mclrt.runtime.model_dir import load_model_dir

    overrides = {"ngf": 8, "ndf": 4, "pono": pono}  # (ngf 4 without maskmix sits at the parity tolerance either way)
    config = load_model_config("nano", overrides)
    source = SourceModel(prepare_for_export(build_networks(config, seed=0)["model"]), config, {"init": "test", "model_config": config.to_dict()})
    out = export_model_dir(source, tmp_path / "model", ExportOptions(verify=False)).path
    assert load_model_dir(out).manifest.provenance["model_config"]["pono"] == pono
    report = check_parity(source.model, out, ParityOptions(batches=(1,)))
    assert report.ok, report.summary()

    translator = onnx.load(str(out / "translator.onnx"))
    domains = {n.domain for n in translator.graph.node} - {"", "ai.onnx"}
    assert len(domains) <= 1 and all("mclrt" in d for d in domains), domains

    other = load_model_config("nano", {**overrides, "pono": "unbiased" if pono == "biased" else "biased"})
    other_model = prepare_for_export(build_networks(other, seed=0)["model"])
    g = torch.Generator().manual_seed(5)
    condition = (torch.rand(1, 1, 128, 128, generator=g) > 0.9).float()
    exemplar = torch.rand(1, 3, 128, 128, generator=g) * 2 - 1
    enc = ort.InferenceSession(str(out / "exemplar_encoder.onnx"), providers=["CPUExecutionProvider"])
    tr = ort.InferenceSession(str(out / "translator.onnx"), providers=["CPUExecutionProvider"])
    feeds = {"exemplar": exemplar.numpy()}
    if any(i.name == "exemplar_condition" for i in enc.get_inputs()):
        feeds["exemplar_condition"] = condition.numpy()
    keys, values = enc.run(None, feeds)
    image, _ = tr.run(None, {"condition": condition.numpy(), "exemplar_keys": keys, "exemplar_values": values})
    with torch.no_grad():
        own, _ = source.model(condition, exemplar, condition)
        theirs, _ = other_model(condition, exemplar, condition)
    assert np.abs(image - own.numpy()).max() < 1e-4
    assert np.abs(image - theirs.numpy()).max() > 10 * np.abs(image - own.numpy()).max()


def test_resuming_a_checkpoint_written_before_the_field_keeps_its_biased_variant(tmp_path):
    """`mclrt train --resume` of a paper-preset run whose checkpoint predates model.pono continues
    biased (and records it); a config that names model.pono, or a checkpoint that records it, decides."""
    from export_fixtures import write_fresh_checkpoint

    from mclrt.training.options import config_from_dict
    from mclrt.training.train import _keep_recorded_pono

    folder = write_fresh_checkpoint(tmp_path / "run", "nano", {"ngf": 4, "ndf": 4})
    meta = json.loads((folder / "meta.json").read_text())
    del meta["model_config"]["pono"]
    (folder / "meta.json").write_text(json.dumps(meta))
    said = []
    paper = config_from_dict({"model": {"preset": "paper-deepfashion"}, "data": {"kind": "deepfashion"}, "schedule": {"steps": 1}})
    kept = _keep_recorded_pono(paper, folder, said.append)
    assert kept.model_config().pono == "biased" and kept.model["pono"] == "biased"
    assert said and "predates model.pono" in said[0]
    named = config_from_dict({"model": {"preset": "paper-deepfashion", "pono": "unbiased"}, "data": {"kind": "deepfashion"}, "schedule": {"steps": 1}})
    assert _keep_recorded_pono(named, folder, said.append).model_config().pono == "unbiased"
    meta["model_config"]["pono"] = "unbiased"
    (folder / "meta.json").write_text(json.dumps(meta))
    assert _keep_recorded_pono(paper, folder, said.append).model_config().pono == "unbiased"
