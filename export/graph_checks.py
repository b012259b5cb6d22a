"""Structural checks of a freshly exported model directory (no torch, no inference).

What `mclrt export` promises about the two graphs, checked on the files it just wrote:
- each passes `onnx.checker.check_model(full_check=True)` and is one self-contained file (no
  external-data side file, no initializer stored outside the .onnx);
- exactly one `mclrt::CorrespondenceSoftmax` node across both graphs, in the translator, carrying
  `scale`, `mask_negative` and `plugin_namespace="mclrt"`, with its model-local function whose body
  is standard ops and does not read `plugin_namespace`;
- no other custom-domain node, no random or dropout op, and the batch is the only dynamic dimension.

Each check returns readable problems instead of raising, so one run reports all of them.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import AttributeProto

from mclrt.export.custom_op import DOMAIN, OP_TYPE, PLUGIN_NAMESPACE
from mclrt.runtime.model_dir import BATCH_DIM, GRAPH_FILES, MANIFEST_NAME

# Ops that make an inference graph non-deterministic or that only belong to training.
TRAINING_OR_RANDOM_OPS = frozenset(
    {"Dropout", "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli"}
)
NODE_ATTRIBUTES = {"scale": AttributeProto.FLOAT, "mask_negative": AttributeProto.INT, "plugin_namespace": AttributeProto.STRING}
FUNCTION_ATTRIBUTES = ("scale", "mask_negative")


def graph_problems(model_dir: str | Path) -> list[str]:
    """Every broken promise of the exported graphs in `model_dir` (empty when all hold)."""
    model_dir = Path(model_dir)
    problems = _stray_files(model_dir)
    models = {}
    for graph, file in GRAPH_FILES.items():
        path = model_dir / file
        models[graph] = onnx.load(str(path), load_external_data=False)
        try:
            onnx.checker.check_model(str(path), full_check=True)
        except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
            problems.append(f"{file}: onnx.checker: {str(err).splitlines()[0]}")
        problems += [f"{file}: {p}" for p in _self_contained(models[graph])]
        problems += [f"{file}: {p}" for p in _only_batch_dynamic(models[graph])]
        problems += [f"{file}: {p}" for p in _forbidden_ops(models[graph])]
    problems += _correspondence(models)
    return problems


def _stray_files(model_dir: Path) -> list[str]:
    expected = {*GRAPH_FILES.values(), MANIFEST_NAME}
    stray = sorted(p.name for p in model_dir.iterdir() if p.name not in expected)
    return [f"unexpected file(s) beside the graphs (external data?): {', '.join(stray)}"] if stray else []


def _self_contained(model: onnx.ModelProto) -> list[str]:
    external = [t.name for t in _all_initializers(model) if t.data_location == onnx.TensorProto.EXTERNAL]
    return [f"{len(external)} initializer(s) stored as external data (e.g. {external[0]})"] if external else []


def _all_initializers(model: onnx.ModelProto):
    yield from model.graph.initializer
    for node in _all_nodes(model):
        for attribute in node.attribute:
            if attribute.type == AttributeProto.TENSOR:
                yield attribute.t


def _all_nodes(model: onnx.ModelProto):
    """Nodes of the main graph, its subgraphs and every function body."""

    def walk(nodes):
        for node in nodes:
            yield node
            for attribute in node.attribute:
                if attribute.type == AttributeProto.GRAPH:
                    yield from walk(attribute.g.node)
                elif attribute.type == AttributeProto.GRAPHS:
                    for graph in attribute.graphs:
                        yield from walk(graph.node)

    yield from walk(model.graph.node)
    for function in model.functions:
        yield from walk(function.node)


def _only_batch_dynamic(model: onnx.ModelProto) -> list[str]:
    problems = []
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if not dims or dims[0].dim_param != BATCH_DIM:
            problems.append(f"{value.name}: dimension 0 must be the dynamic {BATCH_DIM!r}")
        if any(not d.HasField("dim_value") for d in dims[1:]):
            problems.append(f"{value.name}: only the batch may be dynamic, got {[d.dim_param or d.dim_value for d in dims]}")
    return problems


def _forbidden_ops(model: onnx.ModelProto) -> list[str]:
    problems = []
    found = sorted({n.op_type for n in _all_nodes(model) if n.domain in ("", "ai.onnx") and n.op_type in TRAINING_OR_RANDOM_OPS})
    if found:
        problems.append(f"training-only or random op(s): {', '.join(found)}")
    custom = sorted({f"{n.domain}::{n.op_type}" for n in model.graph.node if n.domain not in ("", "ai.onnx")} - {f"{DOMAIN}::{OP_TYPE}"})
    if custom:
        problems.append(f"custom op(s) a stock runtime cannot run: {', '.join(custom)}")
    return problems


def _correspondence(models: dict[str, onnx.ModelProto]) -> list[str]:
    nodes = [(graph, node) for graph, model in models.items() for node in model.graph.node if (node.domain, node.op_type) == (DOMAIN, OP_TYPE)]
    if len(nodes) != 1:
        return [f"expected exactly one {DOMAIN}::{OP_TYPE} node across both graphs, found {len(nodes)}"]
    graph, node = nodes[0]
    problems = []
    if graph != "translator":
        problems.append(f"the {OP_TYPE} node is in {graph}, it belongs in the translator")
    attributes = {a.name: a for a in node.attribute}
    for name, kind in NODE_ATTRIBUTES.items():
        if name not in attributes or attributes[name].type != kind:
            problems.append(f"the {OP_TYPE} node lacks the {AttributeProto.AttributeType.Name(kind)} attribute {name!r}")
    if "plugin_namespace" in attributes and attributes["plugin_namespace"].s.decode() != PLUGIN_NAMESPACE:
        problems.append(f"plugin_namespace is {attributes['plugin_namespace'].s.decode()!r}, TensorRT looks for {PLUGIN_NAMESPACE!r}")
    model = models[graph]
    function = next((f for f in model.functions if (f.domain, f.name) == (DOMAIN, OP_TYPE)), None)
    if function is None:
        return problems + [f"{GRAPH_FILES[graph]} has no model-local function {DOMAIN}::{OP_TYPE}"]
    if tuple(function.attribute) != FUNCTION_ATTRIBUTES:
        problems.append(f"the function declares attributes {list(function.attribute)}, expected {list(FUNCTION_ATTRIBUTES)}")
    body_domains = {n.domain for n in _all_nodes(_function_only(function))}
    if body_domains - {"", "ai.onnx"}:
        problems.append(f"the function body uses non-standard domains {sorted(body_domains - {'', 'ai.onnx'})}")
    referenced = {a.ref_attr_name for n in _all_nodes(_function_only(function)) for a in n.attribute if a.ref_attr_name}
    if "plugin_namespace" in referenced:
        problems.append("the function body depends on plugin_namespace, which is TensorRT's attribute only")
    return problems


def _function_only(function: onnx.FunctionProto) -> onnx.ModelProto:
    """A carrier so `_all_nodes` walks the function body and its If branches."""
    carrier = onnx.ModelProto()
    carrier.graph.node.extend(function.node)
    return carrier
