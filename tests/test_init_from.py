"""`mclrt train --init-from DIR`: a new run from an imported CoCosNet checkpoint's weights.

Real networks, real imported checkpoints (tests/cocosnet_fixtures.py), a real training step.
"""

from __future__ import annotations

import json

import pytest
import torch

from cocosnet_fixtures import REDUCED, parity_inputs, write_upstream_dir
from mclrt.runtime.errors import UserError
from mclrt.training.cocosnet_import import import_cocosnet, model_config, upstream_files
from mclrt.training.init_from import init_from_checkpoint
from mclrt.training.networks import build_networks


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    root = tmp_path_factory.mktemp("init_from")
    files = upstream_files(write_upstream_dir(root / "upstream", "ade20k"), None, None)
    return import_cocosnet(files, "paper-ade20k", root / "checkpoint", overrides=REDUCED)


def _outputs(model, scm_free_inputs=None):
    x = {k: torch.from_numpy(v) for k, v in parity_inputs("ade20k").items()}
    model.eval()
    with torch.no_grad():
        return model(x["condition"], x["exemplar"], x["exemplar_condition"])


def test_without_scm_the_step_0_model_is_the_imported_one(imported):
    from mclrt.export.checkpoint import load_checkpoint_source
    from safetensors.torch import load_file

    said = []
    cfg = model_config("paper-ade20k", REDUCED)
    nets = build_networks(cfg, seed=11)
    assert init_from_checkpoint(imported, cfg, nets["model"], nets["discriminator"], said.append) == []
    state = load_file(str(imported / "model.safetensors"))
    assert all(torch.equal(nets["model"].state_dict()[k], v) for k, v in state.items())
    ours = _outputs(nets["model"])
    reference = _outputs(load_checkpoint_source(imported).model)  # what export computes from the import
    worst = max(float((a - b).abs().max()) for a, b in zip(ours, reference))
    assert worst <= 1e-6, worst
    assert "weights only, fresh optimizers, step 0" in said[0] and "CoCosNet (no SCM, no MCL)" in said[0]
    assert said[-1].startswith("discriminator: fresh")


def test_with_scm_the_new_layer_is_named_and_the_output_moves(imported, capsys):
    said = []
    cfg = model_config("paper-ade20k", {**REDUCED, "use_scm": True})
    nets = build_networks(cfg, seed=11)
    new = init_from_checkpoint(imported, cfg, nets["model"], nets["discriminator"], said.append)
    assert new == ["corr.scm.fc.weight", "corr.scm.fc.bias"]
    assert any(line.startswith("new parameters, starting from their initialization: corr.scm.fc.weight, corr.scm.fc.bias") for line in said)
    plain = build_networks(model_config("paper-ade20k", REDUCED), seed=11)
    init_from_checkpoint(imported, model_config("paper-ade20k", REDUCED), plain["model"], plain["discriminator"], lambda _: None)
    (image, warp), (image0, warp0) = _outputs(nets["model"]), _outputs(plain["model"])
    moved = {
        "image_max": float((image - image0).abs().max()), "image_mean": float((image - image0).abs().mean()),
        "warp_max": float((warp - warp0).abs().max()), "warp_mean": float((warp - warp0).abs().mean()),
    }
    print("step-0 movement with a fresh SCM (ade20k, ngf 8, 128 px, random weights):", json.dumps(moved))
    assert moved["image_mean"] > 0  # the SCM takes part from step 0 (its cosine is half the similarity)


def test_a_different_model_is_refused_in_one_line(imported):
    cfg = model_config("paper-ade20k", {**REDUCED, "ngf": 16})
    nets = build_networks(cfg, seed=0)
    with pytest.raises(UserError, match=r"--init-from: the run's model differs from the checkpoint's \(ngf 16 vs 8"):
        init_from_checkpoint(imported, cfg, nets["model"], nets["discriminator"])


