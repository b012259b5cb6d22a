"""FP16 as an ONNX recipe, made before the TensorRT build.

TensorRT 11 and TensorRT-RTX are strongly typed: a layer runs in the type its ONNX tensors have, so
mixed precision is decided here, once, and the same FP16 ONNX serves every version. The layers that
must stay FP32 (with explicit Casts around them) are found by walking the graph:

- the correspondence node `mclrt::CorrespondenceSoftmax` (and any call of a model-local function):
  softmax over M of 100 * cos similarity; in FP16 the logits' rounding (~0.05 at 100) reshuffles which
  exemplar pixel wins, and converters do not rewrite function bodies anyway, so callers must feed FP32;
- native normalizations (InstanceNormalization, LayerNormalization, GroupNormalization, LpNormalization);
- softmax and every reduction (ReduceMean/Sum/L2/...), i.e. means, variances and norms;
- the decomposed normalization chains around those reductions -- CoCosNet's positional norm
  (x - mean) / sqrt(var + eps) and L2-normalize x / (||x|| + eps): every node that computes only from
  reduction results (eps, Sqrt, Reciprocal, ...), every node that combines such a statistic with
  the full tensor (the centering Sub, the normalizing Div/Mul), and the elementwise producers that feed
  a reduction (the square in a variance, the Exp in a hand-written softmax). (x - mean)^2 overflows
  FP16 once |x - mean| > 256, and eps = 1e-5 is below FP16's smallest normal number.

Tools: ModelOpt AutoCast when `modelopt` is importable (the `[quant]` extra; written against its
documented `modelopt.onnx.autocast.convert_to_mixed_precision`, never run here), otherwise
onnxconverter-common's `convert_float_to_float16` with the protected nodes in `node_block_list` and
keep_io_types=True. onnxconverter-common leaves model-local function bodies untouched (so they stay
FP32); `check_fp16_model` verifies that, and that every protected node reads and writes FP32.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Collection, Mapping

import numpy as np
import onnx
from onnx import TensorProto

CORRESPONDENCE_DOMAIN = "mclrt"
NORMALIZATION_OPS = frozenset(
    {"InstanceNormalization", "LayerNormalization", "GroupNormalization", "LpNormalization", "MeanVarianceNormalization", "RMSNormalization"}
)
SOFTMAX_OPS = frozenset({"Softmax", "LogSoftmax"})
REDUCTION_OPS = frozenset(
    {"ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceProd", "ReduceMax", "ReduceMin"}
)
# Elementwise ops through which a statistic (a reduction's result) stays a statistic: eps, sqrt, 1/x ...
STATISTIC_OPS = frozenset(
    {"Add", "Sub", "Mul", "Div", "Sqrt", "Reciprocal", "Pow", "Max", "Min", "Clip", "Abs", "Exp", "Log", "Neg", "Unsqueeze", "Squeeze", "Expand", "Reshape", "Identity", "Cast"}
)
# Ops that put a statistic back onto the full tensor: the centering and the normalizing step.
COMBINE_OPS = frozenset({"Add", "Sub", "Mul", "Div"})
_FLOAT_TYPES = frozenset({TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16})
# Elementwise producers of a reduction's input whose result can overflow FP16 (x^2, exp(x)).
FEEDER_OPS = frozenset({"Pow", "Mul", "Exp", "Abs", "Sub"})


@dataclass(frozen=True)
class ProtectedNodes:
    """Node name -> why it stays FP32."""

    reasons: Mapping[str, str]

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.reasons)

    def __contains__(self, name: str) -> bool:
        return name in self.reasons


def name_unnamed_nodes(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy in which every node has a unique name: block lists and layer logs refer to nodes by name."""
    named = onnx.ModelProto()
    named.CopyFrom(model)
    taken = {node.name for node in named.graph.node if node.name}
    for index, node in enumerate(named.graph.node):
        if not node.name:
            candidate = f"{node.op_type}_{index}"
            while candidate in taken:
                candidate += "_"
            node.name = candidate
            taken.add(candidate)
    return named


def _constant_tensors(graph: onnx.GraphProto) -> set[str]:
    constants = {init.name for init in graph.initializer}
    constants |= {out for node in graph.node if node.op_type == "Constant" for out in node.output}
    return constants


