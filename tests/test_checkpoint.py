"""Checkpoints: exact round trips through safetensors + JSON, atomic writes, keep-last, a real SIGKILL mid-write."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from mclrt.runtime.errors import UserError
from mclrt.training.checkpoint import (
    PAUSE_ENV,
    Checkpoint,
    capture_rng_state,
    flatten_state,
    latest_checkpoint,
    load_checkpoint,
    resolve_checkpoint,
    restore_rng_state,
    save_checkpoint,
    unflatten_state,
)
from mclrt.training.config import load_model_config
from mclrt.training.networks import build_networks

from train_fixtures import tiny_config_dict, write_photo_folder


def _tiny_nets():
    cfg = load_model_config("nano", {"image_size": 64, "ngf": 4, "ndf": 4})
    return cfg, build_networks(cfg, seed=0)


def _stepped_adam(module: torch.nn.Module) -> torch.optim.Adam:
    """An Adam that has taken two real steps, so it holds moments and step counts."""
    opt = torch.optim.Adam(module.parameters(), lr=1e-3, betas=(0.0, 0.999), eps=1e-3)
    for _ in range(2):
        opt.zero_grad()
        sum(p.square().sum() for p in module.parameters()).backward()
        opt.step()
    return opt


def _checkpoint(step: int, nets, cfg, opt) -> Checkpoint:
    return Checkpoint(
        step=step,
        epoch=step // 10,
        samples_seen=step * 4,
        model=nets["model"].state_dict(),
        discriminator=nets["discriminator"].state_dict(),
        heads=nets["heads"].state_dict(),
        optimizers={"discriminator": opt.state_dict()},
        rng=[capture_rng_state()],
        model_config=cfg.to_dict(),
        train_config={"note": "test"},
    )


def _assert_same_nested(a, b, ordered: bool = True):
    """Equal values, types and (unless `ordered` is off: safetensors returns keys sorted) key order."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b) if ordered else sorted(a) == sorted(b)
        for key in a:
            _assert_same_nested(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same_nested(x, y)
    else:
        assert a == b


def test_optimizer_state_round_trips_exactly_through_tensors_and_json():
    _, nets = _tiny_nets()
    state = _stepped_adam(nets["discriminator"]).state_dict()
    tensors, skeleton = flatten_state(state)
    assert tensors and all(isinstance(t, torch.Tensor) for t in tensors.values())
    restored = unflatten_state(tensors, json.loads(json.dumps(skeleton)))
    _assert_same_nested(state, restored)  # int keys stay ints, betas stay a tuple, step tensors stay tensors
    fresh = torch.optim.Adam(nets["discriminator"].parameters())
    fresh.load_state_dict(restored)
    _assert_same_nested(fresh.state_dict(), state)


def test_save_load_round_trip_latest_and_keep_last(tmp_path):
    cfg, nets = _tiny_nets()
    opt = _stepped_adam(nets["discriminator"])
    checkpoints = tmp_path / "run" / "checkpoints"
    for step in (5, 10, 15):
        save_checkpoint(checkpoints, _checkpoint(step, nets, cfg, opt), keep_last=2)
    assert sorted(p.name for p in checkpoints.iterdir()) == ["00000010", "00000015", "latest"]
    assert os.readlink(checkpoints / "latest") == "00000015"
    # Every way of naming the checkpoint finds the same folder.
    for name in (checkpoints / "00000015", checkpoints / "latest", checkpoints, tmp_path / "run"):
        assert resolve_checkpoint(name).name == "00000015"

    loaded = load_checkpoint(tmp_path / "run")
    assert (loaded.step, loaded.epoch, loaded.samples_seen) == (15, 1, 60)
    _assert_same_nested(nets["model"].state_dict(), loaded.model, ordered=False)
    _assert_same_nested(nets["heads"].state_dict(), loaded.heads, ordered=False)
    _assert_same_nested(opt.state_dict(), loaded.optimizers["discriminator"])
    assert loaded.model_config == cfg.to_dict()
    # Nothing but safetensors and JSON on disk.
    assert sorted(f.suffix for f in (checkpoints / "00000015").iterdir()) == [".json"] + [".safetensors"] * 5


def test_the_newest_complete_checkpoint_wins_over_a_latest_link_left_behind(tmp_path):
    """A kill between renaming step 2's folder into place and updating `latest` leaves the link at
    step 1: a restarted run must continue from step 2 (and not fail re-writing it)."""
    cfg, nets = _tiny_nets()
    opt = _stepped_adam(nets["discriminator"])
    for step in (1, 2):
        save_checkpoint(tmp_path, _checkpoint(step, nets, cfg, opt))
    os.symlink("00000001", tmp_path / ".tmp-link")
    os.replace(tmp_path / ".tmp-link", tmp_path / "latest")  # the state that kill leaves
    assert latest_checkpoint(tmp_path).name == "00000002"
    assert load_checkpoint(tmp_path).step == 2
    save_checkpoint(tmp_path, _checkpoint(3, nets, cfg, opt))
    assert os.readlink(tmp_path / "latest") == "00000003"


def test_rng_state_restores_every_generator(tmp_path):
    import random

    import numpy as np

    cfg, nets = _tiny_nets()
    opt = _stepped_adam(nets["discriminator"])
    save_checkpoint(tmp_path, _checkpoint(1, nets, cfg, opt))
    expected = (random.random(), float(np.random.rand()), torch.rand(3))
    for _ in range(5):  # move every generator on
        random.random(), np.random.rand(), torch.rand(3)
    restore_rng_state(load_checkpoint(tmp_path).rng[0])
    assert (random.random(), float(np.random.rand())) == expected[:2]
    assert torch.equal(torch.rand(3), expected[2])


def test_a_changed_file_is_refused(tmp_path):
    cfg, nets = _tiny_nets()
    final = save_checkpoint(tmp_path, _checkpoint(3, nets, cfg, _stepped_adam(nets["discriminator"])))
    data = bytearray((final / "heads.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (final / "heads.safetensors").write_bytes(bytes(data))
    with pytest.raises(UserError, match="sha256 differs"):
        load_checkpoint(final)


def test_sigkill_during_a_checkpoint_write_leaves_the_previous_one_loadable(tmp_path):
    """A real `mclrt train` process, killed while it writes its second checkpoint."""
    photos = write_photo_folder(tmp_path / "photos", count=2, size=72)
    out = tmp_path / "run"
    config = tiny_config_dict(photos, out, model={"ngf": 4, "ndf": 4}, train={"threads": 1}, log={"checkpoint_every": 1})
    config_path = tmp_path / "train.yaml"
    config_path.write_text(yaml.safe_dump(config))
    env = {**os.environ, PAUSE_ENV: "3"}  # every checkpoint write pauses 3 s before meta.json and the rename
    proc = subprocess.Popen(
        [sys.executable, "-m", "mclrt.runtime.cli", "train", "--config", str(config_path), "--max-steps", "4"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    try:
        pauses = 0
        deadline = time.monotonic() + 240
        for line in proc.stderr:  # the first pause is step 1's write (it completes); kill in step 2's
            if "checkpoint write paused" in line:
                pauses += 1
                if pauses == 2:
                    break
            assert time.monotonic() < deadline, "the training process never reached its second checkpoint"
        assert pauses == 2, "the process ended before its second checkpoint write"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL

    checkpoints = out / "checkpoints"
    leftovers = [p.name for p in checkpoints.iterdir() if p.name.startswith(".tmp-")]
    assert leftovers, "the kill should have hit the write of the second checkpoint"
    assert latest_checkpoint(checkpoints).name == "00000001"
    survivor = load_checkpoint(out)  # verifies every file's sha256 too
    assert survivor.step == 1

    # The run continues from the survivor, and the next save clears the half-written folder.
    from mclrt.training.options import config_from_dict
    from mclrt.training.train import train

    run = train(config_from_dict(config), resume=True, max_steps=2)
    assert run.step == 2
    assert not [p for p in checkpoints.iterdir() if p.name.startswith(".tmp-")]
    assert load_checkpoint(out).step == 2
