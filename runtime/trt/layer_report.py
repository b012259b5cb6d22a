"""Realized per-layer precision of a TensorRT build, read back and checked against the FP16 recipe.

Where the numbers come from:
- TensorRT-RTX (also on a CPU-only machine): with `profiling_verbosity = DETAILED` and a VERBOSE
  logger the builder logs a `Layers:` block, one line per fused layer:
  `Name: ..., LayerType: ..., Inputs: [ { Name: ..., Datatype: Float, ... } ], Constants: [...],
  Outputs: [...], TacticName: ..., StreamId: 0, Metadata: [ONNX Layer: a][ONNX Layer: b | call (Op)]`.
- enterprise TensorRT (GPU): the same information from IEngineInspector as JSON
  (`layers_from_inspector_json`; written against the documented format, unverified on a GPU).

The check: a fused layer that contains a protected ONNX node must not compute in Half. A Half
tensor at its boundary is accepted only where the recipe's own Cast was fused in -- a Cast to FP32
whose input comes from outside the layer (Half in, converted at the entrance) or that feeds a
protected node of the layer directly (converted right before it), or a Cast to FP16 whose result
leaves the layer (converted at the exit). Without the recipe's block list there are no
such Casts around the normalizations, so they show up as violations (the test proves it).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Iterable, Sequence

import onnx
from onnx import TensorProto

from mclrt.runtime.trt.fp16 import ProtectedNodes

_LAYER_LINE = re.compile(
    r"^Name: (?P<name>.*?), LayerType: (?P<type>[^,]*), Inputs: \[(?P<inputs>.*?)\], Constants: \[(?P<constants>.*?)\], "
    r"Outputs: \[(?P<outputs>.*?)\], TacticName: (?P<tactic>[^,]*), StreamId: (?P<stream>\d+), Metadata: (?P<metadata>.*)$"
)
_DATATYPE = re.compile(r"Datatype: (\w+)")
_ONNX_LAYER = re.compile(r"\[ONNX Layer: (.*?)\]")
_OP_SUFFIX = re.compile(r"^(?P<name>.*) \((?P<op>[A-Za-z0-9_]+)\)$")

HALF = "Half"
PLUGIN_IMPORTED = "Importing this node as a plugin"
FUNCTION_INLINED = "Importing as a local function"


@dataclass(frozen=True)
class LayerInfo:
    name: str
    layer_type: str
    input_types: tuple[str, ...]
    output_types: tuple[str, ...]
    onnx_nodes: tuple[str, ...]  # every ONNX node name the layer was fused from (function calls: caller too)
    tactic: str = ""


def _onnx_nodes(metadata: str) -> tuple[str, ...]:
    """'[ONNX Layer: node_of_sim | correspondence (CorrespondenceSoftmax)]' -> ('node_of_sim', 'correspondence')."""
    names: list[str] = []
    for entry in _ONNX_LAYER.findall(metadata):
        for part in entry.split(" | "):
            match = _OP_SUFFIX.match(part.strip())
            names.append(match.group("name") if match else part.strip())
    return tuple(dict.fromkeys(names))


def layers_from_build_log(messages: Iterable[str]) -> list[LayerInfo]:
    """Parse every line of the builder's `Layers:` block (TensorRT-RTX, DETAILED + VERBOSE)."""
    layers: list[LayerInfo] = []
    for message in messages:
        if not message.startswith("Layers:"):
            continue
        for line in message.splitlines()[1:]:
            match = _LAYER_LINE.match(line.strip())
            if match is None:
                continue
            layers.append(
                LayerInfo(
                    name=match.group("name"),
                    layer_type=match.group("type"),
                    input_types=tuple(_DATATYPE.findall(match.group("inputs"))),
                    output_types=tuple(_DATATYPE.findall(match.group("outputs"))),
                    onnx_nodes=_onnx_nodes(match.group("metadata")),
                    tactic=match.group("tactic"),
                )
            )
    return layers


def _inspector_type(description: str) -> str:
    """IEngineInspector's 'Format/Datatype' strings (e.g. 'Row major linear FP16 format') -> log names."""
    for token, name in (("FP16", HALF), ("Half", HALF), ("FP32", "Float"), ("Float", "Float"), ("Int8", "Int8"), ("INT8", "Int8")):
        if token in description:
            return name
    return description


def layers_from_inspector_json(text: str) -> list[LayerInfo]:
    """Enterprise TensorRT: `inspector.get_engine_information(LayerInformationFormat.JSON)` (GPU only; unverified)."""
    layers = []
    for layer in json.loads(text).get("Layers", []):
        if not isinstance(layer, dict):
            continue

        def types(key: str) -> tuple[str, ...]:
            return tuple(_inspector_type(str(t.get("Format/Datatype", ""))) for t in layer.get(key, []))

        layers.append(
            LayerInfo(
                name=str(layer.get("Name", "")),
                layer_type=str(layer.get("LayerType", "")),
                input_types=types("Inputs"),
                output_types=types("Outputs"),
                onnx_nodes=_onnx_nodes(str(layer.get("Metadata", ""))),
                tactic=str(layer.get("TacticName", layer.get("TacticValue", ""))),
            )
        )
    return layers


