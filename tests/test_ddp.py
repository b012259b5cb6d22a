"""Two-process DDP training on the CPU (gloo), started exactly as `make train GPUS=2` starts it: torchrun."""

from __future__ import annotations

import os
import subprocess
import sys

import torch
import yaml

from mclrt.training.checkpoint import load_checkpoint, read_meta, resolve_checkpoint
from mclrt.training.config import model_config_from_dict
from mclrt.training.networks import build_networks
from mclrt.training.train import state_sha256

from train_fixtures import tiny_config_dict, write_photo_folder


def test_two_gloo_ranks_train_to_identical_weights(tmp_path):
    photos = write_photo_folder(tmp_path / "photos", count=3, size=72)
    out = tmp_path / "run"
    # Global batch 4 = 2 per rank; 6 samples per epoch -> each rank sees its own 3 samples per epoch.
    config = tiny_config_dict(photos, out, model={"ngf": 4, "ndf": 4}, train={"batch_size": 4, "threads": 1})
    config_path = tmp_path / "train.yaml"
    config_path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
            "-m", "mclrt.runtime.cli", "train", "--config", str(config_path), "--max-steps", "2",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    meta = read_meta(resolve_checkpoint(out))
    assert meta["step"] == 2 and meta["samples_seen"] == 8
    assert meta["info"]["world_size"] == 2
    # Each rank hashed its own weights, buffers and optimizer moments at the checkpoint.
    rank0, rank1 = meta["info"]["rank_state_sha256"]
    assert rank0 == rank1
    # ...and the saved state is exactly what the ranks held.
    ckpt = load_checkpoint(out)
    saved = state_sha256(
        {"model": ckpt.model, "discriminator": ckpt.discriminator, "heads": ckpt.heads},
        {"generator": ckpt.optimizers["generator"], "discriminator": ckpt.optimizers["discriminator"]},
    )
    assert saved == rank0
    # Both ranks' RNG states were saved, and they differ (per-rank seeding).
    assert len(ckpt.rng) == 2 and not torch.equal(ckpt.rng[0]["torch"], ckpt.rng[1]["torch"])
    # Training moved the weights.
    init = build_networks(model_config_from_dict(ckpt.model_config), seed=config["train"]["seed"])["model"].state_dict()
    assert any(not torch.equal(init[k], ckpt.model[k]) for k in init)


def test_resumable_sampler_partitions_an_epoch_and_skips_what_was_seen():
    from mclrt.training.distributed import DistInfo, ResumableSampler

    dataset = list(range(7))  # odd on purpose: DistributedSampler pads to a multiple of the world size
    ranks = [DistInfo(rank=r, local_rank=r, world_size=2, device=torch.device("cpu")) for r in range(2)]
    full = [list(ResumableSampler(dataset, info, seed=5, epoch=3)) for info in ranks]
    assert len(full[0]) == len(full[1]) == ResumableSampler.per_rank_length(dataset, 2) == 4
    assert set(full[0]) | set(full[1]) == set(dataset)  # together the ranks see every sample
    assert list(ResumableSampler(dataset, ranks[0], seed=5, epoch=3, skip=2)) == full[0][2:]  # mid-epoch resume
    assert list(ResumableSampler(dataset, ranks[0], seed=5, epoch=4)) != full[0]  # each epoch reshuffles


def test_every_world_size_takes_the_same_global_batches_and_steps_per_epoch():
    """Global batch 4 over 1, 2 or 4 ranks, on 10 samples (not a multiple of 4, nor of every world size):
    2 steps per epoch for all, and at each step the ranks together take the samples one process takes."""
    from mclrt.training.distributed import DistInfo, ResumableSampler

    dataset, batch = list(range(10)), 4
    steps = ResumableSampler.steps_per_epoch(dataset, batch)
    assert steps == 2

    def global_batches(world_size: int, skip_steps: int = 0) -> list[set[int]]:
        per_rank = batch // world_size
        slices = [
            list(ResumableSampler(dataset, DistInfo(r, r, world_size, torch.device("cpu")), seed=5, epoch=1,
                                  skip=skip_steps * per_rank, length=steps * per_rank))
            for r in range(world_size)
        ]
        assert all(len(s) == (steps - skip_steps) * per_rank for s in slices)  # no rank takes a padded extra batch
        return [set().union(*(s[i * per_rank : (i + 1) * per_rank] for s in slices)) for i in range(steps - skip_steps)]

    single = global_batches(1)
    assert all(len(b) == batch for b in single)
    assert global_batches(2) == global_batches(4) == single
    assert global_batches(4, skip_steps=1) == single[1:]  # resuming mid-epoch on 4 ranks
