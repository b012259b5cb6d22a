"""The trainer on the shrunk `nano` preset and real package photos: resume is bit-exact, a fixed batch
is overfitted, configs and data problems are one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from mclrt.runtime.cli import main as cli_main
from mclrt.runtime.errors import UserError
from mclrt.training.checkpoint import load_checkpoint
from mclrt.training.data import build_dataset
from mclrt.training.networks import build_networks
from mclrt.training.options import config_from_dict, load_train_config
from mclrt.training.train import lr_factor, train

from train_fixtures import tiny_config, tiny_config_dict, write_photo_folder

CONFIGS = Path(__file__).resolve().parents[1] / "training" / "configs"


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    return write_photo_folder(tmp_path_factory.mktemp("photos"), count=3, size=72)


def _assert_tensor_dicts_equal(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys(), what
    for key in a:
        if isinstance(a[key], dict):
            _assert_tensor_dicts_equal(a[key], b[key], f"{what}.{key}")
        elif isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), f"{what}.{key} differs"
        else:
            assert a[key] == b[key], f"{what}.{key} differs"


def test_four_steps_equal_two_then_resume_two(photos, tmp_path):
    """3 samples... 6 per epoch (repeat 2), batch 2: 3 steps per epoch, so the resume at step 2 lands
    mid-epoch and the 4th step is in the next epoch; the learning rate decays from step 2 on and EMA is
    on, so data order, schedule, EMA, optimizer and RNG all have to come back exactly."""
    sections = dict(model={"ngf": 4, "ndf": 4}, train={"threads": 1, "ema": True, "ema_beta": 0.9}, log={"checkpoint_every": 100})
    straight = train(tiny_config(photos, tmp_path / "straight", **sections), max_steps=4)
    train(tiny_config(photos, tmp_path / "resumed", **sections), max_steps=2)
    resumed = train(tiny_config(photos, tmp_path / "resumed", **sections), resume=True, max_steps=4)
    assert straight.step == resumed.step == 4

    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "resumed")
    assert (a.step, a.epoch, a.samples_seen) == (b.step, b.epoch, b.samples_seen) == (4, 1, 8)
    for name in ("model", "discriminator", "heads", "ema"):
        _assert_tensor_dicts_equal(getattr(a, name), getattr(b, name), name)
    for name in ("generator", "discriminator"):
        _assert_tensor_dicts_equal(a.optimizers[name], b.optimizers[name], f"optimizer {name}")
    assert torch.equal(a.rng[0]["torch"], b.rng[0]["torch"])
    assert a.rng[0]["numpy"] == b.rng[0]["numpy"]
    # The run really trained: the weights moved away from their initialization.
    init = build_networks(tiny_config(photos, tmp_path / "x", **sections).model_config(), seed=3)
    for name in ("model", "heads"):  # the paper's MCL trains its projection heads too
        start = init[name].state_dict()
        assert any(not torch.equal(start[k], getattr(a, name)[k]) for k in start), name
    # The learning rate followed the schedule (steps 2 + decay 4: the 4th step, index 3, runs at 3/4).
    metrics = [json.loads(line) for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2, 3, 4]
    assert lr_factor(3, 6, 2) == 0.75
    assert metrics[-1]["lr/generator"] == pytest.approx(2e-4 * 0.75)


def test_a_checkpoint_from_before_a_model_field_existed_still_continues(photos, tmp_path):
    """A model field added later (here maskmix_downsample) is absent from older checkpoints' meta.json:
    at its default it is the same model, so --resume continues; a field this mclrt does not know is a
    one-line error, not a silently different model."""
    sections = dict(model={"ngf": 4, "ndf": 4}, train={"threads": 1}, log={"checkpoint_every": 1})
    train(tiny_config(photos, tmp_path / "run", **sections), max_steps=1)
    meta_path = tmp_path / "run" / "checkpoints" / "00000001" / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["model_config"]["maskmix_downsample"]
    meta_path.write_text(json.dumps(meta))
    assert train(tiny_config(photos, tmp_path / "run", **sections), resume=True, max_steps=2).step == 2

    meta_path = tmp_path / "run" / "checkpoints" / "00000002" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["model_config"]["warp_from_the_future"] = "x"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(UserError, match="fields this mclrt does not know \\(warp_from_the_future\\)"):
        train(tiny_config(photos, tmp_path / "run", **sections), resume=True, max_steps=3)


def test_sixty_steps_halve_the_reconstruction_error_on_a_fixed_batch(photos, tmp_path):
    """Overfitting proves losses and optimizer are wired. The batch is fixed: two square photos, used
    whole (crop = the full photo), no flip, every exemplar a pseudo pair (the ground truth itself).

    Loss choice, stated honestly: VGG off (no weights ship; demo.yaml does the same), the pseudo-pair
    reconstruction losses on (L_pse on the warp, L1 on the output), and MCL-Net's correspondence losses
    on (L_fcst, L_mcl, L_cyc). The adversarial terms are off: 60 steps are far from a GAN equilibrium
    and they only slow the reconstruction (they are exercised by the resume and DDP tests). The
    correspondence learns at 3e-5: measured, a larger rate keeps re-randomizing its spectral-normalized
    weights and the warp stays poor for the first hundred steps.
    """
    pair = write_photo_folder(tmp_path / "pair", count=2, size=64)
    config = tiny_config(
        pair,
        tmp_path / "run",
        data={"repeat": 1, "flip": False, "min_crop": 1.0, "max_crop": 1.0, "pseudo_pair_probability": 1.0},
        loss={"gan": 0.0, "gan_feat": 0.0, "feature_consistency": 10.0, "mcl": 1.0, "cycle": 1.0, "pseudo_pair": 10.0, "output_l1": 10.0},
        optim={"lr_generator": 1e-3, "lr_correspondence": 3e-5},
        schedule={"steps": 60, "decay_steps": 0},
        train={"threads": 1},
        log={"log_every": 20},
    )
    dataset = build_dataset("photos", config.dataset_options())
    items = [dataset.sample(i, epoch=0) for i in range(len(dataset))]
    assert len(items) == config.train.batch_size == 2  # one batch: the whole dataset, every step
    condition = torch.stack([item["condition"] for item in items])
    image = torch.stack([item["image"] for item in items])
    exemplar = torch.stack([item["exemplar"] for item in items])
    assert torch.equal(dataset.sample(1, epoch=7)["image"], image[1])  # the same batch in every epoch

    def reconstruction_error(model: torch.nn.Module) -> float:
        model.eval()
        with torch.no_grad():
            output, _ = model(condition, exemplar)
        return float((output - image).abs().mean())

    before = reconstruction_error(build_networks(config.model_config(), seed=config.train.seed)["model"])
    run = train(config)
    after = reconstruction_error(run.model)
    assert run.step == 60
    assert after <= 0.5 * before, f"L1 {before:.3f} -> {after:.3f}"


def test_config_files_load_and_say_what_they_set():
    demo = load_train_config(CONFIGS / "demo.yaml")
    assert demo.vgg.network == "off" and demo.model_config().preset == "nano" and demo.data.kind == "photos"
    ade = load_train_config(CONFIGS / "ade20k.yaml")
    assert (ade.optim.beta1, ade.optim.beta2, ade.optim.lr_discriminator) == (0.0, 0.999, 4e-4)
    assert ade.loss.warped_label == 100.0 and ade.loss.mcl == 1.0 and ade.train.batch_size == 32
    fashion = load_train_config(CONFIGS / "deepfashion.yaml")
    assert fashion.loss.perceptual_layer == "relu4_2" and fashion.data.options["real_probability"] == 0.0
    celeba = load_train_config(CONFIGS / "celebahq_edge.yaml", ["loss.cycle=0.5", "vgg.network=off"])
    assert celeba.loss.cycle == 0.5 and celeba.vgg.network == "off"  # a bare `off` is read as the string


def test_paper_configs_train_with_cycle_and_pseudo_pair_losses_on():
    """MCL-Net's objective (eq. 8) always has L_cyc and L_pse; each paper config turns both on and its
    comment says where the values come from (the paper publishes none)."""
    for name in ("ade20k", "celebahq_edge", "deepfashion"):
        path = CONFIGS / f"{name}.yaml"
        loss = load_train_config(path).loss
        assert (loss.cycle, loss.pseudo_pair) == (1.0, 25.0), name
        text = path.read_text()
        assert "publishes no weights" in text and "warp_self_w 100" in text and "warp_cycle_w 1" in text, name


def test_config_errors_name_the_file_and_the_key(tmp_path):
    bad_key = tmp_path / "bad_key.yaml"
    bad_key.write_text("train:\n  batchsize: 4\nschedule:\n  steps: 1\n")
    with pytest.raises(UserError, match=r"train\.batchsize: unknown key") as err:
        load_train_config(bad_key)
    assert err.value.path == str(bad_key)

    malformed = tmp_path / "malformed.yaml"
    malformed.write_text("train:\n  batch_size: [4\n")
    with pytest.raises(UserError, match=r"malformed YAML: line \d+") as err:
        load_train_config(malformed)
    assert err.value.path == str(malformed)

    with pytest.raises(UserError, match="expected an integer"):
        load_train_config(None, ["train.batch_size=four", "schedule.steps=1"])
    with pytest.raises(UserError, match="not of the form"):
        load_train_config(None, ["batch_size"])
    with pytest.raises(UserError, match="unknown option of the photos dataset"):
        load_train_config(None, ["data.rooot=/x", "schedule.steps=1"])
    with pytest.raises(UserError, match="either epochs"):
        load_train_config(None, [])


def test_missing_data_folder_is_a_one_line_error_with_exit_code_2(photos, tmp_path, capsys):
    config = tmp_path / "train.yaml"
    missing = tmp_path / "no_such_photos"
    config.write_text(yaml.safe_dump(tiny_config_dict(missing, tmp_path / "run")))
    assert cli_main(["train", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {missing}: no such folder"]
    assert not (tmp_path / "run").exists()  # nothing written for a run that could not start


def test_malformed_list_file_is_a_one_line_error_with_exit_code_2(tmp_path):
    """A CelebA-HQ layout whose train.txt names something that is not an image id, through the real CLI."""
    root = tmp_path / "celeba"
    (root / "CelebA-HQ-img").mkdir(parents=True)
    (root / "CelebAMask-HQ-mask-anno").mkdir()
    (root / "train.txt").write_text("0\nnot-an-id\n")
    (root / "CelebA-HQ-img" / "0.jpg").write_bytes(b"")
    config = tmp_path / "celeba.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model": {"preset": "paper-celebahq-edge"},
                "data": {"kind": "celebahq-edge", "root": str(root), "real_probability": 0.0},
                "vgg": {"network": "off"},
                "schedule": {"steps": 1},
                "log": {"out": str(tmp_path / "run")},
            }
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "mclrt.runtime.cli", "train", "--config", str(config)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0] == f"error: {root / 'train.txt'}: line 2: 'not-an-id' is not a CelebA-HQ image id (a non-negative integer)"


def test_a_run_folder_with_a_checkpoint_is_continued_unless_fresh_and_never_overwritten(photos, tmp_path, capsys):
    sections = dict(model={"ngf": 4, "ndf": 4}, train={"threads": 1})
    run = tmp_path / "run"
    with pytest.raises(UserError, match="nothing to resume"):
        train(tiny_config(photos, run, **sections), resume=True)
    train(tiny_config(photos, run, **sections), max_steps=1)
    config_file = tmp_path / "train.yaml"
    config_file.write_text(yaml.safe_dump(tiny_config_dict(photos, run, **sections)))
    capsys.readouterr()  # the first run's log
    assert cli_main(["train", "--config", str(config_file), "--fresh", "--max-steps", "2"]) == 2
    assert capsys.readouterr().err == (
        f"error: {run}: already holds checkpoints: --fresh never overwrites a run "
        "(drop --fresh to continue it, or choose another --out)\n"
    )
    # The default continues only the run this config started: another config in the folder is a mistake.
    changed = tiny_config(photos, run, **sections, optim={"lr_generator": 1e-4})
    with pytest.raises(UserError, match=r"different config \(optim.lr_generator differs\): pass --resume"):
        train(changed, max_steps=2)
    assert load_checkpoint(run).step == 1  # none of the refusals touched the run
    # Neither --resume nor --fresh: the run folder holds a checkpoint of this config, so it continues.
    continued = train(tiny_config(photos, run, **sections), max_steps=2)
    assert continued.step == 2 and load_checkpoint(run).step == 2
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_resume_and_fresh_together_are_a_one_line_error(tmp_path, capsys):
    assert cli_main(["train", "--config", str(CONFIGS / "demo.yaml"), "--out", str(tmp_path / "run"), "--resume", "--fresh"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: --resume and --fresh contradict each other: give one of them (or neither)"
    assert not (tmp_path / "run").exists()


def test_tensorboard_scalars_and_image_grid_are_written(photos, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = tiny_config(photos, tmp_path / "run", model={"ngf": 4, "ndf": 4}, train={"threads": 1}, log={"tensorboard": True, "image_every": 1})
    train(config, max_steps=1)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert "loss/g_total" in events.Tags()["scalars"]
    (image,) = events.Images("samples/condition|exemplar|warped|output|ground_truth")
    assert (image.width, image.height) == (5 * 64, 2 * 64)  # five columns, one row per sample of the batch
    recorded = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert recorded["vgg"]["network"] == "off"  # the explicit switch is part of the run's record


def test_config_from_checkpoint_round_trips(photos, tmp_path):
    config = tiny_config(photos, tmp_path / "run", model={"ngf": 4, "ndf": 4}, train={"threads": 1})
    train(config, max_steps=1)
    recorded = load_checkpoint(tmp_path / "run").train_config
    assert config_from_dict(recorded) == config


def test_reference_code_mcl_variant_trains_without_projection_heads(photos, tmp_path):
    """The public code's MCL (no projection heads): the heads stay at their initial weights, the loss is logged."""
    config = tiny_config(photos, tmp_path / "run", model={"ngf": 4, "ndf": 4}, train={"threads": 1}, mcl={"variant": "reference-code"})
    run = train(config, max_steps=1)
    init = build_networks(config.model_config(), seed=config.train.seed)["heads"].state_dict()
    _assert_tensor_dicts_equal(init, run.heads.state_dict(), "heads")
    (metrics,) = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert metrics["loss/mcl"] > 0
