"""`mclrt import cocosnet`: CoCosNet's released checkpoint layout → an mclrt checkpoint, checked against
facts and outputs computed once with microsoft/CoCosNet's own code (tests/cocosnet_fixtures.py).

- key map: every upstream key of netCorr + netG renames onto MCLNet's state dict of the matching paper
  preset (use_scm false), one to one, shapes equal, for all three datasets at paper size;
- parity: upstream-format files of seeded random weights (reduced size: ngf 8, 128 px) go through the
  importer and `export_model_dir`, and ONNX Runtime reproduces upstream's image and warped exemplar;
- hostile files: one line naming the file and the first offending key, exit 2, nothing written;
- the optional discriminator (netD): its key map against upstream's layout at paper size, its outputs
  against upstream's at ndf 8, the command's pick-up of `<epoch>_net_D.pth` / `--discriminator`, and
  hostile netD files;
- paper size end to end (slow): import → export → infer → TensorRT-RTX engine build on the CPU.
"""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from cocosnet_fixtures import (
    D_REDUCED, DATASETS, REDUCED, d_layouts, d_parity_outputs, layouts, parity_inputs, parity_outputs, save_upstream, upstream_state,
    write_upstream_dir,
)
from mclrt.runtime.cli import main
from mclrt.runtime.errors import UserError
from mclrt.training.cocosnet_import import ARCHITECTURE, import_cocosnet, model_config, rename_key, upstream_files

TESTS = Path(__file__).resolve().parent


# --- the key map ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_key_map_is_one_to_one_with_equal_shapes_at_paper_size(dataset):
    from mclrt.training.networks import MCLNet

    facts = layouts()
    upstream = facts["paper"][dataset]
    with torch.device("meta"):
        model = MCLNet(model_config(DATASETS[dataset]))
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    mapped = {rename_key(net, key): tuple(shape) for net in ("Corr", "G") for key, shape in upstream[net]}
    assert len(upstream["Corr"]) + len(upstream["G"]) == 385 == len(mapped)  # nothing collapses
    assert mapped == ours
    params = sum(int(np.prod(s)) for net in ("Corr", "G") for k, s in upstream[net] if not k.endswith(("weight_u", "weight_v")))
    assert params == facts["parameters"][dataset] == sum(p.numel() for p in model.parameters())
    if dataset == "ade20k":
        assert params == 155_979_976


def test_the_presets_match_the_upstream_option_sets():
    facts = layouts()["options"]
    for dataset, preset in DATASETS.items():
        opt, cfg = facts[dataset], model_config(preset)
        assert (opt["semantic_nc"], opt["adaptor_kernel"], opt["maskmix"]) == (cfg.label_nc, cfg.adaptor_kernel, cfg.maskmix)
        assert opt["warp_patch"] == (cfg.warp == "patch") and opt["warp_bilinear"] == (cfg.warp in ("bilinear", "patch"))
        assert (opt["ngf"], opt["match_kernel"], opt["warp_stride"], opt["crop_size"]) == (cfg.ngf, cfg.match_kernel, cfg.corr_stride, cfg.image_size)
        assert opt["PONO"] and opt["PONO_C"] and cfg.center == "position" and cfg.pono == "unbiased" and not cfg.use_scm
        assert opt["use_attention"] == cfg.use_attention and opt["CBN_intype"] == "warp_mask"