@dataclass(frozen=True)
class _CastInfo:
    to: int
    producer: str | None  # node producing the Cast's input (None: graph input or initializer)
    consumers: tuple[str, ...]  # nodes reading its output
    feeds_graph_output: bool


def _casts(model: onnx.ModelProto) -> dict[str, _CastInfo]:
    graph = model.graph
    producer = {out: node.name for node in graph.node for out in node.output}
    consumers: dict[str, list[str]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.name)
    outputs = {o.name for o in graph.output}
    casts = {}
    for node in graph.node:
        if node.op_type == "Cast":
            to = next(a.i for a in node.attribute if a.name == "to")
            casts[node.name] = _CastInfo(to, producer.get(node.input[0]), tuple(consumers.get(node.output[0], ())), node.output[0] in outputs)
    return casts


@dataclass
class PrecisionReport:
    """The parsed layers plus the verdict on the protected ones; saved as JSON next to the plan."""

    layers: list[LayerInfo]
    protected_layers: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    plugin_imported: bool = False
    function_inlined: bool = False
    source: str = "build-log"

    @property
    def half_layers(self) -> int:
        return sum(1 for layer in self.layers if HALF in layer.input_types + layer.output_types)

    def to_json(self) -> dict:
        return {
            "source": self.source,
            "plugin_imported": self.plugin_imported,
            "function_inlined": self.function_inlined,
            "layers": [asdict(layer) for layer in self.layers],
            "protected_layers": self.protected_layers,
            "half_layers": self.half_layers,
            "violations": self.violations,
        }


def check_precisions(layers: Sequence[LayerInfo], model: onnx.ModelProto, protected: ProtectedNodes) -> tuple[list[str], list[str]]:
    """(names of layers holding protected nodes, violations: protected layers computing in Half)."""
    casts = _casts(model)
    nodes = {node.name: node for node in model.graph.node}
    cast_input = {name: nodes[name].input[0] for name in casts}
    # tensor produced by a Cast to FP32 -> the tensor it converts
    upcast_source = {
        nodes[name].output[0]: nodes[name].input[0] for name, c in casts.items() if c.to == TensorProto.FLOAT
    }

    def guarded_inputs(names: Sequence[str]) -> set[str]:
        return {tensor for name in names if name in nodes for tensor in nodes[name].input}

    protected_layers, violations = [], []
    for layer in layers:
        members = set(layer.onnx_nodes)
        guarded = sorted(members & protected.names)
        if not guarded:
            continue
        protected_layers.append(layer.name)
        # The recipe's Cast to FP32 fused into the layer: either at its entrance, or inside it right in
        # front of a protected node (Myelin also fuses the Half data movement -- Pad/Slice/Concat of the
        # 3x3 unfold -- or an unprotected Half op ahead of the Cast into the same kernel).
        # Myelin also merges identical Casts of one tensor, so the member Cast may be the twin of the
        # one the protected node reads: compare what they convert, not their names.
        upcast_sources = {upcast_source[name] for name in guarded_inputs(guarded) if name in upcast_source}
        entry_upcast = any(
            c.to == TensorProto.FLOAT
            and (c.producer not in members or set(c.consumers) & set(guarded) or cast_input[name] in upcast_sources)
            for name in members
            if (c := casts.get(name)) is not None
        )
        exit_downcast = any(
            c.to == TensorProto.FLOAT16 and (c.feeds_graph_output or not set(c.consumers) <= members)
            for name in members
            if (c := casts.get(name)) is not None
        )
        reasons = []
        if HALF in layer.input_types and not entry_upcast:
            reasons.append("reads Half")
        if HALF in layer.output_types and not exit_downcast:
            reasons.append("writes Half")
        if reasons:
            violations.append(f"layer {layer.name} ({layer.layer_type}) {' and '.join(reasons)} but holds protected node(s) {', '.join(guarded)}")
    return protected_layers, violations


def report_from_build_log(messages: Sequence[str], model: onnx.ModelProto, protected: ProtectedNodes | None) -> PrecisionReport:
    layers = layers_from_build_log(messages)
    report = PrecisionReport(
        layers=layers,
        plugin_imported=any(PLUGIN_IMPORTED in m for m in messages),
        function_inlined=any(FUNCTION_INLINED in m for m in messages),
    )
    if protected is not None:
        report.protected_layers, report.violations = check_precisions(layers, model, protected)
    return report
