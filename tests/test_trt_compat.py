"""The TensorRT version table: which API each version gets, proven two ways.

1. The builder's real network/config code runs against a *recording fake* TensorRT module for
   versions that cannot be installed here (9.x, 10.3, 10.9, 11.0, 11.4.1, and RTX for comparison).
   The fake stands in for those TensorRT releases only; the code under test -- builder.ParsedNetwork,
   builder.SerializedPlan, compat's gated calls -- is the real code. The record shows which APIs each
   version is asked for.
2. A static scan (ast) of the sources: APIs removed in TensorRT 10/11 appear nowhere, and every
   version-dependent API in runtime/trt sits in compat.py inside a branch gated by the table.
"""

from __future__ import annotations

import ast
import enum
from pathlib import Path

import onnx
import pytest

from mclrt.runtime.errors import UserError
from mclrt.runtime.trt import builder, compat
from mclrt.runtime.trt.device import CudaInfo, GpuInfo
from mclrt.runtime.trt.logger import BuildLog
from model_dir_fixtures import TinySpec
from normalized_models import build_translator

REPO = Path(__file__).resolve().parents[1]

# Removed in TensorRT 10 or 11: never used anywhere in the project.
REMOVED_APIS = {
    "max_workspace_size",
    "build_engine",
    "get_binding_index",
    "get_binding_name",
    "get_binding_shape",
    "get_binding_dtype",
    "binding_is_input",
    "execute_async_v2",
    "IInt8Calibrator",
    "IInt8EntropyCalibrator2",
    "IInt8MinMaxCalibrator",
    "IInt8LegacyCalibrator",
    "int8_calibrator",
    "platform_has_fast_fp16",
    "max_batch_size",
}
# Exist only in some versions: allowed in runtime/trt only inside compat.py's gated functions.
GATED_APIS = {
    "EXPLICIT_BATCH",
    "STRONGLY_TYPED",
    "FP16",
    "INT8",
    "OBEY_PRECISION_CONSTRAINTS",
    "set_output_type",
    "set_compute_capability",
    "num_compute_capabilities",
    "hardware_compatibility_level",
    "HardwareCompatibilityLevel",
    "create_timing_cache",
    "set_timing_cache",
    "DLA_core",
    "default_device_type",
    "GPU_FALLBACK",
    "NATIVE_INSTANCENORM",
    "set_memory_pool_limit",
    "build_serialized_network",
}


# --- 1. the recording fake ------------------------------------------------------------------------


class Recorder:
    """Any attribute, call or assignment on it is appended to a shared log as a dotted path."""

    def __init__(self, log: list[str], path: str):
        object.__setattr__(self, "_log", log)
        object.__setattr__(self, "_path", path)

    def __getattr__(self, name: str) -> "Recorder":
        path = f"{self._path}.{name}"
        self._log.append(path)
        return Recorder(self._log, path)

    def __setattr__(self, name: str, value) -> None:
        self._log.append(f"{self._path}.{name}=")

    def __call__(self, *args, **kwargs) -> "Recorder":
        path = f"{self._path}()"
        self._log.append(path)
        return Recorder(self._log, path)

    def __int__(self) -> int:
        return 1

    def __index__(self) -> int:
        return 0  # e.g. network.num_inputs: no inputs to profile

    def __bytes__(self) -> bytes:
        return b"fake plan"

    def __iter__(self):
        return iter(())


class _Severity(enum.IntEnum):
    INTERNAL_ERROR = 0
    ERROR = 1
    WARNING = 2
    INFO = 3
    VERBOSE = 4


class _FakeILogger:
    Severity = _Severity

    def __init__(self):
        pass


class _ComputeCapability(enum.Enum):  # what TensorRT-RTX 1.7's enum offers, minus NONE/CURRENT
    SM75 = 75
    SM80 = 80
    SM86 = 86
    SM89 = 89
    SM120 = 120


