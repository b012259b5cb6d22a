"""Everything the trainer needs to know about running on several processes, in one small module.

`torchrun` starts one process per GPU and tells each its place through environment variables
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT). Without them this is a single process and
every helper here degrades to a no-op. The backend is NCCL on CUDA and gloo on the CPU.

Rules the trainer relies on:
- every rank seeds its own RNGs differently (`seed_rank`), while the data order comes from the
  DistributedSampler, which is seeded identically on every rank and hands each rank its own slice;
- only rank 0 writes files (`is_main`); the others wait at `barrier()` where it matters;
- logged scalars are averaged over ranks (`mean_over_ranks`) so the log shows the global batch;
- SyncBatchNorm only on CUDA: torch's SyncBatchNorm refuses CPU tensors in training
  (shared/research/cpu_feasibility.md 9b). (The MCL-Net networks use instance and positional norms,
  so today there is no BatchNorm to convert; the conversion is here for networks that add one.)
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset, DistributedSampler, Sampler


@dataclass(frozen=True)
class DistInfo:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(preference: str, local_rank: int) -> torch.device:
    """'cuda' (or 'auto' with a GPU present): this rank's GPU; otherwise the CPU."""
    if preference == "cuda" or (preference == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            from mclrt.runtime.errors import UserError

            raise UserError("train.device is 'cuda' but torch sees no CUDA device (use 'auto' or 'cpu')")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def init_distributed(device_preference: str = "auto") -> DistInfo:
    """Join the process group torchrun describes (if any) and pick this rank's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_preference, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world_size)
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world_size, device=device)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def seed_rank(seed: int, rank: int) -> None:
    """Seed python, numpy and torch for this rank: different streams per rank, reproducible per seed."""
    rank_seed = seed + 1_000_003 * rank  # a prime stride keeps (seed, rank) pairs from colliding for small seeds
    random.seed(rank_seed)
    np.random.seed(rank_seed % 2**32)
    torch.manual_seed(rank_seed)


def mean_over_ranks(values: Mapping[str, float | torch.Tensor], device: torch.device) -> dict[str, float]:
    """Average scalars over all ranks (one all-reduce for the whole dict); plain floats when single-process."""
    names = sorted(values)
    if not names:
        return {}
    stacked = torch.stack([torch.as_tensor(values[n], dtype=torch.float64).detach().reshape(()).cpu() for n in names])
    if dist.is_initialized():
        # NCCL reduces only CUDA tensors; gloo takes CPU tensors.
        stacked = stacked.to(device)
        dist.all_reduce(stacked, op=dist.ReduceOp.SUM)
        stacked = stacked.cpu() / dist.get_world_size()
    return {n: float(v) for n, v in zip(names, stacked.tolist())}


def gather_objects(obj: object) -> list[object]:
    """Every rank's `obj`, in rank order (on every rank); [obj] when single-process."""
    if not dist.is_initialized():
        return [obj]
    gathered: list[object] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_object(obj: object) -> object:
    """Rank 0's `obj` on every rank."""
    if not dist.is_initialized():
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def maybe_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """SyncBatchNorm under DDP on CUDA; unchanged on the CPU (where SyncBatchNorm cannot train)."""
    if device.type == "cuda" and dist.is_initialized():
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return module


def wrap_ddp(module: nn.Module, info: DistInfo) -> nn.Module:
    """DDP around a trainable module when there are several ranks; the module itself otherwise."""
    if not info.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [info.device.index] if info.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids)


def unwrap(module: nn.Module) -> nn.Module:
    return module.module if hasattr(module, "module") and isinstance(getattr(module, "module"), nn.Module) else module


class ResumableSampler(Sampler[int]):
    """This rank's slice of a seeded shuffle of the dataset for one epoch, from a given position on.

    A DistributedSampler (seeded identically on every rank; `set_epoch` reshuffles) decides the
    order; `skip` drops the first samples of the epoch, so a run resumed in mid-epoch sees exactly the
    samples an uninterrupted run would have seen next.
    """

    def __init__(self, dataset: Dataset, info: DistInfo, seed: int, epoch: int, skip: int = 0, shuffle: bool = True):
        self.inner = DistributedSampler(
            dataset, num_replicas=info.world_size, rank=info.rank, shuffle=shuffle, seed=seed, drop_last=False
        )
        self.inner.set_epoch(epoch)
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        indices: Sequence[int] = list(self.inner)
        return iter(indices[self.skip :])

    def __len__(self) -> int:
        return max(0, len(self.inner) - self.skip)

    @staticmethod
    def per_rank_length(dataset: Dataset, world_size: int) -> int:
        """Samples per rank per epoch (DistributedSampler pads the dataset to a multiple of the world size)."""
        return -(-len(dataset) // world_size)


__all__ = [
    "DistInfo",
    "init_distributed",
    "shutdown",
    "barrier",
    "seed_rank",
    "mean_over_ranks",
    "gather_objects",
    "broadcast_object",
    "maybe_sync_batchnorm",
    "wrap_ddp",
    "unwrap",
    "ResumableSampler",
    "pick_device",
]