def find_protected_nodes(model: onnx.ModelProto) -> ProtectedNodes:
    """The nodes of `model.graph` (named; see name_unnamed_nodes) that FP16 conversion must keep FP32."""
    graph = model.graph
    local_functions = {(f.domain, f.name) for f in model.functions}
    # Constants and integer tensors (shapes, axes) do not make a value depend on the data.
    types = _tensor_types(model)
    fixed = _constant_tensors(graph) | {name for name, kind in types.items() if kind not in _FLOAT_TYPES}
    producer = {out: node for node in graph.node for out in node.output}
    reasons: dict[str, str] = {}

    def protect(node: onnx.NodeProto, why: str) -> None:
        reasons.setdefault(node.name, why)

    # 1. By op type.
    for node in graph.node:
        if node.domain == CORRESPONDENCE_DOMAIN or (node.domain, node.op_type) in local_functions:
            protect(node, "correspondence (custom node / model-local function)")
        elif node.op_type in NORMALIZATION_OPS:
            protect(node, "normalization")
        elif node.op_type in SOFTMAX_OPS:
            protect(node, "softmax")
        elif node.op_type in REDUCTION_OPS:
            protect(node, "reduction (mean / variance / norm)")

    # 2. Statistics: reduction results and everything computed from them alone. Nodes are in
    #    topological order in a valid ONNX graph, so one pass propagates through whole chains.
    statistics: set[str] = set()
    for node in graph.node:
        if node.op_type in REDUCTION_OPS:
            statistics.update(node.output)
            continue
        variable_inputs = [name for name in node.input if name and name not in fixed]
        stat_inputs = [name for name in variable_inputs if name in statistics]
        if not stat_inputs:
            continue
        if node.op_type in STATISTIC_OPS and len(stat_inputs) == len(variable_inputs):
            protect(node, "statistic (computed from a reduction)")
            statistics.update(node.output)
        elif node.op_type in COMBINE_OPS:
            protect(node, "normalization step (tensor combined with a statistic)")

    # 3. Producers of a reduction's input: the square of a variance, the exp of a softmax.
    for node in graph.node:
        if node.op_type not in REDUCTION_OPS or not node.input:
            continue
        feeder = producer.get(node.input[0])
        while feeder is not None and feeder.op_type in FEEDER_OPS and feeder.name not in reasons:
            if feeder.op_type == "Mul" and feeder.input[0] != feeder.input[1]:
                break  # a product of two different tensors is not a square
            protect(feeder, "feeds a reduction (square / exp)")
            if feeder.op_type == "Sub":
                break  # the centering step: its inputs are the tensor and its mean
            feeder = producer.get(feeder.input[0])
    return ProtectedNodes(reasons)


@dataclass(frozen=True)
class Fp16Tool:
    name: str  # "modelopt-autocast" or "onnxconverter-common"
    version: str


