"""The correspondence step: softmax(scale * q k^T) v, in one place.

    correspondence_softmax(q [B,N,C], k [B,M,C], v [B,M,Cv], scale=100, mask_negative=False) -> [B,N,Cv]

`q` and `k` are L2-normalized descriptors, so q k^T is a cosine similarity and `scale` = 1/temperature
(CoCosNet: temperature 0.01). `mask_negative` is MATEBIT's mask: similarities go through ReLU before
the softmax, so anti-correlated positions get the same weight as unrelated ones.

This function is what export turns into the single ONNX node `mclrt::CorrespondenceSoftmax`, so its
signature stays small and its semantics exact. Two paths compute it:
- `explicit`: the reference; builds the B x N x M matrix.
- `chunked`: query rows in chunks, so peak memory is B x chunk x M and does not grow with N * M.
  With autograd on, each chunk is recomputed in backward (activation checkpointing) so training
  memory stays bounded as well.
The warp cycle of CoCosNet (softmax over the *input* positions) is the same function with q and k
swapped: `correspondence_softmax(k, q, warped)`.

Always FP32, also under autocast: at scale 100 the logits reach +-100, where FP16's spacing is
0.0625, so a half-precision similarity or softmax shifts the weights by ~6% -- the inference FP16
recipe keeps this step FP32 for the same reason. Under autocast the inputs are cast up and autocast
is switched off for the similarity, softmax and weighted sum; the result is FP32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

# Above this many similarity entries per batch item the chunked path is used by default.
_EXPLICIT_LIMIT = 1 << 22  # 4M entries = 16 MiB in fp32
DEFAULT_CHUNK = 1024


def _similarity(q: torch.Tensor, k: torch.Tensor, scale: float, mask_negative: bool) -> torch.Tensor:
    sim = torch.bmm(q, k.transpose(1, 2))
    if mask_negative:
        sim = F.relu(sim)
    return sim * scale


def correspondence_explicit(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float = 100.0, mask_negative: bool = False
) -> torch.Tensor:
    """Reference path: the full attention matrix."""
    return torch.bmm(torch.softmax(_similarity(q, k, scale, mask_negative), dim=-1), v)


def _chunk(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, mask_negative: bool) -> torch.Tensor:
    return torch.bmm(torch.softmax(_similarity(q, k, scale, mask_negative), dim=-1), v)


def _chunk_inplace(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, mask_negative: bool) -> torch.Tensor:
    """The same rows without autograd: mask, scale and softmax run in place, so a chunk costs one
    B x chunk x M buffer."""
    sim = torch.bmm(q, k.transpose(1, 2))
    if mask_negative:
        sim.relu_()
    sim.mul_(scale)
    sim.sub_(sim.amax(dim=-1, keepdim=True)).exp_()
    sim.div_(sim.sum(dim=-1, keepdim=True))
    return torch.bmm(sim, v)


def correspondence_chunked(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float = 100.0,
    mask_negative: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
) -> torch.Tensor:
    """Memory-efficient path: `chunk_size` query rows at a time; each softmax row is complete."""
    outputs = []
    needs_grad = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad)
    for start in range(0, q.shape[1], chunk_size):
        q_rows = q[:, start : start + chunk_size]
        if needs_grad:
            outputs.append(checkpoint(_chunk, q_rows, k, v, scale, mask_negative, use_reentrant=False))
        else:
            outputs.append(_chunk_inplace(q_rows, k, v, scale, mask_negative))
    return torch.cat(outputs, dim=1)


def correspondence_softmax(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float = 100.0,
    mask_negative: bool = False,
    *,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """softmax(scale * q k^T) v over the M axis; chunked automatically when N * M is large."""
    if q.dim() != 3 or k.dim() != 3 or v.dim() != 3:
        raise ValueError(f"expected q [B,N,C], k [B,M,C], v [B,M,Cv]; got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if q.shape[2] != k.shape[2] or k.shape[1] != v.shape[1] or not (q.shape[0] == k.shape[0] == v.shape[0]):
        raise ValueError(f"shape mismatch: q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}")
    if chunk_size is None:
        chunk_size = q.shape[1] if q.shape[1] * k.shape[1] <= _EXPLICIT_LIMIT else DEFAULT_CHUNK
    if _autocast_enabled(q.device.type):
        device_type = q.device.type
        with torch.autocast(device_type, enabled=False):
            return _dispatch(q.float(), k.float(), v.float(), scale, mask_negative, chunk_size)
    return _dispatch(q, k, v, scale, mask_negative, chunk_size)


def _autocast_enabled(device_type: str) -> bool:
    """torch.is_autocast_enabled for a device type, False for types autocast does not know: it raises
    "unknown device type for autocast" on meta tensors (shape checks run the network on them)."""
    try:
        return torch.is_autocast_enabled(device_type)
    except RuntimeError:
        return False


def _dispatch(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, mask_negative: bool, chunk_size: int) -> torch.Tensor:
    if chunk_size >= q.shape[1]:
        return correspondence_explicit(q, k, v, scale, mask_negative)
    return correspondence_chunked(q, k, v, scale, mask_negative, chunk_size)