# --- parity with upstream through ONNX Runtime ------------------------------------------------------------------


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_import_then_export_reproduces_upstream_in_onnxruntime(dataset, tmp_path):
    from mclrt.export.checkpoint import load_checkpoint_source
    from mclrt.export.onnx_export import ExportOptions, export_model_dir
    from mclrt.runtime.model_dir import load_model_dir

    files = upstream_files(write_upstream_dir(tmp_path / "upstream", dataset), None, None)
    checkpoint = import_cocosnet(files, DATASETS[dataset], tmp_path / "checkpoint", overrides=REDUCED)
    source = load_checkpoint_source(checkpoint)
    out = export_model_dir(source, tmp_path / "model", ExportOptions(verify=False)).path
    manifest = load_model_dir(out).manifest
    assert manifest.provenance["architecture"] == ARCHITECTURE
    assert manifest.provenance["model_config"]["pono"] == "unbiased" and not manifest.provenance["model_config"]["use_scm"]

    x = parity_inputs(dataset)
    want = parity_outputs(dataset)
    encoder = ort.InferenceSession(str(out / "exemplar_encoder.onnx"), providers=["CPUExecutionProvider"])
    translator = ort.InferenceSession(str(out / "translator.onnx"), providers=["CPUExecutionProvider"])
    feeds = {"exemplar": x["exemplar"]}
    if source.config.maskmix:
        feeds["exemplar_condition"] = x["exemplar_condition"]
    keys, values = encoder.run(None, feeds)
    image, warped = translator.run(None, {"condition": x["condition"], "exemplar_keys": keys, "exemplar_values": values})
    errors = {"image": float(np.abs(image - want["image"]).max()), "warped_exemplar": float(np.abs(warped - want["warped_exemplar"]).max())}
    print(f"{dataset}: ONNX Runtime vs upstream CoCosNet max abs error {errors}")
    assert max(errors.values()) <= 1e-4, errors
    assert float(np.abs(want["image"]).std()) > 0.1  # the reference is not a constant picture


def test_biased_pono_would_not_pass_parity(tmp_path):
    """The unbiased variance is what makes the numbers agree (the check above is not vacuous)."""
    from mclrt.export.checkpoint import load_checkpoint_source
    from mclrt.training.networks import PositionalNorm2d

    files = upstream_files(write_upstream_dir(tmp_path / "upstream", "ade20k"), None, None)
    source = load_checkpoint_source(import_cocosnet(files, "paper-ade20k", tmp_path / "checkpoint", overrides=REDUCED))
    for module in source.model.modules():
        if isinstance(module, PositionalNorm2d):
            module.unbiased = False
    x = {k: torch.from_numpy(v) for k, v in parity_inputs("ade20k").items()}
    with torch.no_grad():
        image, _ = source.model(x["condition"], x["exemplar"], x["exemplar_condition"])
    assert float((image - torch.from_numpy(parity_outputs("ade20k")["image"])).abs().max()) > 1e-3


# --- the command, and what it refuses -------------------------------------------------------------------------------


def _run(*args) -> tuple[int, str]:
    err = io.StringIO()
    stderr, sys.stderr = sys.stderr, err
    try:
        code = main([str(a) for a in args])
    finally:
        sys.stderr = stderr
    return code, err.getvalue()


@pytest.fixture(scope="module")
def reduced_upstream(tmp_path_factory) -> Path:
    return write_upstream_dir(tmp_path_factory.mktemp("upstream") / "ade20k", "ade20k")


