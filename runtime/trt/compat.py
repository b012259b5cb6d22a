"""Every difference between the TensorRT versions mclrt builds with, in one table.

Flavours: enterprise `tensorrt` (10.3 on JetPack 6, later 10.x, 11.x; 8.5+ still parses) and
TensorRT-RTX (`tensorrt_rtx` / `tensorrt_rtx_bindings`, which also builds on a CPU-only machine).
`capabilities(flavour, version)` turns a version into a frozen `Capabilities` row; the builder and
the runner ask that row instead of testing versions themselves. The API calls that differ between
versions live in the small functions at the bottom of this file, each behind the row's gate, so an
API that a version removed is never reached on that version.

| what                                  | ent. 8.5-9.x | ent. 10.0-10.x      | ent. 11.x          | RTX 1.x              |
|---------------------------------------|--------------|---------------------|--------------------|----------------------|
| module                                | tensorrt     | tensorrt            | tensorrt           | tensorrt_rtx(_bindings) |
| EXPLICIT_BATCH network flag           | needed       | removed             | removed            | removed              |
| FP16/INT8 builder flags, per-layer    | yes          | yes (weak typing)   | removed            | never                |
|   precision, OBEY_PRECISION_CONSTRAINTS|             |                     |                    |                      |
| strongly typed network                | no           | opt-in flag         | always             | always               |
| IInt8Calibrator (implicit INT8)       | never used   | deprecated 10.1; never used | removed    | never                |
| Python IPluginV3 + CreatorV3One       | no           | yes                 | yes                | yes (the only kind)  |
| plugin layer enters through           | -            | parser, add_plugin_v3 | parser, add_plugin_v3 | parser only     |
| registered plugin beats local function| no           | >= 10.7             | yes                | with plugin_namespace|
| plugin namespace from node domain     | no           | >= 10.10            | yes                | yes                  |
| QDP ahead-of-time plugin (no Python)  | no           | >= 10.9             | yes                | never                |
| timing cache                          | yes          | yes                 | yes                | no-op (skipped)      |
| targets                               | this GPU; hardware-compatibility level | same | same  | set_compute_capability (CPU builds) |
| DLA                                   | yes          | <= 10.7             | >= 11.4.1 (AGX Orin)| never               |
| workspace                             | set_memory_pool_limit (max_workspace_size removed in 10; we need >= 8.4 anyway) ||||
| build                                 | build_serialized_network (build_engine removed in 10) ||||
| I/O                                   | named tensors, execute_async_v3 (binding indices removed in 10; need >= 8.5) ||||

mclrt requires enterprise >= 8.5 (named tensors), so max_workspace_size, build_engine and binding
indices are never needed and never called; the rows are recorded for readers and for the check in
`check_supported`.
"""

from __future__ import annotations

import enum
import importlib
import sys
import re
from dataclasses import dataclass
from types import ModuleType
from typing import Iterable, Sequence

from mclrt.runtime.errors import UserError

Version = tuple[int, ...]


class Flavour(str, enum.Enum):
    ENTERPRISE = "tensorrt"
    RTX = "tensorrt-rtx"


# Import names per flavour, in the order tried. The RTX sdist re-exports the bindings as `tensorrt_rtx`.
MODULE_NAMES: dict[Flavour, tuple[str, ...]] = {
    Flavour.ENTERPRISE: ("tensorrt",),
    Flavour.RTX: ("tensorrt_rtx", "tensorrt_rtx_bindings"),
}

MINIMUM_VERSION: dict[Flavour, Version] = {Flavour.ENTERPRISE: (8, 5), Flavour.RTX: (1, 0)}

# Compute capabilities an RTX build targets when asked for `--target auto` on a machine without a
# GPU (AOT build on the CPU): Ampere, Ada and Blackwell. Not Turing (sm75): TensorRT-RTX 1.7 refuses
# FP32 GEMMs there ("Cannot compile operation ... for Turing (SM75): FP32 GEMM is not supported"),
# and the correspondence is an FP32 GEMM by design. Filtered against the installed bindings' enum.
DEFAULT_RTX_TARGETS: tuple[str, ...] = ("sm80", "sm86", "sm89", "sm120")


