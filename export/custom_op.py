"""The correspondence step as one ONNX node, `mclrt::CorrespondenceSoftmax`, with its definition.

Three pieces, one per consumer:

- `correspondence_softmax_op`: a `torch.library` custom op wrapping the training reference, so
  `torch.export` sees the step as one opaque call instead of MatMul/Softmax/MatMul.
- `_translate_correspondence`: its onnxscript translation for the dynamo exporter. It emits the node
  `mclrt::CorrespondenceSoftmax(q, k, v; scale, mask_negative, plugin_namespace="mclrt")`.
  `plugin_namespace` is what makes TensorRT(-RTX) pick a plugin registered under "mclrt" over the
  local function below (without it the parser inlines the function even when the plugin exists:
  shared/research/tensorrt_rtx_on_cpu.md §3).
- `CorrespondenceSoftmax`: the node's definition in standard ops, stored as a model-local ONNX
  FunctionProto, so stock ONNX Runtime (and a TensorRT without the plugin) inlines and runs it.

How the function handles `mask_negative`: the body is written once, for every attribute value, with
an `If` on the attribute (`Relu(sim)` or `Identity(sim)`). The condition is a constant once the
function is inlined, so ONNX Runtime's constant folding keeps only the taken branch (no `If` is left
in its optimized graph), and TensorRT-RTX's builder folds the conditional the parser creates: with
the function inlined it still finds the MatMul -> Mul -> Softmax -> MatMul self-attention pattern
and fuses it into one node, the plan the same size as for a body without the `If` (checked with
TensorRT-RTX 1.7 on the CPU, SM86 target). We rejected the
alternatives: a body specialised to the model's attribute values would silently be wrong for a node
with other values, and an arithmetic mask (`s - m * min(s, 0)`) costs three extra passes over the
B x N x M similarity matrix on backends that do not fold it. The body reads only `scale` and
`mask_negative`; `plugin_namespace` is for TensorRT's importer and the body ignores it.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import onnx
import onnxscript
import torch
from onnxscript import FLOAT
from onnxscript import opset20 as op

from mclrt.training.correspondence import correspondence_softmax
from mclrt.training.networks import MCLNet

DOMAIN = "mclrt"
OP_TYPE = "CorrespondenceSoftmax"
DOMAIN_VERSION = 1
# The namespace the TensorRT plugin creator is registered under (runtime/trt/plugin.py); the ONNX
# attribute of the same name tells the parser to look there.
PLUGIN_NAMESPACE = "mclrt"

_mclrt = onnxscript.values.Opset(DOMAIN, DOMAIN_VERSION)


# --- torch side -------------------------------------------------------------------------------------


@torch.library.custom_op("mclrt::correspondence_softmax", mutates_args=())
def correspondence_softmax_op(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, mask_negative: bool
) -> torch.Tensor:
    """softmax(scale * q k^T) v; eager calls run the training reference, export sees one op."""
    return correspondence_softmax(q, k, v, scale, mask_negative)


@correspondence_softmax_op.register_fake
def _correspondence_softmax_shape(q, k, v, scale, mask_negative):
    return q.new_empty(q.shape[0], q.shape[1], v.shape[2])


def _correspondence_call(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float = 100.0, mask_negative: bool = False
) -> torch.Tensor:
    # Same signature as the training function, so it drops into CorrespondenceNet.correspond.
    return correspondence_softmax_op(q, k, v, float(scale), bool(mask_negative))


@contextlib.contextmanager
def correspondence_as_custom_op(model: MCLNet) -> Iterator[MCLNet]:
    """Route `model`'s correspondence step through the custom op while exporting, then restore it."""
    original = model.corr.correspond
    model.corr.correspond = _correspondence_call
    try:
        yield model
    finally:
        model.corr.correspond = original


# --- ONNX side --------------------------------------------------------------------------------------


# The return annotation is required: without it the exporter's inliner cannot count the outputs
# (shared/research/cpu_feasibility.md, recipe 1).
@onnxscript.script(_mclrt)
def _translate_correspondence(q: FLOAT, k: FLOAT, v: FLOAT, scale: float, mask_negative: int) -> FLOAT:
    return _mclrt.CorrespondenceSoftmax(
        q, k, v, scale=scale, mask_negative=mask_negative, plugin_namespace=PLUGIN_NAMESPACE
    )


CUSTOM_TRANSLATION_TABLE = {torch.ops.mclrt.correspondence_softmax.default: _translate_correspondence}


# The Python name is the ONNX function's name, which must equal the node's op_type.
@onnxscript.script(_mclrt)
def CorrespondenceSoftmax(q: FLOAT, k: FLOAT, v: FLOAT, scale: float, mask_negative: int) -> FLOAT:
    """q [B,N,C], k [B,M,C], v [B,M,Cv] -> softmax over M of scale * (q k^T, ReLU'd if mask_negative) times v."""
    similarity = op.MatMul(q, op.Transpose(k, perm=[0, 2, 1]))
    if op.Cast(mask_negative, to=onnx.TensorProto.BOOL):
        masked = op.Relu(similarity)
    else:
        masked = op.Identity(similarity)
    return op.MatMul(op.Softmax(op.Mul(masked, scale), axis=-1), v)


# The oldest opset whose semantics the body relies on (CastLike appeared in opset 15; Softmax has
# normalized over one axis since 13). Later opsets only widened the types these ops accept.
MIN_FUNCTION_OPSET = 15


def correspondence_function(opset: int = 20) -> onnx.FunctionProto:
    """The model-local FunctionProto `mclrt::CorrespondenceSoftmax` in standard ops of `opset`.

    ONNX requires a function and the model that imports it to agree on each domain's version, so the
    body (written against opset 20 above) is stamped with the model's opset.
    """
    if opset < MIN_FUNCTION_OPSET:
        raise ValueError(f"the CorrespondenceSoftmax function needs opset >= {MIN_FUNCTION_OPSET}, got {opset}")
    function = CorrespondenceSoftmax.to_function_proto()
    for opset_id in function.opset_import:
        if opset_id.domain in ("", "ai.onnx"):
            opset_id.version = opset
    # onnxscript names nodes n0, n1, ... in every (sub)graph; TensorRT's parser warns about the
    # repeated names, so give each node a unique, readable one.
    _name_nodes(function.node, "correspondence")
    return function


def _name_nodes(nodes, prefix: str) -> None:
    for index, node in enumerate(nodes):
        node.name = f"{prefix}/{index}_{node.op_type}"
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                _name_nodes(attribute.g.node, f"{node.name}/{attribute.name}")


def attach_correspondence_function(model: onnx.ModelProto) -> onnx.ModelProto:
    """Store the function definition in `model.functions` (in place) and return the model."""
    model_opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    kept = [f for f in model.functions if (f.domain, f.name) != (DOMAIN, OP_TYPE)]
    del model.functions[:]
    model.functions.extend([*kept, correspondence_function(model_opset)])
    if not any(o.domain == DOMAIN for o in model.opset_import):
        model.opset_import.append(onnx.helper.make_opsetid(DOMAIN, DOMAIN_VERSION))
    return model
