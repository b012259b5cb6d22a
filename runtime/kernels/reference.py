"""The correspondence in float64 NumPy: what every implementation (the exported ONNX function, the
Triton kernel, its launcher) is checked against.

    y = softmax(scale * q k^T) v        (with `mask_negative`: relu on q k^T first)

No torch and no Triton: `mclrt check` and the GPU checks import it on any machine.
"""

from __future__ import annotations

import numpy as np


def correspondence_reference(q, k, v, scale: float, mask_negative: bool) -> np.ndarray:
    """float64 [B, N, Cv] from q [B, N, C], k [B, M, C], v [B, M, Cv] (any float dtype; rounded inputs stay rounded)."""
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    similarity = q @ k.transpose(0, 2, 1)
    if mask_negative:
        similarity = np.maximum(similarity, 0.0)
    logits = scale * similarity
    logits -= logits.max(axis=-1, keepdims=True)  # stable: exp of at most 0
    weights = np.exp(logits)
    weights /= weights.sum(axis=-1, keepdims=True)
    return weights @ v