@dataclass(frozen=True)
class Capabilities:
    """What one TensorRT flavour and version can do; every version question is answered here."""

    flavour: Flavour
    version: Version
    # Network creation.
    explicit_batch_flag: bool  # EXPLICIT_BATCH must be passed (< 10); the flag is gone in 10
    strongly_typed_opt_in: bool  # STRONGLY_TYPED exists and is optional (10.x)
    always_strongly_typed: bool  # precision comes from the ONNX only (11.x, RTX)
    native_instancenorm_flag: bool  # parser flag: INormalizationLayer instead of the InstanceNorm plugin
    # Precision.
    weak_typing: bool  # BuilderFlag.FP16/INT8, OBEY_PRECISION_CONSTRAINTS, ILayer.precision (< 11)
    implicit_int8_calibrator: bool  # always False: mclrt quantizes explicitly (Q/DQ); see module doc
    # Plugins.
    python_plugin_v3: bool  # IPluginV3 + IPluginCreatorV3One written in Python
    plugin_via_add_plugin_v3: bool  # INetworkDefinition.add_plugin_v3 (enterprise); RTX: parser only
    plugin_overrides_local_function: bool  # parser maps a function-backed node to a registered plugin
    plugin_namespace_from_domain: bool  # parser falls back to the node's domain as the namespace
    qdp_aot: bool  # tensorrt.plugin ahead-of-time implementation (kernel in the plan, no Python)
    # Build.
    workspace_via_memory_pool_limit: bool
    build_serialized_network: bool
    timing_cache: bool  # False on RTX: the API exists but does nothing
    compute_capability_targets: bool  # IBuilderConfig.set_compute_capability (RTX)
    hardware_compatibility_levels: bool  # IBuilderConfig.hardware_compatibility_level (enterprise)
    dla: bool  # the builder can place layers on a DLA core (if the board has one)
    # Runtime.
    named_tensors: bool  # set_input_shape / set_tensor_address / execute_async_v3
    engine_validity_check: bool  # IRuntime.get_engine_validity (RTX)

    @property
    def label(self) -> str:
        return f"{self.flavour.value} {'.'.join(map(str, self.version))}"

    @property
    def strongly_typed_available(self) -> bool:
        return self.always_strongly_typed or self.strongly_typed_opt_in


def capabilities(flavour: Flavour, version: Sequence[int]) -> Capabilities:
    """The table row for one flavour and version (version as a tuple of ints, e.g. (10, 3))."""
    v = tuple(int(x) for x in version)
    if flavour is Flavour.RTX:
        return Capabilities(
            flavour=flavour,
            version=v,
            explicit_batch_flag=False,
            strongly_typed_opt_in=False,
            always_strongly_typed=True,
            native_instancenorm_flag=True,
            weak_typing=False,
            implicit_int8_calibrator=False,
            python_plugin_v3=True,
            plugin_via_add_plugin_v3=False,
            plugin_overrides_local_function=True,
            plugin_namespace_from_domain=True,
            qdp_aot=False,
            workspace_via_memory_pool_limit=True,
            build_serialized_network=True,
            timing_cache=False,
            compute_capability_targets=True,
            hardware_compatibility_levels=False,
            dla=False,
            named_tensors=True,
            engine_validity_check=True,
        )
    return Capabilities(
        flavour=flavour,
        version=v,
        explicit_batch_flag=v < (10,),
        strongly_typed_opt_in=(10,) <= v < (11,),
        always_strongly_typed=v >= (11,),
        native_instancenorm_flag=v >= (8, 6),
        weak_typing=v < (11,),
        implicit_int8_calibrator=False,
        python_plugin_v3=v >= (10,),
        plugin_via_add_plugin_v3=v >= (10,),
        plugin_overrides_local_function=v >= (10, 7),
        plugin_namespace_from_domain=v >= (10, 10),
        qdp_aot=v >= (10, 9),
        workspace_via_memory_pool_limit=v >= (8, 4),
        build_serialized_network=v >= (8,),
        timing_cache=True,
        compute_capability_targets=False,
        hardware_compatibility_levels=v >= (8, 6),
        dla=v < (10, 8) or v >= (11, 4, 1),
        named_tensors=v >= (8, 5),
        engine_validity_check=False,
    )


def check_supported(caps: Capabilities) -> None:
    """mclrt's builder and runner use only the modern API; older versions are refused up front."""
    minimum = MINIMUM_VERSION[caps.flavour]
    if caps.version < minimum or not (caps.named_tensors and caps.workspace_via_memory_pool_limit and caps.build_serialized_network):
        raise UserError(f"{caps.label} is too old: mclrt needs {caps.flavour.value} >= {'.'.join(map(str, minimum))}")


