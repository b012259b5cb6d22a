"""Build one TensorRT plan per graph of a model directory: `mclrt engine build`.

The path from ONNX to plan is a chain of small loaders, in Polygraphy's spirit, each producing its
artifact when called:

    BuildOnnx(graph)      -> the ONNX the builder reads (the model's own, or the FP16 recipe's output)
    ParsedNetwork(onnx)   -> builder + network, parsed with the plugin registered or not
    SerializedPlan(net)   -> plan bytes, with the builder's log (layer precisions, plugin import)

`build_engines` strings them together per graph, consults the engine cache first, checks the
realized layer precisions of FP16 builds, and writes `<graph>.plan` + sidecar + `<graph>.layers.json`
into `<out>/<precision>-<plugin implementation>/`.

Plugin modes: `on` registers the CorrespondenceSoftmax plugin so the parser maps the node to it
(through `plugin_namespace`); `off` does not, so the parser inlines the node's ONNX function; `auto`
is `on` only where a runnable implementation exists for this TensorRT: the QDP AOT plugin on
enterprise >= 10.9, or the Python plugin + Triton where a GPU is present; else the function is
inlined (TensorRT 10.3 / JetPack 6, and any CPU-only build).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import onnx

from mclrt.runtime.errors import UserError
from mclrt.runtime.fsutil import atomic_write_bytes
from mclrt.runtime.model_dir import ModelDir
from mclrt.runtime.trt import build_memory, cache, compat, dla_report, fp16, layer_report, plugin, registration
from mclrt.runtime.trt.device import CudaInfo
from mclrt.runtime.trt.logger import BuildLog, shared_logger

PRECISIONS = ("fp32", "fp16", "int8")
PLUGIN_MODES = ("auto", "on", "off")
GRAPHS = ("exemplar_encoder", "translator")
# Which model-directory precision each build precision starts from.
SOURCE_PRECISION = {"fp32": ("fp32",), "fp16": ("fp32", "fp16"), "int8": ("int8-trt",)}

# Plugin implementations (also the suffix of the output folder).
IMPL_NONE, IMPL_INLINE, IMPL_PYTHON, IMPL_AOT = "none", "inline", "python", "qdp-aot"
_FOLDER = {IMPL_INLINE: "inline", IMPL_PYTHON: "plugin", IMPL_AOT: "aot"}


@dataclass(frozen=True)
class BatchProfile:
    """The one dynamic dimension: the batch, min <= opt <= max."""

    min: int = 1
    opt: int = 1
    max: int = 4

    @classmethod
    def parse(cls, text: str) -> "BatchProfile":
        """'1:4:8' -> (1, 4, 8); '2' -> (2, 2, 2)."""
        parts = text.split(":")
        if len(parts) not in (1, 3) or not all(p.strip().isdigit() for p in parts):
            raise UserError(f"--batch {text!r}: expected MIN:OPT:MAX (e.g. 1:1:4) or one number")
        values = [int(p) for p in parts] * (3 if len(parts) == 1 else 1)
        profile = cls(*values)
        if not 1 <= profile.min <= profile.opt <= profile.max:
            raise UserError(f"--batch {text!r}: need 1 <= MIN <= OPT <= MAX")
        return profile

    def as_tuple(self) -> tuple[int, int, int]:
        return (self.min, self.opt, self.max)


@dataclass(frozen=True)
class BuildOptions:
    """What `mclrt engine build` was asked for."""

    precision: str = "fp32"
    plugin: str = "auto"
    batch: BatchProfile = BatchProfile()
    workspace_mb: int | None = None
    target: str = "auto"
    dla_core: int | None = None
    rebuild: bool = False  # build even when the cache has an up-to-date plan
    no_build: bool = False  # only accept up-to-date cached plans
    verbose: bool = False
    skip_memory_check: bool = False  # build even where RAM + swap look too small (Jetson)


@dataclass(frozen=True)
class ResolvedBuild:
    """BuildOptions decided against the TensorRT and GPU at hand."""

    installed: compat.Installed
    device: CudaInfo
    precision: str
    plugin_impl: str  # for graphs holding the correspondence node
    targets: tuple[str, ...]
    strongly_typed: bool
    weak_typing: bool  # enterprise <= 10.x precision flags (+ FP32 pins on protected layers)
    batch: BatchProfile
    workspace_bytes: int | None
    dla_core: int | None

    @property
    def caps(self) -> compat.Capabilities:
        return self.installed.caps


def _triton_available() -> bool:
    return importlib.util.find_spec("triton") is not None


def _qdp_available() -> bool:
    if importlib.util.find_spec("mclrt.runtime.trt.qdp_aot") is None:
        return False
    from mclrt.runtime.trt import qdp_aot

    return qdp_aot.qdp_available()


def choose_plugin_impl(
    mode: str, caps: compat.Capabilities, device: CudaInfo, targets: tuple[str, ...] = (), qdp: bool | None = None
) -> str:
    """inline / python / qdp-aot for the correspondence node (see the module docstring).

    `qdp`: whether the AOT plugin can be built here (None: ask qdp_aot). Never AOT for a
    hardware-compatible plan (`--target ampere-plus`): Triton compiles the AOT kernel for the build
    GPU's exact architecture (sm_90a on Hopper, which runs nowhere else), so such a plan would fail
    on the other GPUs it promises to run on."""
    if mode not in PLUGIN_MODES:
        raise UserError(f"--plugin {mode!r}: expected one of {', '.join(PLUGIN_MODES)}")
    if mode == "off":
        return IMPL_INLINE
    plugin_possible = caps.python_plugin_v3 and caps.plugin_overrides_local_function
    aot = caps.qdp_aot and (_qdp_available() if qdp is None else qdp) and "ampere-plus" not in targets
    if mode == "on":
        if not plugin_possible:
            raise UserError(
                f"--plugin on: {caps.label} cannot map the function-backed CorrespondenceSoftmax node to a plugin "
                "(needs enterprise TensorRT >= 10.7 or TensorRT-RTX); use --plugin off or auto"
            )
        if "ampere-plus" in targets:
            raise UserError(
                "--plugin on with --target ampere-plus: the plugin's kernel is compiled for the build GPU's architecture "
                "only, so the plan would not run on the other GPUs; use --plugin off (or auto) for a hardware-compatible plan"
            )
        return IMPL_AOT if aot else IMPL_PYTHON
    if aot:
        return IMPL_AOT
    if "ampere-plus" in targets:
        return IMPL_INLINE
    if plugin_possible and device.has_device and _triton_available():
        return IMPL_PYTHON
    return IMPL_INLINE


def resolve_targets(target: str, trt, caps: compat.Capabilities, device: CudaInfo) -> tuple[str, ...]:
    if caps.compute_capability_targets:
        available = compat.compute_capability_names(trt, caps)
        if target.strip().lower() == "auto":
            if device.has_device:
                return ("current",)
            # No GPU: an ahead-of-time build for the usual RTX generations.
            return tuple(t for t in compat.DEFAULT_RTX_TARGETS if t in available)
        wanted = tuple(compat.normalize_compute_capability(t) for t in target.split(",") if t.strip())
        unknown = [t for t in wanted if t not in available and t != "current"]
        if unknown or not wanted:
            raise UserError(f"--target {target!r}: {caps.label} builds for {', '.join(available)} (or 'current' on a GPU)")
        if "current" in wanted and not device.has_device:
            raise UserError("--target current needs a GPU; name the compute capabilities instead (e.g. sm86,sm89)")
        return wanted
    # Enterprise TensorRT builds for the GPU it runs on.
    if target == "auto":
        return ("current",)
    if target == "ampere-plus":
        if not caps.hardware_compatibility_levels:
            raise UserError(f"--target ampere-plus: {caps.label} has no hardware-compatibility levels")
        return ("ampere-plus",)
    wanted = tuple(compat.normalize_compute_capability(t) for t in target.split(",") if t.strip())
    here = device.gpus[0].sm if device.gpus else None
    if wanted != (here,):
        raise UserError(
            f"--target {target!r}: {caps.label} builds for the GPU it runs on ({here or 'none here'}); "
            "build on the target GPU, or use --target ampere-plus for one plan across Ampere and newer"
        )
    return ("current",)


def resolve(options: BuildOptions, installed: compat.Installed, device: CudaInfo) -> ResolvedBuild:
    caps = installed.caps
    if options.precision not in PRECISIONS:
        raise UserError(f"--precision {options.precision!r}: expected one of {', '.join(PRECISIONS)}")
    if options.workspace_mb is not None and options.workspace_mb <= 0:
        raise UserError(f"--workspace {options.workspace_mb}: must be a positive number of MiB")
    if options.dla_core is not None:
        # What the user can fix first, then what this TensorRT cannot do.
        if options.dla_core < 0:
            raise UserError(f"--dla-core {options.dla_core}: a DLA core is numbered 0 or 1")
        if options.precision == "fp32":
            raise UserError("--dla-core: DLA runs FP16 or INT8 only (--precision fp16 or int8)")
        if options.batch.min != options.batch.max:
            raise UserError("--dla-core: DLA needs a static batch (--batch N)")
        if not caps.dla:
            raise UserError(f"--dla-core: {caps.label} has no DLA (TensorRT <= 10.7, or >= 11.4.1 on AGX Orin); build on a Jetson with JetPack 6")
    # Strong typing wherever it exists, so one FP16 ONNX means the same thing on 10.x, 11.x and RTX.
    # Weak typing only where nothing else works: FP16 before 10.0 or on DLA, and INT8 on <= 10.x,
    # whose Q/DQ graphs still need the INT8 flag.
    targets = resolve_targets(options.target, installed.module, caps, device)
    weak = caps.weak_typing and (
        (options.precision == "fp16" and (not caps.strongly_typed_available or options.dla_core is not None))
        or options.precision == "int8"
    )
    return ResolvedBuild(
        installed=installed,
        device=device,
        precision=options.precision,
        plugin_impl=choose_plugin_impl(options.plugin, caps, device, targets),
        targets=targets,
        strongly_typed=caps.always_strongly_typed or (caps.strongly_typed_opt_in and not weak),
        weak_typing=weak,
        batch=options.batch,
        workspace_bytes=None if options.workspace_mb is None else options.workspace_mb * (1 << 20),
        dla_core=options.dla_core,
    )


def variant_dir(out: Path, resolved: ResolvedBuild) -> Path:
    return Path(out) / f"{resolved.precision}-{_FOLDER[resolved.plugin_impl]}"


def default_out_dir(model: ModelDir) -> Path:
    """Where plans of a model live when --out is not given: the engine cache."""
    manifest_digest = hashlib.sha256((model.path / "mclrt.json").read_bytes()).hexdigest()[:12]
    return cache.cache_root() / "engines" / f"{model.path.resolve().name}-{manifest_digest}"


# --- loaders ---------------------------------------------------------------------------------------


def has_correspondence(model: onnx.ModelProto) -> bool:
    return any(n.domain == plugin.PLUGIN_NAMESPACE and n.op_type == plugin.PLUGIN_NAME for n in model.graph.node)


def mark_aot(model: onnx.ModelProto) -> onnx.ModelProto:
    """Add `aot=1` to the correspondence node: the parser then picks the QDP's AOT implementation."""
    from mclrt.runtime.trt import qdp_aot

    marked = onnx.ModelProto()
    marked.CopyFrom(model)
    for node in marked.graph.node:
        if node.domain == plugin.PLUGIN_NAMESPACE and node.op_type == plugin.PLUGIN_NAME:
            node.attribute.append(onnx.helper.make_attribute(qdp_aot.AOT_NODE_ATTRIBUTE, 1))
    return marked