def available_tool() -> Fp16Tool:
    """ModelOpt AutoCast if installed (the [quant] extra), else onnxconverter-common (the [fp16] extra)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        import modelopt.onnx.autocast  # noqa: F401  (the [quant] extra; never installed in the dev venv)
    except ImportError:
        pass
    else:
        return Fp16Tool("modelopt-autocast", version("nvidia-modelopt"))
    try:
        return Fp16Tool("onnxconverter-common", version("onnxconverter-common"))
    except PackageNotFoundError:
        from mclrt.runtime.errors import UserError

        raise UserError("FP16 needs onnxconverter-common (pip install 'mclrt[fp16]') or ModelOpt (mclrt[quant])") from None


def convert_to_fp16(model: onnx.ModelProto, keep_fp32: Collection[str], tool: Fp16Tool) -> onnx.ModelProto:
    """Mixed precision: every node FP16 except `keep_fp32` (node names); graph I/O stays FP32."""
    if tool.name == "modelopt-autocast":
        return _convert_with_autocast(model, keep_fp32)
    from onnxconverter_common import float16

    converted = float16.convert_float_to_float16(
        model,
        keep_io_types=True,  # the contract's inputs and outputs are float32
        node_block_list=sorted(keep_fp32),
        # the converter's own list: ops it knows have no FP16 kernels or mis-convert (Resize, Range, ...)
        op_block_list=list(float16.DEFAULT_OP_BLOCK_LIST),
    )
    return _restore_float_outputs(model, converted)


def _restore_float_outputs(original: onnx.ModelProto, converted: onnx.ModelProto) -> onnx.ModelProto:
    """Fix-up for onnxconverter-common: when a blocked (FP32) node writes a graph output, it appends a
    Cast to FP16 and retypes the output as FP16, despite keep_io_types. The FP32 result is right
    there: the Cast becomes an Identity, and any consumer inside the graph gets its own FP16 Cast."""
    wanted = {o.name: o.type.tensor_type.elem_type for o in original.graph.output}
    graph = converted.graph
    for output in graph.output:
        if wanted.get(output.name) != TensorProto.FLOAT or output.type.tensor_type.elem_type != TensorProto.FLOAT16:
            continue
        producer = next(n for n in graph.node if output.name in n.output)
        to = next((a.i for a in producer.attribute if a.name == "to"), None)
        if producer.op_type == "Cast" and to == TensorProto.FLOAT16:
            producer.op_type = "Identity"
            del producer.attribute[:]
        else:
            half = output.name + "/fp16"
            producer.output[list(producer.output).index(output.name)] = half
            graph.node.append(onnx.helper.make_node("Cast", [half], [output.name], name=output.name + "/to_fp32", to=TensorProto.FLOAT))
        readers = [n for n in graph.node if output.name in n.input]
        if readers:
            half_copy = output.name + "/as_fp16"
            graph.node.append(onnx.helper.make_node("Cast", [output.name], [half_copy], name=half_copy, to=TensorProto.FLOAT16))
            for reader in readers:
                reader.input[:] = [half_copy if name == output.name else name for name in reader.input]
        output.type.tensor_type.elem_type = TensorProto.FLOAT
    _sort_topologically(graph)
    return converted


def _sort_topologically(graph: onnx.GraphProto) -> None:
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(name in available for name in n.input)]
        if not ready:
            raise ValueError("graph has a cycle or a dangling input after the FP16 conversion")
        for node in ready:
            ordered.append(node)
            available.update(node.output)
        pending = [n for n in pending if all(n is not r for r in ready)]
    del graph.node[:]
    graph.node.extend(ordered)


def _convert_with_autocast(model: onnx.ModelProto, keep_fp32: Collection[str]) -> onnx.ModelProto:
    """ModelOpt AutoCast, per its documented API (unverified here: ModelOpt is not installed in the dev venv)."""
    import tempfile
    from pathlib import Path

    from modelopt.onnx.autocast import convert_to_mixed_precision

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fp32.onnx"
        onnx.save(model, path)
        return convert_to_mixed_precision(
            onnx_path=str(path),
            low_precision_type="fp16",
            nodes_to_exclude=[f"^{re.escape(name)}$" for name in sorted(keep_fp32)],  # patterns; anchored = exact names
            op_types_to_exclude=sorted(NORMALIZATION_OPS | SOFTMAX_OPS | REDUCTION_OPS),
            keep_io_types=True,
        )


@dataclass
class Fp16Check:
    """What check_fp16_model found; `problems` empty means the recipe held."""

    problems: list[str] = field(default_factory=list)
    fp16_nodes: int = 0
    fp32_nodes: int = 0


def _tensor_types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {}
    for value in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        types[value.name] = value.type.tensor_type.elem_type
    for init in inferred.graph.initializer:
        types[init.name] = init.data_type
    return types


def check_fp16_model(original: onnx.ModelProto, converted: onnx.ModelProto, protected: ProtectedNodes) -> Fp16Check:
    """The converted model is valid, its function bodies are untouched, and protected nodes are FP32."""
    result = Fp16Check()
    try:
        onnx.checker.check_model(converted, full_check=True)
    except onnx.checker.ValidationError as err:
        result.problems.append(f"onnx.checker: {err}")
        return result
    if [f.SerializeToString() for f in original.functions] != [f.SerializeToString() for f in converted.functions]:
        result.problems.append("a model-local function body was changed by the FP16 conversion")
    before = {v.name: v.type.tensor_type.elem_type for v in list(original.graph.input) + list(original.graph.output)}
    for value in list(converted.graph.input) + list(converted.graph.output):
        if before.get(value.name) != value.type.tensor_type.elem_type:
            result.problems.append(f"graph input/output {value.name} changed type (the contract keeps it float32)")
    types = _tensor_types(converted)
    present = {node.name for node in converted.graph.node}
    for name in sorted(protected.names - present):
        result.problems.append(f"protected node {name} disappeared in the conversion")
    for node in converted.graph.node:
        tensors = [t for t in list(node.input) + list(node.output) if t]
        kinds = {types.get(t) for t in tensors}
        if TensorProto.FLOAT16 in kinds:
            result.fp16_nodes += 1
        elif node.op_type != "Cast":
            result.fp32_nodes += 1
        if node.name in protected and TensorProto.FLOAT16 in kinds:
            half = [t for t in tensors if types.get(t) == TensorProto.FLOAT16]
            result.problems.append(f"protected node {node.name} ({protected.reasons[node.name]}) touches FP16 tensors {half}")
    return result


def max_abs_errors(reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Per output: max |candidate - reference| (inf if anything is not finite)."""
    errors = {}
    for name, ref in reference.items():
        got = np.asarray(candidate[name], np.float64)
        errors[name] = float(np.abs(got - np.asarray(ref, np.float64)).max()) if np.isfinite(got).all() else float("inf")
    return errors


