"""Where would this graph go wrong in FP16? A static report, read off the (inlined, shape-inferred) graph.

FP16's smallest normal number is 6.1e-5 and its largest is 65504. So:
- an epsilon below 6e-5 in a normalization (attribute, or an `x + eps` / `max(x, eps)` in front of a
  Sqrt or a division) becomes a subnormal or zero, and a zero-variance channel divides by ~0;
- `exp(x)` overflows for x > 11.09 unless x is bounded first (clamped, squashed, or the max subtracted
  as a stable softmax does), and `x ** p` with p > 1 overflows once |x| > 65504 ** (1/p) (256 for p = 2);
- a sum over more than 4096 elements accumulates enough rounding error (and can overflow) to matter.

These are warnings: they say which layers an FP16 build should keep in FP32 (ModelOpt AutoCast's
`nodes_to_exclude`, or the FP16 converter's block list), not that the FP32 graph is wrong.
Matrix products are not listed: TensorRT accumulates GEMMs in FP32.
"""

from __future__ import annotations

import numpy as np
import onnx

from mclrt.runtime.checks.findings import Finding
from mclrt.runtime.checks.onnx_graph import GraphIndex, attribute, node_label

CHECK = "fp16-risk"
FP16_SMALLEST_NORMAL = 6e-5
MAX_REDUCTION = 4096

_NORMALIZATIONS = ("BatchNormalization", "InstanceNormalization", "LayerNormalization", "GroupNormalization", "RMSNormalization")
_SUM_REDUCTIONS = ("ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceProd")
# Producers whose output is bounded, so exp() of it cannot overflow.
_BOUNDED = ("Clip", "Min", "Tanh", "Sigmoid", "HardSigmoid", "Softsign", "Cos", "Sin", "Softmax", "LogSoftmax")


def check_graph(index: GraphIndex, graph: str) -> list[Finding]:
    findings: list[Finding] = []

    def warn(node: onnx.NodeProto, message: str) -> None:
        findings.append(Finding(CHECK, "warning", graph, node_label(node), message))

    for node in index.graph.node:
        op = node.op_type
        if op in _NORMALIZATIONS:
            eps = attribute(node, "epsilon", 1e-5)
            if eps < FP16_SMALLEST_NORMAL:
                warn(node, f"{op} epsilon {eps:g} is below FP16's smallest normal (6.1e-5)")
        if op in ("Add", "Max", "Clip"):
            eps = _small_guard(node, index)
            if eps is not None and _feeds_denominator(node, index):
                warn(node, f"{op} with epsilon {eps:g} before a Sqrt/division: below FP16's smallest normal (6.1e-5)")
        if op == "Exp" and not _bounded(node.input[0], index):
            warn(node, "Exp of an unclamped activation: overflows FP16 above 11.09")
        if op == "Pow":
            message = _pow_risk(node, index)
            if message:
                warn(node, message)
        count = _reduced_elements(node, index)
        if count is not None and count > MAX_REDUCTION:
            warn(node, f"{op} reduces over {count} elements (> {MAX_REDUCTION}): FP16 accumulation loses precision")
    return findings


def _scalar(value: np.ndarray | None) -> float | None:
    if value is None or value.size != 1:
        return None
    return float(value.reshape(-1)[0])


def _small_guard(node: onnx.NodeProto, index: GraphIndex) -> float | None:
    """The tiny positive constant of `x + eps`, `max(x, eps)` or `clip(x, min=eps)`, if there is one."""
    if node.op_type == "Clip":
        candidates = [node.input[1]] if len(node.input) > 1 and node.input[1] else []
    else:
        candidates = list(node.input)
    for name in candidates:
        value = _scalar(index.constant(name))
        if value is not None and 0 < value < FP16_SMALLEST_NORMAL:
            return value
    return None


def _feeds_denominator(node: onnx.NodeProto, index: GraphIndex, hops: int = 3) -> bool:
    """Does this node's output reach a divisor, a Reciprocal or a Sqrt (through Sqrt/Cast/Identity/Expand)?"""
    frontier = [node.output[0]]
    for _ in range(hops):
        following = []
        for name in frontier:
            for consumer in index.consumers.get(name, []):
                if consumer.op_type == "Div" and len(consumer.input) > 1 and consumer.input[1] == name:
                    return True
                if consumer.op_type in ("Reciprocal", "Sqrt"):
                    return True
                if consumer.op_type == "Pow" and (_scalar(index.constant(consumer.input[1])) or 0) < 0:
                    return True
                if consumer.op_type in ("Cast", "Identity", "Expand"):
                    following.append(consumer.output[0])
        frontier = following
    return False


def _bounded(name: str, index: GraphIndex) -> bool:
    if index.is_constant(name):
        return True
    producer = index.producer(name)
    if producer is None:
        return False
    if producer.op_type in _BOUNDED:
        return True
    if producer.op_type == "Neg":  # exp(-relu(x)) and friends
        inner = index.producer(producer.input[0])
        return inner is not None and inner.op_type in ("Relu", "Abs", "Softplus")
    if producer.op_type == "Sub":  # x - max(x): the stable-softmax form
        subtrahend = index.producer(producer.input[1])
        return subtrahend is not None and subtrahend.op_type == "ReduceMax"
    return False


def _pow_risk(node: onnx.NodeProto, index: GraphIndex) -> str | None:
    if index.is_constant(node.input[0]):
        return None
    exponent = _scalar(index.constant(node.input[1]))
    if exponent is None:
        return "Pow with a run-time exponent on an activation: may overflow FP16"
    if exponent > 1:
        limit = 65504 ** (1 / exponent)
        return f"Pow(x, {exponent:g}) on an activation overflows FP16 once |x| > {limit:.4g}"
    if exponent < 0:
        return f"Pow(x, {exponent:g}) on an activation: division by ~0 in FP16 for small |x|"
    return None


def _reduced_elements(node: onnx.NodeProto, index: GraphIndex) -> int | None:
    """How many elements one output value sums over, when the shapes tell; None otherwise."""
    op = node.op_type
    if not node.input:
        return None
    shape = index.shape(node.input[0])
    if shape is None:
        return None
    rank = len(shape)
    if op in _SUM_REDUCTIONS:
        axes = attribute(node, "axes", None)
        if axes is None and len(node.input) > 1 and node.input[1]:
            value = index.constant(node.input[1])
            if value is None:
                return None
            axes = value.reshape(-1).tolist()
        if not axes:
            if attribute(node, "noop_with_empty_axes", 0):
                return None
            axes = list(range(rank))
    elif op in ("Softmax", "LogSoftmax"):
        axes = [attribute(node, "axis", -1)]
    elif op in ("InstanceNormalization", "GlobalAveragePool", "GlobalLpPool"):
        axes = list(range(2, rank))
    elif op in ("LayerNormalization",):
        start = attribute(node, "axis", -1)
        axes = list(range(start % rank, rank))
    elif op == "GroupNormalization":
        groups = attribute(node, "num_groups", 1)
        channels = shape[1]
        if not isinstance(channels, int):
            return None
        spatial = _product([shape[a] for a in range(2, rank)])
        return None if spatial is None else spatial * (channels // groups)
    elif op == "MeanVarianceNormalization":
        axes = list(attribute(node, "axes", [0, 2, 3]))
    else:
        return None
    return _product([shape[a % rank] for a in axes])


def _product(dims) -> int | None:
    total = 1
    for dim in dims:
        if not isinstance(dim, int):
            return None
        total *= dim
    return total