@dataclass
class BuildOnnx:
    """Loader: the ONNX the builder reads for one graph, and what the FP16 recipe did to it."""

    model: ModelDir
    graph: str
    resolved: ResolvedBuild
    feed: dict[str, np.ndarray] | None = None  # ORT comparison input for the FP16 recipe

    def source(self) -> onnx.ModelProto:
        return onnx.load(str(self.model.graph_path(self.graph)))

    @property
    def applies_fp16_recipe(self) -> bool:
        """FP16 from an FP32 export on a strongly typed build: the ONNX recipe decides precision."""
        return self.resolved.precision == "fp16" and self.model.manifest.precision == "fp32" and not self.resolved.weak_typing

    def recipe_name(self) -> str:
        if self.applies_fp16_recipe:
            tool = fp16.available_tool()
            return f"{tool.name} {tool.version}; recipe {files_sha256(Path(fp16.__file__))[:16]}"
        if self.resolved.precision == "fp16" and self.resolved.weak_typing:
            return "builder-flags+fp32-pins"
        return "as-exported"

    def __call__(self) -> tuple[onnx.ModelProto, fp16.Fp16Result | None, fp16.ProtectedNodes | None]:
        model = fp16.name_unnamed_nodes(self.source())
        result = protected = None
        if self.resolved.precision == "fp16":
            protected = fp16.find_protected_nodes(model)
            if self.applies_fp16_recipe:
                model, result = fp16.make_fp16_onnx(model, self.feed)
                if result.check.problems:
                    raise UserError("FP16 recipe failed: " + "; ".join(result.check.problems), self.model.graph_path(self.graph))
        if self.resolved.plugin_impl == IMPL_AOT and has_correspondence(model):
            model = mark_aot(model)
        return model, result, protected


