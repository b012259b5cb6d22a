"""The `CorrespondenceSoftmax` TensorRT plugin (namespace "mclrt", version "1"), build side and enqueue.

An IPluginV3 class written in Python with an IPluginCreatorV3One creator: the one plugin form that
TensorRT-RTX's parser accepts and that enterprise TensorRT >= 10 accepts too. The exported
translator carries the node `mclrt::CorrespondenceSoftmax` with `plugin_namespace="mclrt"` beside a
model-local function of the same name; with the creator registered under "mclrt" the parser imports
the node as this plugin, without it the parser inlines the function body.

Register before parsing *and* before deserializing a plan (`register_plugin(trt)`; idempotent).

The build-time methods (output types and shapes, format combinations, configure, serialization)
run under the TensorRT-RTX builder on a CPU-only machine and are tested there. `enqueue` launches
the Triton kernel (`mclrt.runtime.kernels.correspondence_launch.launch`) on TensorRT's stream; it
needs a GPU and has never run here.

The plugin classes subclass the bindings of whichever TensorRT is in use, so they are created by
`plugin_classes(trt)` at run time (one pair per module) instead of at import.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

PLUGIN_NAME = "CorrespondenceSoftmax"
PLUGIN_NAMESPACE = "mclrt"
PLUGIN_VERSION = "1"

# The kernel, its specialization (tiles), its launcher and how it picks cubin or PTX: their source
# decides what the plugin computes (see source_sha256).
KERNEL_MODULES = (
    "mclrt.runtime.kernels.correspondence_triton",
    "mclrt.runtime.kernels.specs",
    "mclrt.runtime.kernels.ptx_isa",
    "mclrt.runtime.kernels.kernel_images",
    "mclrt.runtime.kernels.correspondence_launch",
)


@dataclass(frozen=True)
class PluginIdentity:
    name: str = PLUGIN_NAME
    namespace: str = PLUGIN_NAMESPACE
    version: str = PLUGIN_VERSION

    def describe(self) -> str:
        return f"{self.namespace}::{self.name} version {self.version}"


IDENTITY = PluginIdentity()


@dataclass(frozen=True)
class PluginFields:
    """The node attributes the plugin keeps: they are serialized into the plan."""

    scale: float = 100.0
    mask_negative: int = 0


def _field_value(field) -> np.ndarray:
    return np.asarray(field.data).reshape(-1)


def fields_from_collection(collection) -> PluginFields:
    """Read scale / mask_negative from a PluginFieldCollection (the parser's, or a plan's)."""
    values = {field.name: _field_value(field) for field in collection}
    missing = [name for name in ("scale", "mask_negative") if name not in values or values[name].size != 1]
    if missing:
        raise ValueError(f"{IDENTITY.describe()}: fields {missing} missing or not scalars (got {sorted(values)})")
    return PluginFields(scale=float(values["scale"][0]), mask_negative=int(values["mask_negative"][0]))


def source_files() -> list[Path]:
    """Files whose contents decide what the plugin computes: this module, the kernel and its launcher."""
    files = [Path(__file__)]
    for module in KERNEL_MODULES:
        spec = importlib.util.find_spec(module)  # locates the file without importing Triton
        if spec is not None and spec.origin:
            files.append(Path(spec.origin))
    return files


def source_sha256() -> str:
    """Hash of the plugin's source (plugin + kernel): a plan built with other code must be rebuilt."""
    digest = hashlib.sha256()
    for path in source_files():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@functools.lru_cache(maxsize=None)