def parse_version(text: str) -> Version:
    """'10.3.0.26' -> (10, 3, 0, 26); trailing non-numeric parts (e.g. 'post1', 'rc') are dropped."""
    parts = []
    for piece in text.split("."):
        match = re.match(r"\d+", piece)
        if not match:
            break
        parts.append(int(match.group()))
    return tuple(parts)


@dataclass(frozen=True)
class Installed:
    """The TensorRT this process can import: its module, flavour, version and table row."""

    module: ModuleType
    module_name: str
    caps: Capabilities

    @property
    def flavour(self) -> Flavour:
        return self.caps.flavour

    @property
    def version(self) -> Version:
        return self.caps.version


def detect(prefer: Iterable[Flavour] = (Flavour.ENTERPRISE, Flavour.RTX)) -> Installed | None:
    """Import the first TensorRT flavour available here (enterprise first: it runs Jetson and servers)."""
    for flavour in prefer:
        for name in MODULE_NAMES[flavour]:
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue
            version = getattr(module, "__version__", None)
            if version is None:  # a namespace or stub package without the bindings
                continue
            return Installed(module, name, capabilities(flavour, parse_version(version)))
    return None


def require(prefer: Iterable[Flavour] = (Flavour.ENTERPRISE, Flavour.RTX)) -> Installed:
    """detect(), or a UserError saying what to install."""
    installed = detect(prefer)
    if installed is None:
        raise UserError(
            "TensorRT is not installed: install NVIDIA TensorRT (`pip install tensorrt`, or JetPack's) for GPU engines, "
            "or TensorRT-RTX (`pip install mclrt[trt-check]`) to build on any machine"
        )
    check_supported(installed.caps)
    return installed


def polygraphy_trt(installed: Installed) -> ModuleType:
    """Polygraphy's TensorRT backend (`polygraphy.backend.trt`: TrtRunner, the builder loaders) on the
    flavour mclrt found. Polygraphy picks `tensorrt` or `tensorrt_rtx` once, from its config, when that
    module is first imported; mclrt sets the config first, so both import the same module (and plugin
    registry). A process that already imported it for the other flavour gets a UserError, not a mix.
    """
    from polygraphy import config

    wants_rtx = installed.flavour is Flavour.RTX
    loaded = sys.modules.get("polygraphy.backend.trt")
    if loaded is None:
        config.USE_TENSORRT_RTX = wants_rtx
        return importlib.import_module("polygraphy.backend.trt")
    if config.USE_TENSORRT_RTX != wants_rtx:
        raise UserError(
            f"Polygraphy's TensorRT backend was already loaded for {'TensorRT-RTX' if config.USE_TENSORRT_RTX else 'TensorRT'}, "
            f"this process uses {installed.caps.label}"
        )
    return loaded


# --- the version-gated calls -------------------------------------------------------------------------
# Each function below is the only place its API is used. `trt` is the imported module of the flavour.


def network_flags(trt: ModuleType, caps: Capabilities, strongly_typed: bool) -> int:
    """Creation flags for builder.create_network()."""
    flags = 0
    if caps.explicit_batch_flag:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if strongly_typed and caps.strongly_typed_opt_in:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    # 11.x and RTX: always strongly typed; the flag is deprecated there and ignored, so not passed.
    return flags


def configure_parser(trt: ModuleType, caps: Capabilities, parser) -> None:
    if caps.native_instancenorm_flag:
        # InstanceNormalization as TensorRT's own normalization layer: no dependency on the
        # libnvinfer_plugin InstanceNorm plugin, and required for hardware-compatible engines.
        parser.set_flag(trt.OnnxParserFlag.NATIVE_INSTANCENORM)


def set_workspace(trt: ModuleType, caps: Capabilities, config, workspace_bytes: int) -> None:
    if caps.workspace_via_memory_pool_limit:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_bytes))