@dataclass
class ParsedNetwork:
    """Loader: builder + network from ONNX bytes, with the plugin registered exactly when wanted."""

    resolved: ResolvedBuild
    onnx_model: onnx.ModelProto
    onnx_path: Path  # for messages
    log: BuildLog

    def __call__(self):
        trt, caps = self.resolved.installed.module, self.resolved.caps
        impl = self.resolved.plugin_impl if has_correspondence(self.onnx_model) else IMPL_NONE
        if impl != IMPL_NONE:
            # One registration decision per build; inline means nothing registered, even after an
            # earlier plugin build in this process (refused where TensorRT cannot undo it: a QDP).
            registration.use(trt, {IMPL_PYTHON: registration.PYTHON, IMPL_AOT: registration.AOT}.get(impl, registration.NONE))
        builder = trt.Builder(shared_logger(trt))
        network = builder.create_network(compat.network_flags(trt, caps, self.resolved.strongly_typed))
        parser = trt.OnnxParser(network, shared_logger(trt))
        compat.configure_parser(trt, caps, parser)
        if not parser.parse(self.onnx_model.SerializeToString()):
            errors = [parser.get_error(i).desc() for i in range(parser.num_errors)]
            raise UserError("TensorRT could not parse it: " + " | ".join(errors or self.log.errors[-3:]), self.onnx_path)
        # Read the network, not the log: a plugin layer is there or it is not, whatever a version logs.
        imported = plugin_layer_count(trt, network) > 0
        if impl in (IMPL_PYTHON, IMPL_AOT) and not imported:
            raise UserError(
                f"the parser did not map {plugin.IDENTITY.describe()} to the plugin (it inlined the function); "
                f"is plugin_namespace='{plugin.PLUGIN_NAMESPACE}' set on the node?",
                self.onnx_path,
            )
        if impl == IMPL_INLINE and imported:
            raise RuntimeError("plugin imported although it was not registered")  # a bug, not user input
        return builder, network, parser  # the parser must outlive the network's weights