class FakeTensorRT(Recorder):
    """A TensorRT module of some version: records every API the builder asks of it."""

    ILogger = _FakeILogger
    ComputeCapability = _ComputeCapability

    def __init__(self):
        super().__init__([], "trt")

    @property
    def calls(self) -> list[str]:
        return self._log


def _run_builder(version, flavour=compat.Flavour.ENTERPRISE, precision="fp16", dla_core=None, workspace_mb=256, tmp_path=None):
    trt = FakeTensorRT()
    installed = compat.Installed(trt, "tensorrt", compat.capabilities(flavour, version))
    gpu = CudaInfo("12.6", "12.6", (GpuInfo(0, "Fake GPU", (8, 7), 1 << 34),), None, None, None)
    batch = builder.BatchProfile(2, 2, 2) if dla_core is not None else builder.BatchProfile()
    target = "sm86" if flavour is compat.Flavour.RTX else "auto"
    options = builder.BuildOptions(precision=precision, plugin="off", batch=batch, workspace_mb=workspace_mb, target=target, dla_core=dla_core)
    resolved = builder.resolve(options, installed, gpu)
    model = build_translator(TinySpec())
    network = builder.ParsedNetwork(resolved, model, Path("translator.onnx"), BuildLog())
    plan = builder.SerializedPlan(resolved, network, None, tmp_path / "timing.cache")()
    assert plan == b"fake plan"
    return trt.calls, resolved


def _used(calls: list[str], name: str) -> bool:
    return any(part == name or part.startswith(name + "(") or part == name + "=" for call in calls for part in call.split("."))


VERSIONS = [(9, 0), (10, 3), (10, 9), (11, 0), (11, 4, 1)]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_enterprise_versions_get_only_their_apis(version, precision, tmp_path):
    calls, resolved = _run_builder(version, precision=precision, tmp_path=tmp_path)
    for removed in REMOVED_APIS:
        assert not _used(calls, removed), f"{version}: removed API {removed} reached"
    assert _used(calls, "EXPLICIT_BATCH") == (version < (10,))
    weak_fp16 = precision == "fp16" and version < (10,)
    assert _used(calls, "FP16") == weak_fp16
    assert _used(calls, "OBEY_PRECISION_CONSTRAINTS") == weak_fp16
    assert _used(calls, "INT8") == (precision == "int8" and version < (11,))
    # Strong typing is opt-in on 10.x (used unless INT8 needs the weak-typing flag) and implicit on 11.x.
    assert _used(calls, "STRONGLY_TYPED") == ((10,) <= version < (11,) and precision != "int8")
    assert resolved.strongly_typed == (version >= (11,) or ((10,) <= version and precision != "int8"))
    assert _used(calls, "create_timing_cache") and _used(calls, "set_timing_cache")
    assert _used(calls, "set_memory_pool_limit")
    assert _used(calls, "build_serialized_network")
    assert not _used(calls, "set_compute_capability")
    assert _used(calls, "NATIVE_INSTANCENORM")


def test_rtx_gets_compute_capabilities_and_no_timing_cache(tmp_path):
    calls, resolved = _run_builder((1, 7), flavour=compat.Flavour.RTX, tmp_path=tmp_path)
    assert _used(calls, "set_compute_capability") and _used(calls, "num_compute_capabilities")
    assert resolved.targets == ("sm86",)
    for name in ("create_timing_cache", "set_timing_cache", "FP16", "INT8", "STRONGLY_TYPED", "EXPLICIT_BATCH", "hardware_compatibility_level"):
        assert not _used(calls, name), name
    for removed in REMOVED_APIS:
        assert not _used(calls, removed)