def test_cli_writes_a_checkpoint_export_reads_and_info_says_cocosnet(tmp_path, capsys):
    """At paper size the files are 600 MB; the command's own path is checked on the wrong-size files'
    refusal below and here through the API the command calls with the reduced size."""
    from mclrt.export.checkpoint import load_checkpoint_source
    from mclrt.export.onnx_export import ExportOptions, export_model_dir
    from mclrt.training.checkpoint import read_meta

    up = write_upstream_dir(tmp_path / "up", "celebahqedge", epoch="90")
    files = upstream_files(up, None, None, epoch="90")
    checkpoint = import_cocosnet(files, "paper-celebahq-edge", tmp_path / "ck", overrides=REDUCED)
    meta = read_meta(checkpoint)
    imported = meta["imported_from"]
    assert imported["architecture"] == "CoCosNet (no SCM, no MCL)"
    assert {v["file"] for v in imported["files"].values()} == {"90_net_Corr.pth", "90_net_G.pth"}
    import hashlib

    assert imported["files"]["netG"]["sha256"] == hashlib.sha256((up / "90_net_G.pth").read_bytes()).hexdigest()
    assert imported["upstream_options"]["dataset_mode"] == "celebahqedge" and imported["upstream_options"]["PONO"]
    assert sorted(p.name for p in checkpoint.iterdir()) == ["meta.json", "model.safetensors"]
    out = export_model_dir(load_checkpoint_source(checkpoint), tmp_path / "model", ExportOptions(verify=False)).path
    capsys.readouterr()
    assert main(["info", "--model", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "CoCosNet (no SCM, no MCL)" in shown and "90_net_G.pth" in shown


def _hostile(tmp: Path, reduced_upstream: Path) -> dict[str, tuple[Path, str]]:
    """name -> (netCorr file to pass with --corr, words the one-line error must hold)."""
    good = torch.load(reduced_upstream / "latest_net_Corr.pth", weights_only=True)
    cases: dict[str, tuple[Path, str]] = {}

    class Boom:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp / "PWNED"),))

    (tmp / "code.pth").write_bytes(pickle.dumps({"adaptive_model_seg.layer1.0.weight_orig": Boom()}))
    cases["pickle with code"] = (tmp / "code.pth", "refused to unpickle")
    torch.save({"x": torch.zeros(1)}, tmp / "whole.pth")
    data = (reduced_upstream / "latest_net_Corr.pth").read_bytes()
    (tmp / "cut.pth").write_bytes(data[: len(data) // 2])
    cases["truncated"] = (tmp / "cut.pth", "not a readable PyTorch checkpoint")
    (tmp / "notes.pth").write_text("these are not weights\n")
    cases["not a checkpoint"] = (tmp / "notes.pth", "not a readable PyTorch checkpoint")
    torch.save({"epoch": 3, "state_dict": good}, tmp / "nested.pth")
    cases["training state, not a flat state dict"] = (tmp / "nested.pth", "not a flat state dict: 'epoch' holds int")
    torch.save([good], tmp / "list.pth")
    cases["a list"] = (tmp / "list.pth", "not a state dict")
    extra = OrderedDict([("domain_classifier.feature.0.weight", torch.zeros(1)), *good.items()])
    save_upstream(extra, tmp / "extra.pth")
    cases["extra key"] = (tmp / "extra.pth", "domain_classifier.feature.0.weight: unexpected key")
    missing = OrderedDict((k, v) for k, v in good.items() if k != "layer.2.prelu.weight")
    save_upstream(missing, tmp / "missing.pth")
    cases["missing key"] = (tmp / "missing.pth", "layer.2.prelu.weight: missing")
    old = OrderedDict()
    for k, v in good.items():
        if k.endswith("weight_v"):
            old[k[: -len("_v")].removesuffix("weight") + "weight"] = v.new_zeros(1)  # torch < 1.1 stored W, not v
        else:
            old[k] = v
    save_upstream(old, tmp / "old_sn.pth")
    cases["pre-1.1 spectral norm"] = (tmp / "old_sn.pth", "adaptive_model_seg.layer1.0.weight_orig: spectral norm saved by PyTorch < 1.1")
    prefixed = OrderedDict((f"module.{k}", v) for k, v in good.items())
    save_upstream(prefixed, tmp / "module.pth")
    cases["DataParallel prefix"] = (tmp / "module.pth", "module.adaptive_model_seg.layer1.0.weight_orig: unexpected key")
    cases["the generator's file as netCorr"] = (reduced_upstream / "latest_net_G.pth", "looks like netG's file")
    return cases


def test_hostile_checkpoints_one_line_exit_2_nothing_written(tmp_path, reduced_upstream):
    for name, (corr, words) in _hostile(tmp_path, reduced_upstream).items():
        out = tmp_path / f"out-{name.replace(' ', '_')}"
        code, err = _run("import", "cocosnet", "--corr", corr, "--generator", reduced_upstream / "latest_net_G.pth", "--preset", "paper-ade20k", "--out", out)
        assert code == 2, (name, err)
        assert err.count("\n") == 1 and str(corr) in err and words in err, (name, err)
        assert "Traceback" not in err and not out.exists(), name
        assert not list(tmp_path.glob(f".{out.name}*")), name  # no temporary folder left either
    assert not (tmp_path / "PWNED").exists()


def test_refusals_that_need_the_files_shapes(tmp_path, reduced_upstream):
    """Another dataset's checkpoint, NaN/Inf and a wrong width: through the importer at the reduced size
    (the command passes its arguments to the same function)."""
    celeba = write_upstream_dir(tmp_path / "celeba", "celebahqedge")
    with pytest.raises(UserError, match=r"latest_net_Corr.pth: adaptive_model_seg.layer1.0.weight_orig: shape \(8, 15, 3, 3\), paper-ade20k expects \(8, 151, 3, 3\); the file fits paper-celebahq-edge"):
        import_cocosnet(upstream_files(celeba, None, None), "paper-ade20k", tmp_path / "a", overrides=REDUCED)
    good = torch.load(reduced_upstream / "latest_net_G.pth", weights_only=True)
    for bad_value, label in ((float("nan"), "nan"), (float("inf"), "inf")):
        bad = OrderedDict(good)
        bad["up_1.conv_1.bias"] = bad["up_1.conv_1.bias"].clone()
        bad["up_1.conv_1.bias"][3] = bad_value
        save_upstream(bad, tmp_path / f"{label}.pth")
        files = upstream_files(None, reduced_upstream / "latest_net_Corr.pth", tmp_path / f"{label}.pth")
        with pytest.raises(UserError, match=r"up_1.conv_1.bias: holds NaN or Inf values"):
            import_cocosnet(files, "paper-ade20k", tmp_path / label, overrides=REDUCED)
        assert not (tmp_path / label).exists()
    code, err = _run("import", "cocosnet", reduced_upstream, "--preset", "paper-ade20k", "--out", tmp_path / "full")
    assert code == 2 and "shape (8, 151, 3, 3), paper-ade20k expects (64, 151, 3, 3)" in err and not (tmp_path / "full").exists()
    code, err = _run("import", "cocosnet", tmp_path, "--preset", "paper-ade20k", "--out", tmp_path / "none")
    assert code == 2 and "latest_net_Corr.pth: no such file" in err
    code, err = _run("import", "cocosnet", reduced_upstream, "--preset", "paper-cityscapes", "--out", tmp_path / "none")
    assert code == 2 and "--preset must be one of" in err


# --- the discriminator (optional) ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_d_key_map_at_paper_size_everything_but_cocosnets_heads_maps(dataset):
    from mclrt.training.cocosnet_import import rename_d_key
    from mclrt.training.networks import MultiscaleDiscriminator

    facts = d_layouts()
    cfg = model_config(DATASETS[dataset])
    with torch.device("meta"):
        disc = MultiscaleDiscriminator(cfg)
    ours = {k: tuple(v.shape) for k, v in disc.state_dict().items()}
    mapped, dropped = {}, []
    for key, shape in facts["paper"][dataset]:
        name = rename_d_key(key, cfg.n_layers_d, cfg.use_attention)
        if name is None:
            dropped.append(key)
        else:
            assert name not in mapped, key  # nothing collapses
            mapped[name] = tuple(shape)
    assert mapped == ours  # every mclrt tensor has its upstream one, same shape: nothing starts fresh
    assert dropped and all(".dec." in k for k in dropped)  # only the segmentation decoder its forward never calls
    count = lambda keys: sum(int(np.prod(s)) for k, s in facts["paper"][dataset] if k in keys and not k.endswith(("weight_u", "weight_v")))
    assert count(set(dropped)) == facts["heads"][dataset]
    assert facts["parameters"][dataset] - facts["heads"][dataset] == sum(p.numel() for p in disc.parameters())
    if dataset == "ade20k":
        assert (facts["parameters"][dataset], facts["heads"][dataset]) == (6_862_194, 861_422)


def test_d_options_of_the_readme_training_commands_are_the_presets():
    for dataset, opt in d_layouts()["options"].items():
        cfg = model_config(DATASETS[dataset])
        assert (opt["netD"], opt["netD_subarch"], opt["norm_D"], opt["D_cam"], opt["eqlr_sn"], opt["no_ganFeat_loss"]) == (
            "multiscale", "n_layer", "spectralinstance", 0.0, False, False)
        assert (opt["num_D"], opt["n_layers_D"], opt["ndf"], opt["use_attention"]) == (cfg.num_d, cfg.n_layers_d, cfg.ndf, cfg.use_attention)
        assert opt["semantic_nc"] == cfg.label_nc and opt["output_nc"] == 3


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_imported_d_gives_upstreams_d_outputs(dataset, tmp_path):
    from safetensors.torch import load_file

    from mclrt.training.networks import MultiscaleDiscriminator

    up = write_upstream_dir(tmp_path / "up", dataset, discriminator=True)
    checkpoint = import_cocosnet(upstream_files(up, None, None), DATASETS[dataset], tmp_path / "ck", overrides=D_REDUCED,
                                 discriminator=up / "latest_net_D.pth")
    disc = MultiscaleDiscriminator(model_config(DATASETS[dataset], D_REDUCED))
    disc.load_state_dict(load_file(str(checkpoint / "discriminator.safetensors")), strict=True)  # complete: nothing fresh
    disc.eval()
    x = parity_inputs(dataset)
    with torch.no_grad():
        outputs = disc(torch.from_numpy(x["condition"]), torch.from_numpy(x["exemplar"]))
    assert [len(o) for o in outputs] == [5, 5]  # every intermediate, as upstream's feature matching reads them
    want = d_parity_outputs(dataset)
    errors = {k: float(np.abs(outputs[int(k[5])][int(k[-1])].numpy() - v).max()) for k, v in want.items()}
    print(f"{dataset}: discriminator vs upstream max abs error {max(errors.values()):.2e}")
    assert len(errors) == 4 and max(errors.values()) <= 1e-5, errors
    assert float(np.abs(want["scale0/feature4"]).std()) > 0.1


@pytest.fixture
def reduced_import_cli(monkeypatch):
    """The command at the reduced size (the files at paper size are 600 MB): every preset gets D_REDUCED."""
    import mclrt.training.cocosnet_import as importer

    original = importer.model_config
    monkeypatch.setattr(importer, "model_config", lambda preset, overrides=None: original(preset, {**D_REDUCED, **(overrides or {})}))


def test_cli_picks_up_net_d_and_records_what_mapped(tmp_path, capsys, reduced_import_cli):
    import hashlib

    from mclrt.training.checkpoint import read_meta

    up = write_upstream_dir(tmp_path / "up", "deepfashion", epoch="90", discriminator=True)
    assert main(["import", "cocosnet", str(up), "--epoch", "90", "--preset", "paper-deepfashion", "--out", str(tmp_path / "ck")]) == 0
    out = capsys.readouterr().out
    assert "discriminator: 90_net_D.pth mapped, 52 tensors" in out
    assert "dropped CoCosNet's heads with no mclrt counterpart: discriminator_0.dec.*, discriminator_1.dec.* (22 tensors, 13,576 parameters)" in out
    assert "start fresh" not in out
    meta = read_meta(tmp_path / "ck")
    d = meta["imported_from"]["discriminator"]
    assert d["file"] == "90_net_D.pth" and d["sha256"] == hashlib.sha256((up / "90_net_D.pth").read_bytes()).hexdigest()
    assert d["fresh"] == [] and d["mapped_parameters"] == 96_532 and "discriminator.safetensors" in meta["files"]
    assert set(meta["imported_from"]["files"]) == {"netCorr", "netG"}  # the exported model holds no D

    # --discriminator FILE from elsewhere; a D without attention: its attention starts fresh (γ = 0: identity)
    elsewhere = tmp_path / "d" / "mine.pth"
    elsewhere.parent.mkdir()
    state = torch.load(up / "90_net_D.pth", weights_only=True)
    save_upstream(OrderedDict((k, v) for k, v in state.items() if ".attn." not in k), elsewhere)
    code = main(["import", "cocosnet", "--corr", str(up / "90_net_Corr.pth"), "--generator", str(up / "90_net_G.pth"),
                 "--discriminator", str(elsewhere), "--preset", "paper-deepfashion", "--out", str(tmp_path / "ck2")])
    out = capsys.readouterr().out
    assert code == 0
    assert "discriminator: not in mine.pth, start fresh: scales.0.layers.3.0.gamma, scales.0.layers.3.0.theta.parametrizations.weight.original" in out
    assert read_meta(tmp_path / "ck2")["imported_from"]["discriminator"]["fresh_parameters"] == 2 * (1 + 2 * 4 * 32 + 16 * 32 + 32 * 16)  # γ, θ, φ, g, o on 32 channels (ndf 8)

    # no net_D.pth: said in one line, no discriminator.safetensors
    (up / "90_net_D.pth").unlink()
    assert main(["import", "cocosnet", str(up), "--epoch", "90", "--preset", "paper-deepfashion", "--out", str(tmp_path / "ck3")]) == 0
    assert "discriminator: none (no 90_net_D.pth in" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "ck3").iterdir()) == ["meta.json", "model.safetensors"]