def plugin_layer_count(trt, network) -> int:
    return sum(1 for i in range(network.num_layers) if network.get_layer(i).type == trt.LayerType.PLUGIN_V3)


@dataclass
class SerializedPlan:
    """Loader: plan bytes from a parsed network and the resolved settings."""

    resolved: ResolvedBuild
    network_loader: ParsedNetwork
    protected: fp16.ProtectedNodes | None
    timing_cache: Path | None

    def __call__(self) -> bytes:
        trt, caps, r = self.resolved.installed.module, self.resolved.caps, self.resolved
        builder, network, _parser = self.network_loader()
        config = builder.create_builder_config()
        # DETAILED: the builder logs each layer's tensors, types and source ONNX nodes (the precision check).
        config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
        if r.workspace_bytes is not None:
            compat.set_workspace(trt, caps, config, r.workspace_bytes)
        if caps.compute_capability_targets:
            compat.set_targets(trt, caps, config, r.targets)
        elif r.targets == ("ampere-plus",):
            compat.set_hardware_compatibility(trt, caps, config, "ampere-plus")
        if r.dla_core is not None:
            if r.dla_core >= int(builder.num_DLA_cores):
                raise UserError(f"--dla-core {r.dla_core}: this machine has {int(builder.num_DLA_cores)} DLA core(s) (Orin Nano and Thor have none)")
            keep_on_gpu = dla_report.correspondence_names(self.network_loader.onnx_model)
            compat.set_dla(trt, caps, config, r.dla_core, network, keep_on_gpu)
        if r.weak_typing:
            pins = _protected_layer_names(network, self.protected)
            compat.set_weak_typing_precision(trt, caps, config, network, r.precision, pins)
        config.add_optimization_profile(_batch_profile(builder, network, r.batch))
        blob = self.timing_cache.read_bytes() if self.timing_cache and self.timing_cache.is_file() else None
        timing = compat.load_timing_cache(caps, config, blob)
        plan = compat.build_plan(caps, builder, network, config)
        if plan is None:
            raise UserError("TensorRT failed to build the plan: " + " | ".join(self.network_loader.log.errors[-3:] or ["see --verbose"]), self.network_loader.onnx_path)
        if timing is not None and self.timing_cache is not None:
            atomic_write_bytes(self.timing_cache, bytes(timing.serialize()), overwrite=True)
        return bytes(plan)