def test_dla_only_where_the_table_allows_it(tmp_path):
    calls, resolved = _run_builder((10, 3), precision="fp16", dla_core=0, tmp_path=tmp_path)
    assert resolved.weak_typing  # DLA on 10.x: precision flags + FP32 pins, no strong typing
    for name in ("DLA_core", "default_device_type", "GPU_FALLBACK", "FP16", "OBEY_PRECISION_CONSTRAINTS"):
        assert _used(calls, name), name
    assert not _used(calls, "STRONGLY_TYPED")
    for version in ((10, 9), (11, 0)):
        with pytest.raises(UserError, match="no DLA"):
            _run_builder(version, precision="fp16", dla_core=0, tmp_path=tmp_path)
    # 11.4.1 brings DLA back (AGX Orin), strongly typed: no precision flags.
    calls, resolved = _run_builder((11, 4, 1), precision="fp16", dla_core=0, tmp_path=tmp_path)
    assert _used(calls, "DLA_core") and not _used(calls, "FP16") and not resolved.weak_typing


def test_weak_typing_pins_protected_layers_to_fp32():
    """TensorRT <= 10.x weak typing: FP16 flag, OBEY_PRECISION_CONSTRAINTS, FP32 on protected layers only."""
    trt = FakeTensorRT()
    trt_float32, trt_float16 = "float32", "float16"
    object.__setattr__(trt, "float32", trt_float32)
    object.__setattr__(trt, "float16", trt_float16)

    class Layer:
        def __init__(self, name):
            self.name, self.num_outputs, self.precision, self.outputs = name, 1, None, {}

        def get_output_type(self, index):
            return trt_float16

        def set_output_type(self, index, kind):
            self.outputs[index] = kind

    class Network:
        layers = [Layer("translator/in0"), Layer("translator/conv0")]
        num_layers = 2

        def get_layer(self, index):
            return self.layers[index]

    network = Network()
    caps = compat.capabilities(compat.Flavour.ENTERPRISE, (9, 0))
    pinned = compat.set_weak_typing_precision(trt, caps, trt.config, network, "fp16", {"translator/in0"})
    assert pinned == 1
    assert network.layers[0].precision == "float32" and network.layers[0].outputs == {0: "float32"}
    assert network.layers[1].precision is None and network.layers[1].outputs == {}
    assert _used(trt.calls, "FP16") and _used(trt.calls, "OBEY_PRECISION_CONSTRAINTS")
    with pytest.raises(ValueError, match="no weak typing"):
        compat.set_weak_typing_precision(trt, compat.capabilities(compat.Flavour.ENTERPRISE, (11, 0)), trt.config, network, "fp16", set())


def test_capability_rows():
    row = compat.capabilities
    e, r = compat.Flavour.ENTERPRISE, compat.Flavour.RTX
    jetpack6 = row(e, (10, 3))
    assert jetpack6.weak_typing and jetpack6.strongly_typed_opt_in and not jetpack6.always_strongly_typed
    assert jetpack6.python_plugin_v3 and not jetpack6.plugin_overrides_local_function and not jetpack6.qdp_aot and jetpack6.dla
    assert row(e, (10, 9)).qdp_aot and not row(e, (10, 9)).plugin_namespace_from_domain and row(e, (10, 10)).plugin_namespace_from_domain
    assert not row(e, (10, 8)).dla and not row(e, (11, 3)).dla and row(e, (11, 4, 1)).dla
    eleven = row(e, (11, 0))
    assert eleven.always_strongly_typed and not eleven.weak_typing and not eleven.explicit_batch_flag and eleven.timing_cache
    rtx = row(r, (1, 7, 1, 116))
    assert rtx.always_strongly_typed and rtx.compute_capability_targets and not rtx.timing_cache
    assert not rtx.plugin_via_add_plugin_v3 and not rtx.qdp_aot and not rtx.dla
    assert not any(row(f, v).implicit_int8_calibrator for f, v in ((e, (8, 6)), (e, (10, 3)), (e, (11, 0)), (r, (1, 7))))
    assert compat.parse_version("10.3.0.26") == (10, 3, 0, 26) and compat.parse_version("11.1.0.post1") == (11, 1, 0)
    with pytest.raises(UserError, match="too old"):
        compat.check_supported(row(e, (8, 4)))