def test_train_runs_a_step_from_an_imported_style_checkpoint_with_scm_and_mcl_on(tmp_path, capsys):
    """Through `mclrt train --init-from`: a checkpoint without SCM (as an import is), a run with
    model.use_scm true and loss.mcl on; it trains one step and its first line says what is new."""
    from export_fixtures import write_fresh_checkpoint
    from train_fixtures import tiny_config_dict, write_photo_folder

    import yaml

    from mclrt.runtime.cli import main

    photos = write_photo_folder(tmp_path / "photos", count=2, size=64)
    data = tiny_config_dict(photos, tmp_path / "run", schedule={"steps": 1, "decay_steps": 0})
    source_model = {**data["model"], "use_scm": False}
    source = write_fresh_checkpoint(tmp_path / "source", "nano", {k: v for k, v in source_model.items() if k != "preset"}, seed=4)
    data["model"] = {**data["model"], "use_scm": True}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(data))
    code = main(["train", "--config", str(tmp_path / "config.yaml"), "--init-from", str(source), "--out", str(tmp_path / "run"), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["step"] == 1
    assert "weights only, fresh optimizers, step 0" in err and "new parameters, starting from their initialization: corr.scm.fc.weight, corr.scm.fc.bias" in err
    assert "discriminator: from the checkpoint" in err


def test_an_import_with_upstreams_net_d_loads_it(tmp_path):
    """`mclrt import cocosnet` found a net_D.pth: the run's discriminator is upstream's (no "fresh" line),
    and one that lacks some of mclrt's parameters names them."""
    from cocosnet_fixtures import D_REDUCED, save_upstream
    from safetensors.torch import load_file

    up = write_upstream_dir(tmp_path / "upstream", "ade20k", discriminator=True)
    checkpoint = import_cocosnet(upstream_files(up, None, None), "paper-ade20k", tmp_path / "ck", overrides=D_REDUCED,
                                 discriminator=up / "latest_net_D.pth")
    said = []
    cfg = model_config("paper-ade20k", D_REDUCED)
    nets = build_networks(cfg, seed=5)
    init_from_checkpoint(checkpoint, cfg, nets["model"], nets["discriminator"], said.append)
    assert said[-1] == "discriminator: from the checkpoint (latest_net_D.pth)"
    assert not any("fresh (" in line for line in said)
    state = load_file(str(checkpoint / "discriminator.safetensors"))
    assert set(state) == set(nets["discriminator"].state_dict())
    assert all(torch.equal(nets["discriminator"].state_dict()[k], v) for k, v in state.items())

    partial = torch.load(up / "latest_net_D.pth", weights_only=True)
    save_upstream(type(partial)((k, v) for k, v in partial.items() if not k.startswith("discriminator_1.attn.")), tmp_path / "partial.pth")
    checkpoint = import_cocosnet(upstream_files(up, None, None), "paper-ade20k", tmp_path / "ck2", overrides=D_REDUCED,
                                 discriminator=tmp_path / "partial.pth")
    nets = build_networks(cfg, seed=5)
    said.clear()
    init_from_checkpoint(checkpoint, cfg, nets["model"], nets["discriminator"], said.append)
    assert said[-1].startswith("discriminator: from the checkpoint (partial.pth); not in it, starting fresh: scales.1.layers.3.0.gamma, ")
    assert float(nets["discriminator"].scales[1].layers[3][0].gamma.detach()) == 0.0  # fresh attention is the identity


def test_train_runs_a_step_from_an_import_with_net_d(tmp_path, capsys):
    """`mclrt train --init-from` an import that carries upstream's netD, on a tiny ADE20K-layout data set:
    the discriminator comes from the import (no "fresh" line) and a step trains."""
    import cv2
    import numpy as np
    import yaml

    from cocosnet_fixtures import D_REDUCED
    from mclrt.runtime.cli import main
    from mclrt.runtime.inputs.conditions import package_photos
    from train_fixtures import tiny_config_dict

    up = write_upstream_dir(tmp_path / "upstream", "ade20k", discriminator=True)
    checkpoint = import_cocosnet(upstream_files(up, None, None), "paper-ade20k", tmp_path / "ck", overrides=D_REDUCED,
                                 discriminator=up / "latest_net_D.pth")
    root = tmp_path / "ADEChallengeData2016"
    rng = np.random.default_rng(0)
    names = [f"ADE_train_{i:08d}.jpg" for i in range(1, 3)]
    for name, photo in zip(names, package_photos()):
        rgb = cv2.resize(np.ascontiguousarray(photo.rgb), (144, 144), interpolation=cv2.INTER_AREA)
        (root / "images" / "training").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "images" / "training" / name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        labels = np.kron(rng.integers(1, 151, size=(6, 6)), np.ones((24, 24), np.int64)).astype(np.uint8)
        (root / "annotations" / "training").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "annotations" / "training" / name.replace(".jpg", ".png")), labels)
    (root / "ade20k_ref.txt").write_text("".join(f"{a},{b},{b}\n" for a, b in zip(names, names[::-1])))
    data = tiny_config_dict(root, tmp_path / "run", schedule={"steps": 1, "decay_steps": 0}, train={"batch_size": 1})
    data["model"] = {"preset": "paper-ade20k", **D_REDUCED, "use_scm": False}
    data["data"] = {"kind": "ade20k", "root": str(root)}
    data["loss"] = {**data["loss"], "mcl": 0.0}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(data))
    code = main(["train", "--config", str(tmp_path / "config.yaml"), "--init-from", str(checkpoint), "--out", str(tmp_path / "run"), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["step"] == 1
    assert "discriminator: from the checkpoint (latest_net_D.pth)" in err and "discriminator: fresh" not in err
