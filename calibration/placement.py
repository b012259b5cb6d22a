"""Where INT8 may go in one graph: a walk that decides which nodes get Q/DQ, and a check that proves it.

Only Conv and Gemm are quantized (inputs and weights; the CPU encoding also their outputs). MatMuls
never are: in these graphs every MatMul is a similarity -- the self-correlation map, the generator's
attention, or inside the correspondence function -- where a handful of large dot products decide a
softmax and INT8 rounding reshuffles which position wins.

A Q/DQ pair must never touch ("adjoin": be fed by, or feed) a *forbidden* node:
- the correspondence node `mclrt::CorrespondenceSoftmax` (its function body is never edited at all);
- normalizations, native or written out: InstanceNormalization & co., every reduction (means,
  variances, L2 norms), the statistic chains computed from them (eps, Sqrt, ...), the centering and
  normalizing steps, and the squares feeding a variance. These are found by the same graph walk the
  FP16 recipe uses (`mclrt.runtime.trt.fp16.find_protected_nodes`), so both precisions agree on what
  a normalization is;
- softmax, and the output Tanh (its input's last bits are the picture's last bits).

For each Conv/Gemm the walk records whether Q/DQ may sit on its input (producer and every consumer of
that tensor allowed: ONNX Runtime's DQ feeds every consumer of a quantized tensor) and on its output.
"""

from __future__ import annotations

import ast
import fnmatch
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import onnx

from mclrt.runtime.trt.fp16 import CORRESPONDENCE_DOMAIN, find_protected_nodes, name_unnamed_nodes

QUANTIZABLE_OPS = ("Conv", "Gemm")
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
# Besides the normalization chains: ops whose inputs or outputs must stay float.
FORBIDDEN_OPS = frozenset({"Tanh", "Softmax", "LogSoftmax"})
# The torch dynamo exporter records each node's module path here (a Python-literal list, outermost first).
NAME_SCOPES_KEY = "pkg.torch.onnx.name_scopes"
# First module-path component of the networks inside whatever wrapper the exporter traced.
NETWORK_ROOTS = ("corr", "generator")


@dataclass(frozen=True)
class QuantizableNode:
    name: str
    op_type: str
    module: str  # module path inside the network, e.g. "generator.up_0.norm_1.mlp_gamma.1"
    group: str  # layer group for the sensitivity sweep, e.g. "generator.spade_mlps"
    input_blocked_by: str | None  # why Q/DQ may not sit on the activation input (None: it may)
    output_blocked_by: str | None  # why Q/DQ may not sit on the output (None: it may)

    @property
    def input_ok(self) -> bool:
        return self.input_blocked_by is None

    @property
    def output_ok(self) -> bool:
        return self.output_blocked_by is None


@dataclass(frozen=True)
class GraphPlan:
    """What the walk found in one graph: its quantizable nodes and the nodes Q/DQ must not touch."""

    graph: str
    nodes: tuple[QuantizableNode, ...]
    forbidden: Mapping[str, str]  # node name -> why

    def groups(self) -> list[str]:
        return sorted({node.group for node in self.nodes})