def set_weak_typing_precision(trt: ModuleType, caps: Capabilities, config, network, precision: str, protected_layers: set[str]) -> int:
    """TensorRT <= 10.x without strong typing: precision flags, FP32 pinned on the protected layers.

    Returns how many layers were pinned. Never called on 11.x or RTX (no such flags there).
    """
    if not caps.weak_typing:
        raise ValueError(f"{caps.label} has no weak typing; the precision must come from the ONNX")
    pinned = 0
    if precision == "int8":
        # Explicit quantization: the Q/DQ nodes in the ONNX carry the scales; no calibrator.
        config.set_flag(trt.BuilderFlag.INT8)
        return pinned
    config.set_flag(trt.BuilderFlag.FP16)
    config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        if layer.name in protected_layers:
            layer.precision = trt.float32
            for out in range(layer.num_outputs):
                if layer.get_output_type(out) in (trt.float32, trt.float16):
                    layer.set_output_type(out, trt.float32)
            pinned += 1
    return pinned


def normalize_compute_capability(text: str) -> str:
    """One spelling of a compute capability for every command: 'sm86', 'SM86', '8.6' and '86' -> 'sm86'.

    `mclrt engine build --target` and `mclrt check --target` both read targets through here; the
    other values --target takes ('auto', 'current', 'ampere-plus') pass through lowercased.
    """
    value = text.strip().lower()
    if value.startswith("sm"):
        value = value[2:]
    if "." in value:
        major, _, minor = value.partition(".")
        value = major + minor if major.isdigit() and minor.isdigit() and len(minor) == 1 else value
    if value.isdigit() and len(value) in (2, 3):
        return f"sm{value}"
    return text.strip().lower()


def compute_capability_names(trt: ModuleType, caps: Capabilities) -> list[str]:
    """Targets the installed RTX bindings can build for, e.g. ['sm75', 'sm80', ...]."""
    if not caps.compute_capability_targets:
        return []
    return [name.lower() for name in trt.ComputeCapability.__members__ if name.startswith("SM")]


def set_targets(trt: ModuleType, caps: Capabilities, config, targets: Sequence[str]) -> None:
    """RTX: one plan for several compute capabilities (works without a GPU); 'current' = this GPU."""
    if not caps.compute_capability_targets:
        raise ValueError(f"{caps.label} builds for the GPU it runs on; compute-capability targets are RTX only")
    config.num_compute_capabilities = len(targets)
    for index, target in enumerate(targets):
        config.set_compute_capability(getattr(trt.ComputeCapability, target.upper()), index)


def set_hardware_compatibility(trt: ModuleType, caps: Capabilities, config, level: str) -> None:
    """Enterprise: 'ampere-plus' makes one plan run on every Ampere-or-newer GPU (fewer tactics)."""
    if not caps.hardware_compatibility_levels:
        raise ValueError(f"{caps.label} has no hardware-compatibility levels")
    levels = {"ampere-plus": trt.HardwareCompatibilityLevel.AMPERE_PLUS}
    config.hardware_compatibility_level = levels[level]


def set_dla(trt: ModuleType, caps: Capabilities, config, core: int, network=None, gpu_layer_names: Iterable[str] = ()) -> int:
    """DLA by default with GPU fallback; layers named after `gpu_layer_names` stay on the GPU. Returns how many."""
    if not caps.dla:
        raise ValueError(f"{caps.label} has no DLA support")
    config.default_device_type = trt.DeviceType.DLA
    config.DLA_core = int(core)
    # The correspondence (a 4096-wide softmax) exceeds DLA limits: those layers must fall back to the GPU.
    config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    # ... and never one of its pieces (the scale Mul would fit) on the DLA, with a DLA<->GPU copy either side.
    names = tuple(gpu_layer_names)
    pinned = 0
    for index in range(network.num_layers if network is not None and names else 0):
        layer = network.get_layer(index)
        if any(layer.name == name or layer.name.startswith((f"{name}/", f"{name}_")) for name in names):
            config.set_device_type(layer, trt.DeviceType.GPU)
            pinned += 1
    return pinned


def load_timing_cache(caps: Capabilities, config, blob: bytes | None):
    """Attach a timing cache (from `blob`, or a fresh one). Returns it, or None where it is a no-op (RTX)."""
    if not caps.timing_cache:
        return None
    cache = config.create_timing_cache(blob or b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    return cache


def build_plan(caps: Capabilities, builder, network, config):
    """The serialized plan (IHostMemory) or None when the builder failed (its log says why)."""
    if not caps.build_serialized_network:
        raise ValueError(f"{caps.label}: build_serialized_network is missing")
    return builder.build_serialized_network(network, config)