def plugin_classes(trt: ModuleType) -> tuple[type, type]:
    """(plugin class, creator class) subclassing the bindings of the TensorRT module `trt`."""

    def serialized_fields(fields: PluginFields):
        return trt.PluginFieldCollection(
            [
                trt.PluginField("scale", np.array([fields.scale], np.float32), trt.PluginFieldType.FLOAT32),
                trt.PluginField("mask_negative", np.array([fields.mask_negative], np.int32), trt.PluginFieldType.INT32),
            ]
        )

    class CorrespondenceSoftmaxPlugin(trt.IPluginV3, trt.IPluginV3OneCore, trt.IPluginV3OneBuild, trt.IPluginV3OneRuntime):
        """softmax(scale * q k^T) v: q [B,N,C], k [B,M,C], v [B,M,Cv] -> [B,N,Cv]."""

        def __init__(self, fields: PluginFields):
            # Each binding base needs its own __init__ (pybind11 multiple inheritance).
            trt.IPluginV3.__init__(self)
            trt.IPluginV3OneCore.__init__(self)
            trt.IPluginV3OneBuild.__init__(self)
            trt.IPluginV3OneRuntime.__init__(self)
            self.plugin_name = IDENTITY.name
            self.plugin_namespace = IDENTITY.namespace
            self.plugin_version = IDENTITY.version
            self.num_outputs = 1
            self.timing_cache_id = ""
            self.fields = fields

        # --- core ---------------------------------------------------------------------------------
        def get_capability_interface(self, capability_type):
            return self

        def clone(self):
            return CorrespondenceSoftmaxPlugin(self.fields)

        # --- build --------------------------------------------------------------------------------
        def get_output_data_types(self, input_types):
            return [input_types[0]]  # the output has the type of q (all inputs share it, see below)

        def get_output_shapes(self, inputs, shape_inputs, expr_builder):
            out = trt.DimsExprs(inputs[0])  # [B, N, C] ...
            out[2] = inputs[2][2]  # ... with the value width: [B, N, Cv]
            return [out]

        def supports_format_combination(self, pos, in_out, num_inputs):
            desc = in_out[pos].desc
            if desc.format != trt.TensorFormat.LINEAR:
                return False
            if pos == 0:
                return desc.type in (trt.DataType.FLOAT, trt.DataType.HALF)
            return desc.type == in_out[0].desc.type  # one type for q, k, v and the output

        def configure_plugin(self, inputs, outputs):
            q, k, v = (tensor.desc.dims for tensor in inputs)
            if len(q) != 3 or len(k) != 3 or len(v) != 3:
                raise ValueError(f"{IDENTITY.describe()}: q, k, v must be rank 3, got {q}, {k}, {v}")
            if q[2] != k[2]:
                raise ValueError(f"{IDENTITY.describe()}: descriptor width of q ({q[2]}) and k ({k[2]}) differ")
            if k[1] != v[1]:
                raise ValueError(f"{IDENTITY.describe()}: positions of k ({k[1]}) and v ({v[1]}) differ")

        def get_workspace_size(self, inputs, outputs):
            return 0  # the kernel keeps its running softmax in registers

        def get_valid_tactics(self):
            return []

        # --- runtime ------------------------------------------------------------------------------
        def on_shape_change(self, inputs, outputs):
            pass

        def set_tactic(self, tactic):
            pass

        def attach_to_context(self, context):
            return self.clone()

        def get_fields_to_serialize(self):
            return serialized_fields(self.fields)

        def enqueue(self, input_desc, output_desc, inputs, outputs, workspace, stream):
            # Never run on the development machine (no GPU): written against the documented
            # IPluginV3OneRuntime.enqueue and the kernel's launcher, unverified on a GPU.
            from mclrt.runtime.kernels.correspondence_launch import launch

            q_dims, k_dims, v_dims = (tuple(desc.dims) for desc in input_desc[:3])
            batch, positions, width = q_dims
            dtype = "fp16" if input_desc[0].type == trt.DataType.HALF else "fp32"
            launch(
                int(inputs[0]),
                int(inputs[1]),
                int(inputs[2]),
                int(outputs[0]),
                int(batch),
                int(positions),
                int(k_dims[1]),
                int(width),
                int(v_dims[2]),
                float(self.fields.scale),
                bool(self.fields.mask_negative),
                dtype,
                int(stream),
            )

    class CorrespondenceSoftmaxCreator(trt.IPluginCreatorV3One):
        def __init__(self):
            trt.IPluginCreatorV3One.__init__(self)
            self.name = IDENTITY.name
            self.plugin_namespace = IDENTITY.namespace
            self.plugin_version = IDENTITY.version
            self.field_names = trt.PluginFieldCollection(
                [
                    trt.PluginField("scale", np.array([]), trt.PluginFieldType.FLOAT32),
                    trt.PluginField("mask_negative", np.array([]), trt.PluginFieldType.INT32),
                ]
            )

        def create_plugin(self, name, field_collection, phase):
            return CorrespondenceSoftmaxPlugin(fields_from_collection(field_collection))

    return CorrespondenceSoftmaxPlugin, CorrespondenceSoftmaxCreator


# The registry holds C++ pointers to our Python creators; keep each one alive for the process.
_registered_creators: dict[int, object] = {}


def register_plugin(trt: ModuleType) -> bool:
    """Register the creator under namespace "mclrt" once per process. Returns True if it is registered."""
    registry = trt.get_plugin_registry()
    if id(trt) in _registered_creators:
        return True
    if registry.get_creator(IDENTITY.name, IDENTITY.version, IDENTITY.namespace) is not None:
        return True  # someone (e.g. the QDP AOT module) already provides this plugin
    _, creator_class = plugin_classes(trt)
    creator = creator_class()
    if not registry.register_creator(creator, IDENTITY.namespace):
        raise RuntimeError(f"TensorRT refused to register {IDENTITY.describe()}")
    _registered_creators[id(trt)] = creator
    return True


def own_creator(trt: ModuleType):
    """The creator `register_plugin` registered for `trt` in this process, or None."""
    return _registered_creators.get(id(trt))


def unregister_plugin(trt: ModuleType) -> None:
    """Undo register_plugin (for `--plugin off` in a process that registered it before)."""
    creator = _registered_creators.pop(id(trt), None)
    if creator is not None:
        trt.get_plugin_registry().deregister_creator(creator)


def is_registered(trt: ModuleType) -> bool:
    return trt.get_plugin_registry().get_creator(IDENTITY.name, IDENTITY.version, IDENTITY.namespace) is not None


def registered_plugins(trt: ModuleType) -> list[str]:
    """'namespace::name (version)' of every creator in the registry, for `mclrt doctor`."""
    names = []
    for creator in trt.get_plugin_registry().all_creators:
        namespace = getattr(creator, "plugin_namespace", "")
        names.append(f"{namespace + '::' if namespace else ''}{creator.name} ({creator.plugin_version})")
    return sorted(names)
