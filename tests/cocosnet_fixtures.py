"""CoCosNet checkpoints as upstream saves them, made from nothing but their layout and a seed.

`tests/fixtures/cocosnet/upstream_layout.json` holds facts computed once by running
microsoft/CoCosNet's own network code (HEAD de0c1bb) with the README's test options: the key names
and shapes of netCorr and netG, in state-dict order, for ade20k, celebahqedge and deepfashion at the
paper size (ngf 64) and at the reduced size of the parity fixture (ngf 8, 128 px). `parity.npz` holds
that code's outputs at the reduced size on weights from `upstream_state(layout, seed)` below, which is
the one recipe both sides use: the fixture script loaded these exact tensors into upstream's networks
(strictly), and the tests save them as upstream does (`torch.save` of an OrderedDict with spectral
norm's `weight_orig/_u/_v`) and import them. No upstream code is in this repository.

`upstream_d_layout.json` and `d_parity.npz` do the same for upstream's discriminator (netD, built by
upstream's TrainOptions from the README's training commands): its layout at paper size (ndf 64) and at
ndf 8, and at ndf 8 its features 3 (after the attention block) and 4 (the logits) of both scales on the
parity fixture's condition and exemplar, with weights `upstream_state(layout, seed=2)`.

How the fixtures were made: docs/cocosnet.md, "How parity was checked".
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

FIXTURES = Path(__file__).parent / "fixtures" / "cocosnet"
LAYOUT = FIXTURES / "upstream_layout.json"
PARITY = FIXTURES / "parity.npz"
DATASETS = {"ade20k": "paper-ade20k", "celebahqedge": "paper-celebahq-edge", "deepfashion": "paper-deepfashion"}
REDUCED = {"ngf": 8, "image_size": 128}  # the parity fixture's size (mclrt overrides)
D_LAYOUT = FIXTURES / "upstream_d_layout.json"
D_PARITY = FIXTURES / "d_parity.npz"
D_REDUCED = {**REDUCED, "ndf": 8}  # the discriminator parity fixture's size
D_SEED = 2


def layouts() -> dict:
    return json.loads(LAYOUT.read_text())


def upstream_state(layout: list[list], seed: int) -> "OrderedDict[str, torch.Tensor]":
    """A random state dict in upstream's layout: weights ~ N(0, 1/fan_in), biases ~ N(0, 0.1²), PReLU
    0.25, attention gamma 0.5 (so the attention branch counts), and spectral norm's u, v the converged
    singular vectors of weight_orig (as after training, so W / σ is well scaled)."""
    g = torch.Generator().manual_seed(seed)
    state: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, shape in layout:
        shape = tuple(shape)
        leaf = key.rsplit(".", 1)[-1]
        if leaf in ("weight_u", "weight_v"):
            continue  # filled with their weight_orig
        if leaf == "gamma" and shape == ():
            state[key] = torch.tensor(0.5)
        elif key.endswith("prelu.weight"):
            state[key] = torch.full(shape, 0.25)
        elif leaf == "bias":
            state[key] = torch.randn(shape, generator=g) * 0.1
        elif leaf in ("weight", "weight_orig") and len(shape) >= 2:
            fan_in = int(np.prod(shape[1:]))
            state[key] = torch.randn(shape, generator=g) / fan_in**0.5
            if leaf == "weight_orig":
                w = state[key].reshape(shape[0], -1).double()
                v = torch.randn(w.shape[1], generator=g, dtype=torch.float64)
                v = v / v.norm()
                for _ in range(30):
                    u = w @ v
                    u = u / u.norm()
                    v = w.t() @ u
                    v = v / v.norm()
                base = key[: -len("weight_orig")]
                state[base + "weight_u"] = u.float()
                state[base + "weight_v"] = v.float()
        else:
            raise ValueError(f"no recipe for {key} {shape}")
    # upstream's order (weight_orig, weight_u, weight_v, ...), as torch.save writes it
    return OrderedDict((key, state[key]) for key, _ in layout)


def save_upstream(state: "OrderedDict[str, torch.Tensor]", path: Path) -> Path:
    """`torch.save(net.state_dict(), path)` as upstream's util.save_network writes it (with the
    `_metadata` spectral norm version 1 that a state_dict carries)."""
    metadata = {}
    for key in state:
        if key.endswith(".weight_orig"):
            metadata[key[: -len(".weight_orig")]] = {"spectral_norm": {"version": 1}}
    out = OrderedDict(state)
    out._metadata = metadata  # type: ignore[attr-defined]
    torch.save(out, str(path))
    return path


def d_layouts() -> dict:
    return json.loads(D_LAYOUT.read_text())


def write_upstream_dir(
    folder: Path, dataset: str, size: str = "reduced", seed: int = 0, epoch: str = "latest", discriminator: bool = False
) -> Path:
    """`folder/<epoch>_net_Corr.pth` and `_net_G.pth` of random weights in upstream's layout (and
    `_net_D.pth`, the discriminator with the parity fixture's weights, where `discriminator`; at the
    reduced size its ndf is 8: import it with D_REDUCED)."""
    folder.mkdir(parents=True, exist_ok=True)
    layout = layouts()[size][dataset]
    save_upstream(upstream_state(layout["Corr"], seed), folder / f"{epoch}_net_Corr.pth")
    save_upstream(upstream_state(layout["G"], seed + 1), folder / f"{epoch}_net_G.pth")
    if discriminator:
        save_upstream(upstream_state(d_layouts()[size][dataset], D_SEED), folder / f"{epoch}_net_D.pth")
    return folder


def d_parity_outputs(dataset: str) -> dict[str, np.ndarray]:
    """Upstream netD's outputs at ndf 8 on `parity_inputs(dataset)`: `scale<s>/feature<i>`, i in 3, 4."""
    data = np.load(D_PARITY)
    prefix = f"{dataset}/"
    return {k[len(prefix):]: data[k] for k in data.files if k.startswith(prefix)}


def parity_inputs(dataset: str) -> dict[str, np.ndarray]:
    """The fixture's inputs as float32 arrays, as both sides fed them: condition, exemplar and the
    exemplar's condition (NCHW, batch 1)."""
    data = np.load(PARITY)
    exemplar = data[f"{dataset}/exemplar"].astype(np.float32) / 127.5 - 1.0
    if dataset == "ade20k":
        eye = np.eye(151, dtype=np.float32)
        condition = eye[data[f"{dataset}/label"].astype(np.int64)].transpose(2, 0, 1)
        ref_condition = eye[data[f"{dataset}/ref_label"].astype(np.int64)].transpose(2, 0, 1)
    else:
        condition = data[f"{dataset}/condition"].astype(np.float32) / 255.0
        ref_condition = data[f"{dataset}/ref_condition"].astype(np.float32) / 255.0
    return {
        "condition": condition[None].copy(),
        "exemplar": exemplar.transpose(2, 0, 1)[None].copy(),
        "exemplar_condition": ref_condition[None].copy(),
    }


def parity_outputs(dataset: str) -> dict[str, np.ndarray]:
    data = np.load(PARITY)
    return {"image": data[f"{dataset}/image"], "warped_exemplar": data[f"{dataset}/warp"]}