def test_hostile_net_d_one_line_exit_2_nothing_written(tmp_path, reduced_import_cli):
    up = write_upstream_dir(tmp_path / "up", "ade20k", discriminator=True)
    good = torch.load(up / "latest_net_D.pth", weights_only=True)
    cases: dict[str, tuple[Path, str]] = {}

    class Boom:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "PWNED"),))

    (tmp_path / "code.pth").write_bytes(pickle.dumps({"discriminator_0.model0.0.weight": Boom()}))
    cases["pickle with code"] = (tmp_path / "code.pth", "refused to unpickle")
    (tmp_path / "notes.pth").write_text("not weights\n")
    cases["not a checkpoint"] = (tmp_path / "notes.pth", "not a readable PyTorch checkpoint")
    data = (up / "latest_net_D.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    cases["truncated"] = (tmp_path / "cut.pth", "not a readable PyTorch checkpoint")
    nan = OrderedDict(good)
    nan["discriminator_1.model4.0.bias"] = torch.tensor([float("nan")])
    save_upstream(nan, tmp_path / "nan.pth")
    cases["NaN"] = (tmp_path / "nan.pth", "discriminator_1.model4.0.bias: holds NaN or Inf values")
    save_upstream(upstream_state(d_layouts()["reduced"]["celebahqedge"], 2), tmp_path / "celeba.pth")
    cases["another dataset"] = (tmp_path / "celeba.pth", "discriminator_0.model0.0.weight: shape (8, 18, 4, 4), paper-ade20k expects (8, 154, 4, 4); the file fits paper-celebahq-edge")
    wide = OrderedDict(good)
    wide["discriminator_0.model2.0.0.weight_orig"] = torch.zeros(32, 16, 3, 3)
    save_upstream(wide, tmp_path / "wide.pth")
    cases["wrong shape"] = (tmp_path / "wide.pth", "discriminator_0.model2.0.0.weight_orig: shape (32, 16, 3, 3), paper-ade20k expects (32, 16, 4, 4)")
    save_upstream(OrderedDict((f"module.{k}", v) for k, v in good.items()), tmp_path / "module.pth")
    cases["DataParallel prefix"] = (tmp_path / "module.pth", "module.discriminator_0.attn.gamma: unexpected key for CoCosNet's netD")
    cases["netG's file as netD"] = (up / "latest_net_G.pth", "unexpected key for CoCosNet's netD of paper-ade20k (this looks like netG's file)")
    old = OrderedDict((k[: -len("_v")] if k.endswith("weight_v") else k, v) for k, v in good.items())
    save_upstream(old, tmp_path / "old.pth")
    cases["pre-1.1 spectral norm"] = (tmp_path / "old.pth", "spectral norm saved by PyTorch < 1.1")
    save_upstream(OrderedDict((k, v) for k, v in good.items() if ".dec." in k), tmp_path / "heads.pth")
    cases["only heads"] = (tmp_path / "heads.pth", "holds no tensor of CoCosNet's netD")
    for name, (d_file, words) in cases.items():
        out = tmp_path / f"out-{name.replace(' ', '_')}"
        code, err = _run("import", "cocosnet", up, "--discriminator", d_file, "--preset", "paper-ade20k", "--out", out)
        assert code == 2, (name, err)
        assert err.count("\n") == 1 and str(d_file) in err and words in err, (name, err)
        assert "Traceback" not in err and not out.exists(), name
    assert not (tmp_path / "PWNED").exists()
    code, err = _run("import", "cocosnet", up, "--discriminator", tmp_path / "absent.pth", "--preset", "paper-ade20k", "--out", tmp_path / "x")
    assert code == 2 and "absent.pth: no such file" in err


# --- paper size, end to end --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_paper_size_import_export_infer_and_engine_build(tmp_path):
    """Random weights at paper size (ade20k: 156 M parameters, 600 MB per side) through the real
    commands: import, export (with its PyTorch parity check), infer on a label map, engine build."""
    pytest.importorskip("tensorrt_rtx_bindings", reason="TensorRT-RTX is not installed (pip install 'mclrt[trt-check]')")
    import cv2

    timings = {}
    started = time.perf_counter()
    up = write_upstream_dir(tmp_path / "upstream", "ade20k", size="paper")
    timings["write upstream files"] = time.perf_counter() - started
    env = {**os.environ, "MCLRT_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}

    def cli(name: str, *args, timeout: float = 1800) -> str:
        t = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "mclrt.runtime.cli", *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout)
        timings[name] = time.perf_counter() - t
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout + done.stderr

    cli("import", "import", "cocosnet", up, "--preset", "paper-ade20k", "--out", tmp_path / "checkpoint")
    (up / "latest_net_Corr.pth").unlink()
    (up / "latest_net_G.pth").unlink()
    cli("export", "export", tmp_path / "checkpoint", "--out", tmp_path / "model")
    shown = cli("info", "info", "--model", tmp_path / "model")
    assert "CoCosNet (no SCM, no MCL)" in shown
    labels = np.zeros((256, 256), np.uint8)
    labels[:128], labels[128:, :100], labels[128:, 100:] = 3, 5, 13
    cv2.imwrite(str(tmp_path / "labels.png"), labels)
    cv2.imwrite(str(tmp_path / "exemplar.png"), np.full((256, 256, 3), 120, np.uint8))
    cli("infer", "infer", "--model", tmp_path / "model", "--cond", tmp_path / "labels.png", "--exemplar", tmp_path / "exemplar.png",
        "--exemplar-cond", tmp_path / "labels.png", "--out", tmp_path / "out", "--backend", "ort")
    assert (tmp_path / "out" / "labels.png").is_file()
    cli("engine build", "engine", "build", "--model", tmp_path / "model", "--precision", "fp32", "--plugin", "off", "--out", tmp_path / "engine")
    assert any((tmp_path / "engine").rglob("*.plan")) or any((tmp_path / "engine").iterdir())
    print("paper-ade20k end to end, seconds on this machine: " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