def _batch_profile(builder, network, batch: BatchProfile):
    profile = builder.create_optimization_profile()
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        shape = list(tensor.shape)
        if shape and shape[0] == -1:
            rest = shape[1:]
            profile.set_shape(tensor.name, [batch.min, *rest], [batch.opt, *rest], [batch.max, *rest])
    return profile


def _protected_layer_names(network, protected: fp16.ProtectedNodes | None) -> set[str]:
    """Network layers made from protected ONNX nodes (the parser names layers after their nodes)."""
    if protected is None:
        return set()
    names = set()
    for index in range(network.num_layers):
        name = network.get_layer(index).name
        if name in protected or any(name.startswith(f"{node}_") for node in protected.names):
            names.add(name)
    return names


# --- one graph, all graphs ------------------------------------------------------------------------------


def files_sha256(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def engine_key(model: ModelDir, graph: str, resolved: ResolvedBuild, recipe: str, impl: str) -> cache.EngineKey:
    device = resolved.device
    gpu = device.gpus[0] if device.gpus else None
    if impl == IMPL_AOT:
        from mclrt.runtime.trt import qdp_aot

        source = files_sha256(*plugin.source_files(), Path(qdp_aot.__file__))
    elif impl == IMPL_PYTHON:
        source = plugin.source_sha256()
    else:
        source = ""
    uses_plugin = impl in (IMPL_PYTHON, IMPL_AOT)
    return cache.EngineKey(
        graph=graph,
        onnx_sha256=model.manifest.graphs[graph].sha256,
        precision=resolved.precision,
        recipe=recipe,
        batch_profile=resolved.batch.as_tuple(),
        workspace_bytes=resolved.workspace_bytes,
        targets=resolved.targets,
        dla_core=resolved.dla_core,
        strongly_typed=resolved.strongly_typed,
        plugin_implementation=impl,
        plugin_name=plugin.IDENTITY.name if uses_plugin else "",
        plugin_namespace=plugin.IDENTITY.namespace if uses_plugin else "",
        plugin_version=plugin.IDENTITY.version if uses_plugin else "",
        plugin_source_sha256=source,
        trt_flavour=resolved.installed.flavour.value,
        trt_version=".".join(map(str, resolved.installed.version)),
        cuda_driver=device.driver_version,
        cuda_runtime=device.runtime_version,
        gpu_name=gpu.name if gpu else None,
        compute_capability=gpu.sm if gpu else None,
        l4t_release=device.l4t_release,
        power_mode=device.power_mode,
    )


@dataclass
class EngineResult:
    graph: str
    plan: Path
    status: str  # "built" | "up to date"
    seconds: float = 0.0
    plan_bytes: int = 0
    report: layer_report.PrecisionReport | None = None
    fp16: fp16.Fp16Result | None = None
    notes: list[str] = field(default_factory=list)
    dla: dla_report.DlaPlacement | None = None  # DLA builds: which layers the DLA runs


def _timing_cache_path(out: Path, resolved: ResolvedBuild) -> Path | None:
    if not resolved.caps.timing_cache:
        return None
    gpu = resolved.device.gpus[0] if resolved.device.gpus else None
    label = f"{resolved.installed.flavour.value}-{'.'.join(map(str, resolved.installed.version))}-{gpu.sm if gpu else 'nogpu'}"
    return Path(out) / f"timing-{re.sub(r'[^A-Za-z0-9_.-]', '_', label)}.cache"


def _recipe_feeds(model: ModelDir, batch: int = 2, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Inputs for the FP16 recipe's ORT comparison: random contract-range inputs, and for the
    translator the FP32 encoder's real keys and values (unit descriptors, as in use)."""
    from mclrt.runtime.inputs.feeds import random_feed
    from mclrt.runtime.runners import CPU_EP, OnnxRuntimeRunner, OrtOptions

    rng = np.random.default_rng(seed)
    encoder_feed = random_feed(model.encoder.inputs, batch, rng)
    with OnnxRuntimeRunner(model.graph_path("exemplar_encoder"), OrtOptions(providers=(CPU_EP,))) as runner:
        encoded = runner.infer(encoder_feed)
    translator_feed = random_feed([t for t in model.translator.inputs if t.name == "condition"], batch, rng)
    translator_feed.update({name: encoded[name] for name in ("exemplar_keys", "exemplar_values")})
    return {"exemplar_encoder": encoder_feed, "translator": translator_feed}


def _check_source_precision(model: ModelDir, precision: str) -> None:
    allowed = SOURCE_PRECISION[precision]
    if model.manifest.precision not in allowed:
        raise UserError(
            f"--precision {precision} needs a model exported as {' or '.join(allowed)}, this one is {model.manifest.precision}"
            + (" (make a Q/DQ model with the calibration step first)" if precision == "int8" else ""),
            model.path / "mclrt.json",
        )


def build_graph(
    model: ModelDir,
    graph: str,
    resolved: ResolvedBuild,
    out: Path,
    options: BuildOptions,
    feed: dict[str, np.ndarray] | None = None,
) -> EngineResult:
    trt = resolved.installed.module
    folder = variant_dir(out, resolved)
    plan_path = folder / f"{graph}.plan"
    onnx_loader = BuildOnnx(model, graph, resolved, feed)
    impl = resolved.plugin_impl if has_correspondence(onnx_loader.source()) else IMPL_NONE
    key = engine_key(model, graph, resolved, onnx_loader.recipe_name(), impl)
    found = cache.lookup(plan_path, key)
    if found.usable and not options.rebuild:
        return EngineResult(graph, plan_path, "up to date", plan_bytes=plan_path.stat().st_size)
    if options.no_build:
        raise UserError(f"no usable plan ({found.reason}) and --no-build was given; run `mclrt engine build` without it", plan_path)
    if not cache.owned_by_cache(plan_path):
        raise UserError("exists and was not written by `mclrt engine build` (no mclrt sidecar); move it away first", plan_path)

    start = time.perf_counter()
    built_onnx, fp16_result, protected = onnx_loader()
    onnx_path = model.graph_path(graph)
    if fp16_result is not None or impl == IMPL_AOT:
        onnx_path = folder / f"{graph}.{resolved.precision}.onnx"
        atomic_write_bytes(onnx_path, built_onnx.SerializeToString(), overwrite=True)
    with shared_logger(trt).recording(verbose=options.verbose) as log:
        network = ParsedNetwork(resolved, built_onnx, onnx_path, log)
        plan_bytes = SerializedPlan(resolved, network, protected, _timing_cache_path(out, resolved))()
    report = _precision_report(resolved, log, built_onnx, protected, plan_bytes)
    report_path = folder / f"{graph}.layers.json"
    document = _report_document(report, fp16_result)
    placement = None
    if resolved.dla_core is not None:
        placement = dla_report.placement_from_build_log(log.messages, dla_report.correspondence_names(built_onnx))
        document["dla"] = placement.to_json()
    atomic_write_bytes(report_path, (json.dumps(document, indent=2) + "\n").encode(), overwrite=True)
    if resolved.precision == "fp16" and report.violations:
        raise UserError(
            f"FP16 build rejected: {len(report.violations)} protected layer(s) computed in Half, e.g. {report.violations[0]} "
            f"(full report: {report_path})",
            onnx_path,
        )
    build_log = _write_build_log(folder / f"{graph}.build.log", log, fp16_result)
    extra = {"graph": graph, "onnx": str(onnx_path), "layer_report": report_path.name, "build_log": build_log.name}
    if impl != IMPL_NONE:
        extra["plugin_registered"] = registration.registered(trt)  # what the registry held for this build
    cache.store(plan_path, plan_bytes, key, extra)
    notes = []
    summary = fp16_result.conversion_summary() if fp16_result is not None else None
    if summary:
        notes.append(f"FP16 conversion: {summary}; each one in {build_log}")
    if report.source == "unavailable":
        notes.append("layer precisions could not be read back (no layer log, no GPU for the inspector)")
    return EngineResult(graph, plan_path, "built", time.perf_counter() - start, len(plan_bytes), report, fp16_result, notes, placement)


def _write_build_log(path: Path, log: BuildLog, fp16_result) -> Path:
    """Everything the build said, beside the plan: the FP16 converter's warnings, then TensorRT's log."""
    lines = []
    if fp16_result is not None:
        lines.append(f"# FP16 conversion ({fp16_result.tool.name} {fp16_result.tool.version}): {len(fp16_result.conversion_warnings)} warning(s)")
        lines += fp16_result.conversion_warnings
    lines.append(f"# TensorRT: {len(log.messages)} message(s), {len(log.errors)} error(s)")
    lines += log.messages
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode("utf-8"), overwrite=True)
    return path


def _precision_report(resolved: ResolvedBuild, log: BuildLog, model, protected, plan_bytes: bytes) -> layer_report.PrecisionReport:
    report = layer_report.report_from_build_log(log.messages, model, protected)
    if report.layers or not resolved.device.has_device:
        if not report.layers:
            report.source = "unavailable"
        return report
    # Enterprise TensorRT logs no `Layers:` block: ask the engine inspector (needs the GPU it has).
    trt = resolved.installed.module
    engine = trt.Runtime(shared_logger(trt)).deserialize_cuda_engine(plan_bytes)
    text = engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON)
    layers = layer_report.layers_from_inspector_json(text)
    inspected = layer_report.PrecisionReport(layers, plugin_imported=report.plugin_imported, function_inlined=report.function_inlined, source="engine-inspector")
    if protected is not None:
        inspected.protected_layers, inspected.violations = layer_report.check_precisions(layers, model, protected)
    return inspected