def prepare(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose nodes all have unique names (exclusion lists and the placement check use names)."""
    return name_unnamed_nodes(model)


def forbidden_nodes(model: onnx.ModelProto) -> dict[str, str]:
    """Node name -> why no Q/DQ may adjoin it. `model` must have named nodes (see `prepare`)."""
    forbidden = dict(find_protected_nodes(model).reasons)
    for node in model.graph.node:
        if node.domain == CORRESPONDENCE_DOMAIN:
            forbidden[node.name] = "correspondence"
        elif node.op_type in FORBIDDEN_OPS:
            forbidden.setdefault(node.name, node.op_type.lower())
    return forbidden


def plan_graph(model: onnx.ModelProto, graph: str) -> GraphPlan:
    """Walk one (prepared) graph: every Conv/Gemm with its layer group and where Q/DQ may sit."""
    forbidden = forbidden_nodes(model)
    producer = {out: node for node in model.graph.node for out in node.output if out}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            if name:
                consumers.setdefault(name, []).append(node)
    graph_outputs = {value.name for value in model.graph.output}
    initializers = {init.name for init in model.graph.initializer}

    def blocked(tensor: str) -> str | None:
        """Why a Q/DQ pair on `tensor` would adjoin a forbidden node, or None."""
        if tensor in graph_outputs:
            return "graph output"
        neighbours = [producer[tensor]] if tensor in producer else []
        neighbours += consumers.get(tensor, [])
        for neighbour in neighbours:
            if neighbour.name in forbidden:
                return f"{neighbour.op_type} {neighbour.name} ({forbidden[neighbour.name]})"
        return None

    nodes = []
    for node in model.graph.node:
        if node.op_type not in QUANTIZABLE_OPS or node.domain not in ("", "ai.onnx"):
            continue
        if len(node.input) < 2 or node.input[1] not in initializers:
            continue  # a run-time weight is an activation product: not a layer we quantize
        module = module_path(node)
        nodes.append(
            QuantizableNode(
                name=node.name,
                op_type=node.op_type,
                module=module,
                group=layer_group(module),
                input_blocked_by=blocked(node.input[0]),
                output_blocked_by=blocked(node.output[0]),
            )
        )
    return GraphPlan(graph, tuple(nodes), forbidden)


# --- layer groups --------------------------------------------------------------------------------------


def module_path(node: onnx.NodeProto) -> str:
    """The module a node was exported from, inside the network: from the exporter's name scopes,
    else from the weight's initializer name (`<module>.weight`), else the node name."""
    for prop in node.metadata_props:
        if prop.key == NAME_SCOPES_KEY:
            scopes = _literal_list(prop.value)
            # The last scope is the op itself (e.g. "conv2d"); the one before it is its module.
            if len(scopes) >= 2 and scopes[-2]:
                return _inside_network(scopes[-2])
    if len(node.input) > 1 and node.input[1].endswith(".weight"):
        return _inside_network(node.input[1].removesuffix(".weight"))
    return node.name


def _literal_list(text: str) -> list[str]:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return []
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else []


def _inside_network(path: str) -> str:
    """Drop the wrapper modules the exporter traced through ("m.corr.theta" -> "corr.theta")."""
    parts = path.split(".")
    for index, part in enumerate(parts):
        if part in NETWORK_ROOTS:
            return ".".join(parts[index:])
    return path


def layer_group(module: str) -> str:
    """The sweep's layer group of a module path.

    corr.adaptor_{cond,image}.layerN -> "<adaptor>.down" (the strided conv stack), its SPADE blocks'
    convs -> "<adaptor>.resblocks", corr.trunk / theta / phi -> themselves; generator.fc, head_0 ->
    "generator.head", G_middle_* -> "generator.middle", up_k, attn -> "generator.attention", conv_img.
    Every SPADE modulation MLP (norm_*.mlp_*) goes to "<network part>.spade_mlps": they read the
    condition, not the image features, so they tolerate INT8 differently.
    """
    parts = module.split(".")
    if parts[0] == "corr" and len(parts) > 1:
        top, rest = parts[1], parts[2:]
    elif parts[0] == "generator":
        top, rest = "generator", parts[1:]
    else:
        return ".".join(parts[:2]) if len(parts) > 1 else parts[0]
    if any(part.startswith("mlp_") for part in rest):
        return f"{top}.spade_mlps"
    if top.startswith("adaptor_") and rest:
        return f"{top}.down" if rest[0].startswith("layer") else f"{top}.resblocks"
    if top == "generator" and rest:
        block = rest[0]
        if block.startswith("G_middle"):
            return "generator.middle"
        if block.startswith("head"):
            return "generator.head"
        if block == "attn":
            return "generator.attention"
        return f"generator.{block}"
    return top


# --- choosing the nodes of an encoding ------------------------------------------------------------------


def matches(node: QuantizableNode, patterns: Iterable[str]) -> str | None:
    """The first `--exclude` pattern (shell-style) matching the node's name, module path or group."""
    for pattern in patterns:
        if any(fnmatch.fnmatchcase(text, pattern) for text in (node.name, node.module, node.group)):
            return pattern
    return None


def select_nodes(
    plan: GraphPlan, quantize_outputs: bool, exclude: Sequence[str] = (), only_groups: Iterable[str] | None = None
) -> list[str]:
    """Names of the nodes one encoding quantizes.

    A node qualifies when Q/DQ may sit on its input -- and, for an encoding that also quantizes
    outputs (the CPU one, so ONNX Runtime can fuse DQ -> Conv -> Q into one integer kernel), on its
    output too -- and no exclude pattern matches it. `only_groups` restricts to those layer groups
    (the sensitivity sweep quantizes one group at a time).
    """
    wanted = None if only_groups is None else set(only_groups)
    chosen = []
    for node in plan.nodes:
        if not node.input_ok or (quantize_outputs and not node.output_ok):
            continue
        if matches(node, exclude) is not None:
            continue
        if wanted is not None and node.group not in wanted:
            continue
        chosen.append(node.name)
    return chosen


# --- the check ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlacementViolation:
    graph: str
    node: str  # the Q or DQ node (or the function holding one)
    problem: str


def placement_violations(fp32: onnx.ModelProto, quantized: onnx.ModelProto, graph: str) -> list[PlacementViolation]:
    """Every Q/DQ node of `quantized` that adjoins a node forbidden in the (prepared) FP32 graph it was
    made from, plus any Q/DQ inside a model-local function and any change to the correspondence node."""
    forbidden = forbidden_nodes(fp32)
    producer = {out: node for node in quantized.graph.node for out in node.output if out}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in quantized.graph.node:
        for name in node.input:
            if name:
                consumers.setdefault(name, []).append(node)
    violations = []
    for node in quantized.graph.node:
        if node.op_type not in QDQ_OPS:
            continue
        neighbours = ([producer[node.input[0]]] if node.input[0] in producer else []) + consumers.get(node.output[0], [])
        for neighbour in neighbours:
            if neighbour.name in forbidden:
                violations.append(
                    PlacementViolation(graph, node.name, f"adjoins {neighbour.op_type} {neighbour.name} ({forbidden[neighbour.name]})")
                )
    for function in quantized.functions:
        inside = [n.op_type for n in function.node if n.op_type in QDQ_OPS]
        if inside:
            violations.append(PlacementViolation(graph, f"{function.domain}::{function.name}", f"function body holds {inside}"))
    before = _correspondence_nodes(fp32)
    after = _correspondence_nodes(quantized)
    if before != after:
        violations.append(PlacementViolation(graph, "CorrespondenceSoftmax", "the correspondence node or its function changed"))
    return violations


def _correspondence_nodes(model: onnx.ModelProto) -> list[bytes]:
    """The correspondence node(s) and function(s) in a canonical form: what they compute, not how a
    tool stored it (graph rewriters such as ModelOpt's drop metadata and type annotations and
    reorder function bodies)."""
    nodes = [_canonical(n) for n in model.graph.node if n.domain == CORRESPONDENCE_DOMAIN]
    for function in model.functions:
        if function.domain != CORRESPONDENCE_DOMAIN:
            continue
        signature = onnx.FunctionProto()
        signature.CopyFrom(function)
        del signature.node[:]
        del signature.metadata_props[:]
        del signature.value_info[:]
        signature.doc_string = ""
        nodes.append(signature.SerializeToString(deterministic=True) + b"".join(sorted(_canonical(n) for n in function.node)))
    return nodes


def _canonical(node: onnx.NodeProto) -> bytes:
    bare = onnx.NodeProto()
    bare.CopyFrom(node)
    del bare.metadata_props[:]
    bare.name = ""
    return bare.SerializeToString(deterministic=True)