def test_plugin_mode_follows_the_table():
    e = compat.Flavour.ENTERPRISE
    no_gpu = CudaInfo(None, None, (), "no CUDA device", None, None)
    gpu = CudaInfo("12.6", "12.6", (GpuInfo(0, "Fake GPU", (8, 7), 1 << 34),), None, None, None)
    # JetPack 6 (10.3): the parser always inlines a function-backed node, so auto = inline and on = error.
    assert builder.choose_plugin_impl("auto", compat.capabilities(e, (10, 3)), gpu) == builder.IMPL_INLINE
    with pytest.raises(UserError, match="cannot map"):
        builder.choose_plugin_impl("on", compat.capabilities(e, (10, 3)), gpu)
    # A CPU-only RTX build: nothing could run the plugin here, so auto inlines; on is still allowed.
    rtx = compat.capabilities(compat.Flavour.RTX, (1, 7))
    assert builder.choose_plugin_impl("auto", rtx, no_gpu) == builder.IMPL_INLINE
    assert builder.choose_plugin_impl("on", rtx, no_gpu) == builder.IMPL_PYTHON
    assert builder.choose_plugin_impl("off", rtx, gpu) == builder.IMPL_INLINE


# --- 2. the static scan -----------------------------------------------------------------------------


def _attribute_uses(path: Path) -> list[tuple[str, ast.Attribute]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [(node.attr, node) for node in ast.walk(tree) if isinstance(node, ast.Attribute)]


def _mentions_caps(test: ast.AST) -> bool:
    return any(isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "caps" for n in ast.walk(test))


def _gated_nodes(tree: ast.AST) -> set[int]:
    """ids of nodes inside an `if <caps...>:` body, or inside a function that starts by leaving
    (`if not caps.X: raise ...` / `return`) when its row lacks the feature."""
    gated: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _mentions_caps(node.test):
            for child in node.body:
                gated.update(id(n) for n in ast.walk(child))
        if isinstance(node, ast.FunctionDef):
            guards = [s for s in node.body[:3] if isinstance(s, ast.If) and _mentions_caps(s.test) and any(isinstance(b, (ast.Raise, ast.Return)) for b in s.body)]
            if guards:
                gated.update(id(n) for n in ast.walk(node))
    return gated


def test_removed_apis_appear_nowhere():
    for folder in ("runtime", "calibration", "export", "tools"):
        for path in sorted((REPO / folder).rglob("*.py")):
            used = {name for name, _ in _attribute_uses(path)} & REMOVED_APIS
            assert not used, f"{path.relative_to(REPO)} uses removed TensorRT APIs {sorted(used)}"


def test_version_dependent_apis_only_behind_compat_gates():
    compat_path = REPO / "runtime" / "trt" / "compat.py"
    for path in sorted((REPO / "runtime" / "trt").glob("*.py")):
        if path == compat_path:
            continue
        used = {name for name, _ in _attribute_uses(path)} & GATED_APIS
        assert not used, f"{path.name} uses version-dependent APIs {sorted(used)} outside compat.py"
    tree = ast.parse(compat_path.read_text())
    gated = _gated_nodes(tree)
    ungated = [(node.attr, node.lineno) for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr in GATED_APIS and id(node) not in gated]
    assert not ungated, f"compat.py reaches version-dependent APIs outside a gate: {ungated}"
    # The scan itself has teeth: the same check flags a gated API used without a gate.
    bad = ast.parse("def f(trt, caps, config):\n    config.set_flag(trt.BuilderFlag.FP16)\n")
    assert any(isinstance(n, ast.Attribute) and n.attr == "FP16" and id(n) not in _gated_nodes(bad) for n in ast.walk(bad))