def _report_document(report: layer_report.PrecisionReport, result: fp16.Fp16Result | None) -> dict:
    document = report.to_json()
    if result is not None:
        document["fp16_recipe"] = {
            "tool": f"{result.tool.name} {result.tool.version}",
            "protected_nodes": dict(result.protected.reasons),
            "fp16_nodes": result.check.fp16_nodes,
            "fp32_nodes": result.check.fp32_nodes,
            "ort_cpu_max_abs_error_vs_fp32": result.max_abs_error,
        }
    return document


def build_engines(
    model: ModelDir,
    options: BuildOptions,
    out: Path | None = None,
    installed: compat.Installed | None = None,
    device: CudaInfo | None = None,
    graphs: tuple[str, ...] = GRAPHS,
    progress: Callable[[str], None] | None = None,
) -> list[EngineResult]:
    """Build (or find up to date in the cache) one plan per graph of `model`."""
    from mclrt.runtime.trt import device as device_module

    installed = installed or compat.require()
    device = device or device_module.probe()
    resolved = resolve(options, installed, device)
    _check_source_precision(model, resolved.precision)
    resolved = build_memory.plan_for_jetson(resolved, model, options)  # workspace cap + RAM/swap check; no-op off a Jetson
    out = Path(out) if out is not None else default_out_dir(model)
    feeds = _recipe_feeds(model) if resolved.precision == "fp16" and model.manifest.precision == "fp32" and not resolved.weak_typing else {}
    if progress:
        targets = ",".join(resolved.targets)
        progress(f"{resolved.precision}, correspondence {resolved.plugin_impl}, {installed.caps.label}, targets {targets} -> {variant_dir(out, resolved)}")
    results = []
    for graph in graphs:
        results.append(build_graph(model, graph, resolved, out, options, feeds.get(graph)))
    return results

