"""Will TensorRT import this graph? A static answer from TensorRT 10's ONNX operator table.

For every node (functions inlined, subgraphs included) we check the three things the table says and
the graph can show: the op is supported, its data input's element type is one the table lists, and
the op's written restrictions hold where they can be read off the graph (attributes such as Resize
modes, and "must be an initializer" inputs). What cannot be read off statically (e.g. a dynamic
`axes` fed at run time) is reported as an error, because TensorRT refuses it at parse time.

The real parse-and-build with TensorRT-RTX (`mclrt.runtime.checks.model_check`) is the final word; this check
explains *why* in terms of the ONNX graph, and runs where TensorRT is not installed.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import onnx

from mclrt.runtime.checks.findings import Finding
from mclrt.runtime.checks.onnx_graph import GraphIndex, attribute, node_label

TABLE_PATH = Path(__file__).resolve().parent.parent / "data" / "tensorrt10_onnx_operators.csv"
CHECK = "tensorrt-ops"
CORRESPONDENCE_OP = ("mclrt", "CorrespondenceSoftmax")


@dataclass(frozen=True)
class OpSupport:
    op: str
    supported: bool
    types: frozenset[str]
    restrictions: str


@functools.cache
def load_op_table(path: Path = TABLE_PATH) -> dict[str, OpSupport]:
    table = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            # The transcription has "INF64" for INT64 (ConstantOfShape) and a trailing comma (Selu).
            types = {t.strip().replace("INF64", "INT64") for t in row["types"].split(",")} - {""}
            table[row["operator"]] = OpSupport(row["operator"], row["supported"] == "Y", frozenset(types), row["restrictions"])
    return table


# The input whose element type the table's "types" column is about (the data input; Where's is #1).
_DATA_INPUT = {"Where": 1}

Problem = Iterator[str]


def check_graph(index: GraphIndex, graph: str, local_functions: set[tuple[str, str]] = frozenset()) -> list[Finding]:
    """Findings for every node of one (inlined, shape-inferred) graph or subgraph."""
    table = load_op_table()
    findings = []

    def error(node: onnx.NodeProto, message: str) -> None:
        findings.append(Finding(CHECK, "error", graph, node_label(node), message))

    for node in index.graph.node:
        domain = node.domain or ""
        if domain not in ("", "ai.onnx"):
            key = (domain, node.op_type)
            if key in local_functions:
                continue  # its body was inlined and is checked node by node
            error(node, f"custom op {domain}::{node.op_type} has no model-local function; TensorRT needs a plugin for it")
            continue
        support = table.get(node.op_type)
        if support is None:
            error(node, f"{node.op_type} is not in TensorRT's ONNX operator table")
            continue
        if not support.supported:
            error(node, f"{node.op_type} is not supported by TensorRT")
            continue
        for message in _type_problems(node, index, support):
            error(node, message)
        restriction = _RESTRICTIONS.get(node.op_type)
        if restriction is not None:
            for message in restriction(node, index):
                error(node, f"{node.op_type}: {message}")
    return findings


def _type_problems(node: onnx.NodeProto, index: GraphIndex, support: OpSupport) -> Problem:
    if not support.types:
        return
    position = _DATA_INPUT.get(node.op_type, 0)
    if node.op_type in ("Cast", "CastLike"):
        names = [node.input[0], node.output[0]]
    elif len(node.input) > position and node.input[position]:
        names = [node.input[position]]
    else:  # no data input (Constant, RandomNormal, ...): the output's type is what matters
        names = [node.output[0]]
    for name in names:
        type_name = index.type_name(name)
        if type_name is not None and type_name not in support.types:
            yield f"{node.op_type} on {type_name} ({name}); TensorRT supports {', '.join(sorted(support.types))}"


# --- restrictions from the table's last column ---------------------------------------------------------


def _input(node: onnx.NodeProto, position: int) -> str | None:
    return node.input[position] if len(node.input) > position and node.input[position] else None


def _must_be_constant(position: int, what: str) -> Callable[[onnx.NodeProto, GraphIndex], Problem]:
    def check(node: onnx.NodeProto, index: GraphIndex) -> Problem:
        name = _input(node, position)
        if name is not None and not index.is_constant(name):
            yield f"`{what}` must be an initializer or constant, but {name!r} is computed at run time"

    return check


def _pooling(node: onnx.NodeProto, index: GraphIndex) -> Problem:
    kernel = attribute(node, "kernel_shape", [])
    if len(kernel) not in (2, 3):
        yield f"only 2D or 3D pooling is supported (kernel_shape {list(kernel)})"
    dilations = attribute(node, "dilations", [])
    if dilations and any(d != 1 for d in dilations):
        yield f"`dilations` must be empty or all ones (got {list(dilations)})"
    if node.op_type == "MaxPool" and len(node.output) > 1 and node.output[1]:
        yield "the `Indices` output is not supported"


def _lp_pool(node: onnx.NodeProto, index: GraphIndex) -> Problem:
    dilations = attribute(node, "dilations", [])
    if dilations and any(d != 1 for d in dilations):
        yield f"`dilations` must be empty or all ones (got {list(dilations)})"


def _constant(node: onnx.NodeProto, index: GraphIndex) -> Problem:
    for attr in node.attribute:
        if attr.name in ("sparse_value", "value_string", "value_strings"):
            yield f"the `{attr.name}` attribute is not supported"


def _zero_point_zero(position: int, what: str) -> Callable[[onnx.NodeProto, GraphIndex], Problem]:
    def check(node: onnx.NodeProto, index: GraphIndex) -> Problem:
        name = _input(node, position)
        if name is None:
            return
        value = index.constant(name)
        if value is None:
            yield f"`{what}` must be a constant zero, but {name!r} is computed at run time"
        elif np.any(value != 0):
            yield f"`{what}` must be zero (asymmetric quantization is not supported)"

    return check


def _dropout(node: onnx.NodeProto, index: GraphIndex) -> Problem:
    name = _input(node, 2)
    if name is None:
        return
    value = index.constant(name)
    if value is None or bool(np.any(value)):
        yield "`training_mode` must be an initializer that is False"


def _eye_like(node: onnx.NodeProto, index: GraphIndex) -> Problem:
    shape = index.shape(node.input[0])
    if shape is None or not all(isinstance(d, int) for d in shape):
        yield f"`input` must have static dimensions (has {shape})"


def _grid_sample(node: onnx.NodeProto, index: GraphIndex) -> Problem:
    shape = index.shape(node.input[0])
    if shape is not None and len(shape) != 4:
        yield f"input must be 4D (is {len(shape)}D)"


def _layer_norm(node: onnx.NodeProto, index: GraphIndex) -> Problem:
    extra = [name for name in node.output[1:] if name]
    if extra:
        yield f"only the first output `Y` is supported (also asked for {extra})"


def _recurrent(node: onnx.NodeProto, index: GraphIndex) -> Problem:
    direction = attribute(node, "direction", b"forward")
    activations = [a.decode() if isinstance(a, bytes) else a for a in attribute(node, "activations", [])]
    if direction in (b"bidirectional", "bidirectional") and activations:
        half = len(activations) // 2
        if activations[:half] != activations[half:]:
            yield "bidirectional: the forward and reverse activations must be the same"
    if node.op_type == "LSTM":
        if attribute(node, "input_forget", 0) != 0:
            yield "`input_forget` must be 0"
        if attribute(node, "layout", 0) != 0:
            yield "`layout` must be 0"


def _resize(node: onnx.NodeProto, index: GraphIndex) -> Problem:
    def text(name: str, default: str) -> str:
        value = attribute(node, name, default)
        return value.decode() if isinstance(value, bytes) else value

    transform = text("coordinate_transformation_mode", "half_pixel")
    if transform not in ("half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"):
        yield f"coordinate_transformation_mode {transform!r} is not supported"
    mode = text("mode", "nearest")
    if mode not in ("nearest", "linear"):
        yield f"mode {mode!r} is not supported (nearest or linear only)"
    if mode == "nearest":
        nearest = text("nearest_mode", "round_prefer_floor")
        if nearest not in ("floor", "ceil", "round_prefer_floor", "round_prefer_ceil"):
            yield f"nearest_mode {nearest!r} is not supported"
    policy = text("keep_aspect_ratio_policy", "stretch")
    if policy != "stretch":
        yield f"keep_aspect_ratio_policy {policy!r} is not supported (stretch only)"
    if attribute(node, "antialias", 0):
        yield "antialiasing is not supported"
    scales = _input(node, 2)
    axes = attribute(node, "axes", None)
    if scales is not None and not index.is_constant(scales) and axes is not None:
        rank = index.shape(node.input[0])
        if rank is None or list(axes) != list(range(len(rank))):
            yield f"with run-time `scales`, `axes` must be 0..rank-1 (got {list(axes)})"


def _pad(node: onnx.NodeProto, index: GraphIndex) -> Problem:
    yield from _must_be_constant(3, "axes")(node, index)
    mode = attribute(node, "mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode not in ("constant", "reflect", "edge", "wrap"):
        yield f"mode {mode!r} is not supported"


def _reduce(node: onnx.NodeProto, index: GraphIndex) -> Problem:
    yield from _must_be_constant(1, "axes")(node, index)


def _scatter_nd(node: onnx.NodeProto, index: GraphIndex) -> Problem:
    reduction = attribute(node, "reduction", b"none")
    if reduction not in (b"none", "none"):
        yield f"`reduction` is not supported (got {reduction!r})"


def _top_k(node: onnx.NodeProto, index: GraphIndex) -> Problem:
    if attribute(node, "sorted", 1) != 1:
        yield "`sorted` must be 1"
    k = index.constant(node.input[1]) if len(node.input) > 1 else None
    if k is None:
        yield "`K` must be a constant"
    elif int(np.asarray(k).reshape(-1)[0]) >= 3840:
        yield f"`K` must be less than 3840 (is {int(np.asarray(k).reshape(-1)[0])})"


def _hardmax(node: onnx.NodeProto, index: GraphIndex) -> Problem:
    shape = index.shape(node.input[0])
    axis = attribute(node, "axis", -1)
    if shape is not None and not isinstance(shape[axis], int):
        yield "the `axis` dimension must be a build-time constant"


def _one_hot(node: onnx.NodeProto, index: GraphIndex) -> Problem:
    yield from _must_be_constant(1, "depth")(node, index)


def _cumsum(node: onnx.NodeProto, index: GraphIndex) -> Problem:
    yield from _must_be_constant(1, "axis")(node, index)


def _if(node: onnx.NodeProto, index: GraphIndex) -> Problem:
    branches = {attr.name: attr.g for attr in node.attribute if attr.type == onnx.AttributeProto.GRAPH}
    then_out = [o.name for o in branches["then_branch"].output] if "then_branch" in branches else []
    else_out = [o.name for o in branches["else_branch"].output] if "else_branch" in branches else []
    shared = set(then_out) & set(else_out)
    if shared:
        yield f"the two branches' outputs must have different names (both have {sorted(shared)})"


_RESTRICTIONS: dict[str, Callable[[onnx.NodeProto, GraphIndex], Problem]] = {
    "AveragePool": _pooling,
    "MaxPool": _pooling,
    "LpPool": _lp_pool,
    "Constant": _constant,
    "CumSum": _cumsum,
    "DequantizeLinear": _zero_point_zero(2, "x_zero_point"),
    "QuantizeLinear": _zero_point_zero(2, "y_zero_point"),
    "Dropout": _dropout,
    "EyeLike": _eye_like,
    "GridSample": _grid_sample,
    "Hardmax": _hardmax,
    "If": _if,
    "LayerNormalization": _layer_norm,
    "GRU": _recurrent,
    "LSTM": _recurrent,
    "RNN": _recurrent,
    "OneHot": _one_hot,
    "Pad": _pad,
    "Resize": _resize,
    "ScatterND": _scatter_nd,
    "Slice": _must_be_constant(3, "axes"),
    "Squeeze": _must_be_constant(1, "axes"),
    "Unsqueeze": _must_be_constant(1, "axes"),
    "TopK": _top_k,
    **{
        op: _reduce
        for op in (
            "ReduceL1",
            "ReduceL2",
            "ReduceLogSum",
            "ReduceLogSumExp",
            "ReduceMax",
            "ReduceMean",
            "ReduceMin",
            "ReduceProd",
            "ReduceSum",
            "ReduceSumSquare",
        )
    },
}
