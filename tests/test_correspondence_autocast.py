"""The correspondence stays FP32 under float16 autocast (training with AMP), on both paths.

CPU autocast with dtype=float16 casts bmm to half exactly as CUDA autocast does; at scale 100 a
half-precision similarity moves logits by up to 0.0625, so the result must come out FP32 and match
a float64 reference to FP32 accuracy.
"""

from __future__ import annotations

import pytest
import torch

from mclrt.training.correspondence import correspondence_softmax


def _features(b, n, m, c, cv, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.nn.functional.normalize(torch.randn(b, n, c, generator=g), dim=-1)
    k = torch.nn.functional.normalize(torch.randn(b, m, c, generator=g), dim=-1)
    v = torch.randn(b, m, cv, generator=g)
    return q, k, v


@pytest.mark.parametrize("chunk_size", [None, 16])  # explicit path, chunked path
def test_autocast_float16_keeps_the_correspondence_fp32(chunk_size):
    q, k, v = _features(2, 40, 33, 64, 3)
    expected = torch.bmm(torch.softmax(100.0 * q.double() @ k.double().transpose(1, 2), dim=-1), v.double())
    seen: list[torch.dtype] = []
    with torch.autocast("cpu", dtype=torch.float16):
        assert torch.bmm(q, k.transpose(1, 2)).dtype == torch.float16  # autocast is really on
        with _RecordDtypes(seen):
            out = correspondence_softmax(q, k, v, 100.0, chunk_size=chunk_size)
    assert out.dtype == torch.float32
    assert seen and all(dtype == torch.float32 for dtype in seen), seen
    assert (out.double() - expected).abs().max().item() < 1e-4


def test_autocast_gradients_are_fp32():
    q, k, v = _features(1, 24, 20, 32, 4, seed=1)
    q.requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.float16):
        out = correspondence_softmax(q, k, v, 100.0, chunk_size=8)  # checkpointed chunks
    out.sum().backward()
    assert out.dtype == torch.float32 and q.grad.dtype == torch.float32 and torch.isfinite(q.grad).all()


class _RecordDtypes(torch.overrides.TorchFunctionMode):
    """Records the result dtype of every bmm / softmax / matmul called inside."""

    WATCHED = {torch.bmm, torch.softmax, torch.Tensor.softmax, torch.matmul, torch.Tensor.exp_, torch.Tensor.div_}

    def __init__(self, seen: list):
        super().__init__()
        self.seen = seen

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        if func in self.WATCHED and isinstance(result, torch.Tensor):
            self.seen.append(result.dtype)
        return result
