"""Everything the trainer needs to know about running on several processes, in one small module.

`torchrun` starts one process per GPU on every machine and tells each its place through environment
variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT; TORCHELASTIC_RESTART_COUNT when
it restarts the group). Without them this is a single process and every helper here degrades to a
no-op. The backend is NCCL on CUDA and gloo on the CPU.

On several machines RANK is global (0 .. WORLD_SIZE-1 over all of them) and LOCAL_RANK counts the
processes of one machine: the GPU is chosen by LOCAL_RANK, everything else (data slice, seeds, who
writes) by RANK. Only global rank 0 writes files, so the run folder must be on a file system every
machine shares (`check_visible_everywhere` stops a run whose ranks do not see the same folder).

Rules the trainer relies on:
- every rank seeds its own RNGs differently (`seed_rank`), while the data order comes from the
  DistributedSampler, which is seeded identically on every rank and hands each rank its own slice;
- only rank 0 writes files (`is_main`); the others wait at `barrier()` where it matters;
- logged scalars are averaged over ranks (`mean_over_ranks`) so the log shows the global batch;
- decisions that read the file system (start or resume, and from which checkpoint) are taken once,
  on rank 0, and broadcast (`decide_on_main`), so every rank acts on the same answer -- an error
  included, which every rank then raises instead of leaving the others waiting in a collective;
- SyncBatchNorm only on CUDA: torch's SyncBatchNorm refuses CPU tensors in training
  (shared/research/cpu_feasibility.md 9b). (The MCL-Net networks use instance and positional norms,
  so today there is no BatchNorm to convert; the conversion is here for networks that add one.)
"""

from __future__ import annotations

import os
import random
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset, DistributedSampler, Sampler

from mclrt.runtime.errors import UserError

T = TypeVar("T")


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


def restart_count() -> int:
    """How often torchrun has restarted the worker group of this run: 0 on the first attempt and
    outside torchrun.

    torchrun sets TORCHELASTIC_RESTART_COUNT per machine, and only the machine whose worker failed
    counts the restart (the others restart their workers to rejoin without counting), so a rank on
    a healthy machine may read 0: the group's count is the largest over all ranks. Collective.
    """
    own = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    return max(int(count) for count in gather_objects(own))


def max_restarts() -> int:
    return int(os.environ.get("TORCHELASTIC_MAX_RESTARTS", "0"))


def decide_on_main(decide: Callable[[], T]) -> T:
    """`decide()` run on rank 0 only, its result (or its `UserError`) on every rank.

    A decision that reads files (does the run folder hold a checkpoint?) must not be taken by each
    rank on its own: ranks that disagree would run different code and deadlock. An error is
    re-raised on every rank, so all of them stop together with the same one-line message.
    """
    outcome: tuple[str, object] | None = None
    if not dist.is_initialized() or dist.get_rank() == 0:
        try:
            outcome = ("ok", decide())
        except UserError as err:
            outcome = ("error", (err.problem, err.path))
    if dist.is_initialized():
        outcome = broadcast_object(outcome)
    kind, value = outcome
    if kind == "error":
        problem, path = value
        raise UserError(problem, path)
    return value


def check_visible_everywhere(path: Path, what: str) -> None:
    """Raise the same `UserError` on every rank unless every rank sees `path` (which rank 0 has
    just written or found): the run folder must be on a file system all machines share."""
    if not dist.is_initialized():
        return
    seen = gather_objects((path.exists(), socket.gethostname()))
    blind = sorted({host for exists, host in seen if not exists})
    if blind:
        raise UserError(
            f"{what} is not visible from {', '.join(blind)}: with several machines the run folder must be "
            "on a file system they all share (rank 0 writes it, every rank reads checkpoints from it)",
            path,
        )


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
    samples an uninterrupted run would have seen next. `length` keeps only the first samples of the
    rank's slice: `steps_per_epoch` full global batches, whatever the world size.

    Why that makes the world size irrelevant to the data: the shuffle is one permutation P of the
    dataset, and rank r of W takes P[r], P[r+W], P[r+2W], ... So at global step s, with B/W samples
    per rank, the W ranks together take exactly P[s*B : (s+1)*B] -- the batch a single process takes.
    Capping every epoch at floor(N / B) batches (the single process's drop_last) drops the padding
    DistributedSampler adds, which would otherwise add an extra step per epoch for some world sizes.
    """

    def __init__(
        self, dataset: Dataset, info: DistInfo, seed: int, epoch: int, skip: int = 0, shuffle: bool = True, length: int | None = None
    ):
        self.inner = DistributedSampler(
            dataset, num_replicas=info.world_size, rank=info.rank, shuffle=shuffle, seed=seed, drop_last=False
        )
        self.inner.set_epoch(epoch)
        self.skip = skip
        self.length = len(self.inner) if length is None else min(length, len(self.inner))

    def __iter__(self) -> Iterator[int]:
        indices: Sequence[int] = list(self.inner)
        return iter(indices[self.skip : self.length])

    def __len__(self) -> int:
        return max(0, self.length - self.skip)

    @staticmethod
    def per_rank_length(dataset: Dataset, world_size: int) -> int:
        """Samples per rank per epoch (DistributedSampler pads the dataset to a multiple of the world size)."""
        return -(-len(dataset) // world_size)

    @staticmethod
    def steps_per_epoch(dataset: Dataset, batch_size: int) -> int:
        """Global batches per epoch: the same for any world size (the remainder is dropped, as by a
        single process's DataLoader with drop_last)."""
        return len(dataset) // batch_size


__all__ = [
    "DistInfo",
    "init_distributed",
    "shutdown",
    "barrier",
    "seed_rank",
    "mean_over_ranks",
    "gather_objects",
    "broadcast_object",
    "restart_count",
    "max_restarts",
    "decide_on_main",
    "check_visible_everywhere",
    "maybe_sync_batchnorm",
    "wrap_ddp",
    "unwrap",
    "ResumableSampler",
    "pick_device",
]
