"""Which layers a DLA build put on the DLA and which fell back to the GPU, from the builder's log.

With a DLA core set (`--dla-core N`, GPU fallback on), TensorRT's builder logs the placement at INFO:

    ---------- Layers Running on DLA ----------
    [DlaLayer] {ForeignNode[node_Conv_1055...node_leaky_relu_3]}
    ---------- Layers Running on GPU ----------
    [GpuLayer] SHAPE: node_Shape_0

(TensorRT 8.x-10.x; one DLA "ForeignNode" per DLA subgraph, named by its first and last layer; trtexec
prefixes each line with `[date] [I] [TRT] `) and, at WARNING, why a layer left the DLA:

    Layer 'node_pad' (PADDING): Unsupported on DLA. Switching this layer's device type to GPU.
    DLA supports only 16 subgraphs per DLA core. Switching to GPU for layer node_conv2d_40

(older releases: "Default DLA is enabled but layer X is not supported on DLA, falling back to GPU.").
A TensorRT maintainer: "DLA layer information is in the verbose log" (NVIDIA/TensorRT #3143); the engine
inspector shows a DLA subgraph only as one opaque ForeignNode. Tested on a recorded log
(tests/fixtures/trt_logs/); never produced by a DLA build in this project (no Jetson here).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Iterable

import onnx

_PREFIX = re.compile(r"^\[(?!DlaLayer\]|GpuLayer\])[^\]]*\]\s*")  # trtexec's "[date] [I] [TRT] "
_DLA_HEADER = re.compile(r"-+ Layers [Rr]unning on DLA")
_GPU_HEADER = re.compile(r"-+ Layers [Rr]unning on GPU")
_FOREIGN = re.compile(r"\{ForeignNode\[(.*?)\]\}")
_GPU_LAYER = re.compile(r"^\[GpuLayer\] (?:(?P<type>[A-Z0-9_]+): )?(?P<name>.+)$")
_UNSUPPORTED = re.compile(r"^Layer '(?P<name>.+?)' \((?P<type>\w+)\): (?P<reason>.+?)\. Switching this layer's device type to GPU\.?$")
_SUBGRAPH_LIMIT = re.compile(r"^(?P<reason>DLA supports only \d+ subgraphs per DLA core)\. Switching to GPU for layer (?P<name>.+?)\.?$")
_OLD_FALLBACK = re.compile(r"^Default DLA is enabled but layer (?P<name>.+?) is not (?:supported|running) on DLA, falling back to GPU\.?$")


@dataclass(frozen=True)
class DlaSubgraph:
    first: str
    last: str  # == first for a one-layer subgraph

    @classmethod
    def parse(cls, text: str) -> "DlaSubgraph":
        first, sep, last = text.partition("...")
        return cls(first.strip(), (last if sep else first).strip())


@dataclass(frozen=True)
class GpuLayer:
    layer_type: str  # SHUFFLE, SOFTMAX, ... ("" when the log gives none)
    name: str


@dataclass
class DlaPlacement:
    dla_subgraphs: list[DlaSubgraph] = field(default_factory=list)
    gpu_layers: list[GpuLayer] = field(default_factory=list)
    fallback_reasons: dict[str, str] = field(default_factory=dict)  # layer -> why it left the DLA
    correspondence_gpu_layers: list[str] = field(default_factory=list)
    correspondence_on_dla: list[str] = field(default_factory=list)  # DLA subgraphs that start or end in it: must stay empty

    @property
    def found(self) -> bool:
        return bool(self.dla_subgraphs or self.gpu_layers)

    def summary(self) -> str:
        if not self.found:
            return "no DLA placement in the build log"
        reasons: dict[str, int] = {}
        for reason in self.fallback_reasons.values():
            reasons[reason] = reasons.get(reason, 0) + 1
        top = ", ".join(f"{count}x {reason}" for reason, count in sorted(reasons.items(), key=lambda item: -item[1])[:3])
        corr = "correspondence on the GPU" if self.correspondence_gpu_layers and not self.correspondence_on_dla else (
            "correspondence on the DLA" if self.correspondence_on_dla else "no correspondence layers")
        return f"{len(self.dla_subgraphs)} DLA subgraphs, {len(self.gpu_layers)} layers on the GPU ({corr})" + (f"; fell back: {top}" if top else "")

    def to_json(self) -> dict:
        document = asdict(self)
        document["summary"] = self.summary()
        return document


def correspondence_names(model: onnx.ModelProto, op_type: str = "CorrespondenceSoftmax") -> set[str]:
    """The node's own name plus its function body's node names (the layers the parser makes when it inlines it)."""
    names = {node.name for node in model.graph.node if node.op_type == op_type}
    for function in model.functions:
        if function.name == op_type:
            names |= {node.name for node in function.node}
    return names


def _lines(messages: Iterable[str]) -> Iterable[str]:
    for message in messages:
        for line in message.splitlines():
            line = line.strip()
            while (stripped := _PREFIX.sub("", line, count=1)) != line:
                line = stripped
            yield line


def placement_from_build_log(messages: Iterable[str], correspondence: set[str] = frozenset()) -> DlaPlacement:
    placement = DlaPlacement()
    section = None
    for line in _lines(messages):
        if _DLA_HEADER.search(line):
            section = "dla"
            continue
        if _GPU_HEADER.search(line):
            section = "gpu"
            continue
        for pattern in (_UNSUPPORTED, _SUBGRAPH_LIMIT, _OLD_FALLBACK):
            match = pattern.match(line)
            if match:
                reason = match.groupdict().get("reason") or "not supported on DLA"
                placement.fallback_reasons[match.group("name")] = reason
                break
        if section == "dla" and line.startswith("[DlaLayer]"):
            placement.dla_subgraphs += [DlaSubgraph.parse(text) for text in _FOREIGN.findall(line)]
        elif section == "gpu" and line.startswith("[GpuLayer]"):
            match = _GPU_LAYER.match(line)
            if match:
                placement.gpu_layers.append(GpuLayer(match.group("type") or "", match.group("name").strip()))
        elif section is not None and line and not line.startswith("["):
            section = None  # the block ended
    if correspondence:
        def touches(name: str) -> bool:
            return any(part.strip() in correspondence or part.strip().startswith(tuple(f"{c}{sep}" for c in correspondence for sep in "/_")) for part in re.split(r" \+ |, ", name))

        placement.correspondence_gpu_layers = [layer.name for layer in placement.gpu_layers if touches(layer.name)]
        placement.correspondence_on_dla = [f"{s.first}...{s.last}" for s in placement.dla_subgraphs if touches(s.first) or touches(s.last)]
    return placement