@dataclass(frozen=True)
class Fp16Result:
    tool: Fp16Tool
    protected: ProtectedNodes
    check: Fp16Check
    max_abs_error: dict[str, float]  # per output, FP16 ONNX vs FP32 ONNX on ONNX Runtime's CPU provider
    # What the converter warned about, one message each (onnxconverter-common warns once per weight it
    # clamps into FP16's range: ~110 lines for the demo model). Kept for the build log, summarised on screen.
    conversion_warnings: tuple[str, ...] = ()

    def conversion_summary(self) -> str | None:
        """One line for the terminal, e.g. "onnxconverter-common clamped 58 float32 constant(s) to ±1e-07 (too small for FP16)"."""
        return summarize_conversion_warnings(self.tool.name, self.conversion_warnings)


_TRUNCATED = re.compile(r"the float32 number (\S+) will be truncated to (\S+)")


def summarize_conversion_warnings(tool: str, messages: Collection[str]) -> str | None:
    if not messages:
        return None
    clamped = Counter()
    other = 0
    for message in messages:
        match = _TRUNCATED.search(message)
        if match:
            clamped[match.group(2).lstrip("-")] += 1
        else:
            other += 1
    parts = [f"clamped {count} float32 constant(s) to ±{target}" for target, count in sorted(clamped.items())]
    if other:
        parts.append(f"{other} other warning(s)")
    return f"{tool} {', '.join(parts)} (too small for FP16)"


def make_fp16_onnx(
    source: onnx.ModelProto,
    feed: Mapping[str, np.ndarray] | None,
    tool: Fp16Tool | None = None,
    keep_fp32: Collection[str] | None = None,
) -> tuple[onnx.ModelProto, Fp16Result]:
    """The FP16 recipe for one graph: find the protected nodes, convert, verify, compare on ORT's CPU provider.

    `keep_fp32` overrides the protected set (tests use it to show that the build-time check catches
    a recipe that protects too little); the check always uses the full protected set. With `feed`,
    both models run on ONNX Runtime and the max abs error per output is reported.
    """
    tool = tool or available_tool()
    model = name_unnamed_nodes(source)
    protected = find_protected_nodes(model)
    # Record the converter's warnings instead of letting ~110 of them scroll past: the builder writes
    # them to the build log and prints one summary line.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        converted = convert_to_fp16(model, protected.names if keep_fp32 is None else keep_fp32, tool)
    check = check_fp16_model(model, converted, protected)
    errors = {} if feed is None else max_abs_errors(_run_cpu(model, feed), _run_cpu(converted, feed))
    return converted, Fp16Result(tool, protected, check, errors, tuple(str(w.message) for w in caught))


def _run_cpu(model: onnx.ModelProto, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    from mclrt.runtime.runners import CPU_EP, OnnxRuntimeRunner, OrtOptions

    with OnnxRuntimeRunner(model.SerializeToString(), OrtOptions(providers=(CPU_EP,)), name=model.graph.name) as runner:
        return runner.infer(feed)
