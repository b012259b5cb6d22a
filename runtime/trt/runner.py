"""`TensorRTRunner`: runs one plan with the same life cycle as the ONNX Runtime runner.

activate() checks for a CUDA device first (no device: a UserError "no CUDA device", exit code 2),
registers the CorrespondenceSoftmax plugin (plans that use it cannot be deserialized otherwise),
deserializes the plan, and creates a context, a CUDA stream and pinned host buffers through
cuda-python (`cuda.bindings.runtime`). infer() uses named tensors only: set_input_shape,
set_tensor_address, execute_async_v3 -- binding indices are gone since TensorRT 10.

UNVERIFIED ON A GPU: the development machine has none. Everything up to the device check runs
here (and is tested); the CUDA and execution parts follow the documented TensorRT and cuda-python
APIs and NVIDIA's cuda-python samples, and have never executed.
"""

from __future__ import annotations

import ctypes
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from mclrt.runtime.cuda_calls import check_runtime
from mclrt.runtime.errors import UserError
from mclrt.runtime.runners import Runner, TensorMeta
from mclrt.runtime.trt import cache, compat, device, plugin, registration
from mclrt.runtime.trt.logger import shared_logger


@dataclass
class _Buffer:
    """A device buffer and its pinned host twin, grown on demand."""

    device_ptr: int = 0
    host_ptr: int = 0
    capacity: int = 0

    def ensure(self, nbytes: int) -> None:
        from cuda.bindings import runtime as cudart

        if nbytes <= self.capacity:
            return
        self.free()
        self.device_ptr = int(check_runtime(cudart.cudaMalloc(nbytes), "cudaMalloc"))
        self.host_ptr = int(check_runtime(cudart.cudaMallocHost(nbytes), "cudaMallocHost"))
        self.capacity = nbytes

    def host_array(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        count = int(np.prod(shape)) * np.dtype(dtype).itemsize
        raw = (ctypes.c_byte * count).from_address(self.host_ptr)
        return np.frombuffer(raw, dtype=dtype).reshape(shape)

    def free(self) -> None:
        from cuda.bindings import runtime as cudart

        if self.device_ptr:
            cudart.cudaFree(self.device_ptr)
        if self.host_ptr:
            cudart.cudaFreeHost(self.host_ptr)
        self.device_ptr = self.host_ptr = self.capacity = 0


def _plan_plugin_implementation(plan: Path) -> str | None:
    """What the engine cache's sidecar says about the plan's correspondence (None: no sidecar)."""
    sidecar = cache.sidecar_path(plan)
    if not sidecar.is_file():
        return None
    fields = json.loads(sidecar.read_text(encoding="utf-8")).get("fields") or {}
    return fields.get("plugin_implementation")


def module_installed(name: str) -> bool:
    """find_spec for a dotted name, False (not an exception) when a parent package is missing."""
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def missing_plugin_packages() -> list[str]:
    """What the Python plugin needs at run time and is not installed. `cuda.bindings`, not `cuda`:
    any package in the `cuda` namespace (cuda-pathfinder, cuda-python 12.6.0's cuda.cuda) makes
    `cuda` importable without the bindings the launcher uses."""
    wanted = {"triton": "triton", "cuda.bindings": "cuda-python >= 12.6.2.post1 (cuda.bindings)"}
    return [label for module, label in wanted.items() if not module_installed(module)]


class TensorRTRunner(Runner):
    """Runs one serialized plan on the first CUDA device."""

    def __init__(self, plan: str | Path, name: str | None = None, installed: compat.Installed | None = None):
        self.plan = Path(plan)
        super().__init__(name or f"tensorrt:{self.plan.name}")
        self._installed = installed
        self._runtime = self._engine = self._context = self._stream = None  # the runtime outlives its engine
        self._buffers: dict[str, _Buffer] = {}
        self._inputs: list[str] = []
        self._outputs: list[str] = []

    # --- life cycle -------------------------------------------------------------------------------
    def _activate(self) -> None:
        device.require_device()  # before anything else: no GPU, no TensorRT execution
        installed = self._installed or compat.require()
        trt = installed.module
        implementation = _plan_plugin_implementation(self.plan)
        if implementation == "python":
            self._require_python_plugin(installed)
        # Before deserializing: a plan holding the Python plugin needs its creator. AOT (QDP) plans
        # carry their kernel and inline ones have no plugin: nothing to register for those. A plan
        # without a sidecar may hold the Python plugin: register it unless something else is.
        if implementation == registration.PYTHON:
            registration.use(trt, registration.PYTHON)
        elif implementation is None and installed.caps.python_plugin_v3 and registration.registered(trt) == registration.NONE:
            registration.use(trt, registration.PYTHON)
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:
            raise UserError("the TensorRT backend needs cuda-python (pip install cuda-python)") from None

        with shared_logger(trt).recording() as log:
            runtime = trt.Runtime(shared_logger(trt))
            self._engine = runtime.deserialize_cuda_engine(self.plan.read_bytes())
        if self._engine is None:
            if any(plugin.IDENTITY.name in message for message in log.messages):
                raise UserError(f"cannot load the plan: plugin {plugin.IDENTITY.describe()} is not available in this process", self.plan)
            raise UserError("TensorRT could not load the plan: " + " | ".join(log.errors[-2:] or ["see the TensorRT log"]), self.plan)
        self._runtime = runtime
        self._context = self._engine.create_execution_context()
        self._stream = check_runtime(cudart.cudaStreamCreate(), "cudaStreamCreate")
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        self._inputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self._outputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self._trt = trt

    def _require_python_plugin(self, installed: compat.Installed) -> None:
        missing = missing_plugin_packages()
        if not installed.caps.python_plugin_v3 or missing:
            why = f"{installed.caps.label} has no Python IPluginV3" if not installed.caps.python_plugin_v3 else f"{', '.join(missing)} not installed"
            raise UserError(
                f"the plan uses plugin {plugin.IDENTITY.describe()} (Python + Triton), which cannot run here: {why}; "
                "rebuild with `mclrt engine build --plugin off`",
                self.plan,
            )

    def _deactivate(self) -> None:
        from cuda.bindings import runtime as cudart

        for buffer in self._buffers.values():
            buffer.free()
        self._buffers.clear()
        if self._stream is not None:
            cudart.cudaStreamDestroy(self._stream)
        self._context = self._engine = self._stream = self._runtime = None

    # --- metadata ---------------------------------------------------------------------------------
    def _dtype(self, name: str) -> np.dtype:
        return np.dtype(self._trt.nptype(self._engine.get_tensor_dtype(name)))

    def input_metadata(self) -> dict[str, TensorMeta]:
        if self._engine is None:
            raise RuntimeError(f"runner {self.name} is not active")
        metadata = {}
        for name in self._inputs:
            shape = tuple("batch" if (axis == 0 and d < 0) else (None if d < 0 else int(d)) for axis, d in enumerate(self._engine.get_tensor_shape(name)))
            metadata[name] = TensorMeta(name, shape, self._dtype(name))
        return metadata

    def output_names(self) -> list[str]:
        if self._engine is None:
            raise RuntimeError(f"runner {self.name} is not active")
        return list(self._outputs)

    # --- inference --------------------------------------------------------------------------------
    def _infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        from cuda.bindings import runtime as cudart

        stream, context = self._stream, self._context
        for name in self._inputs:
            array = np.ascontiguousarray(feed[name], dtype=self._dtype(name))
            if not context.set_input_shape(name, array.shape):
                raise ValueError(f"{self.name}: input {name} shape {array.shape} is outside the plan's profile")
            buffer = self._buffers.setdefault(name, _Buffer())
            buffer.ensure(array.nbytes)
            buffer.host_array(array.shape, array.dtype)[...] = array
            check_runtime(cudart.cudaMemcpyAsync(buffer.device_ptr, buffer.host_ptr, array.nbytes, cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, stream), "copy to device")
            context.set_tensor_address(name, buffer.device_ptr)
        shapes = {}
        for name in self._outputs:
            shape = tuple(context.get_tensor_shape(name))
            shapes[name] = shape
            buffer = self._buffers.setdefault(name, _Buffer())
            buffer.ensure(int(np.prod(shape)) * self._dtype(name).itemsize)
            context.set_tensor_address(name, buffer.device_ptr)
        if not context.execute_async_v3(int(stream)):
            raise RuntimeError(f"{self.name}: execute_async_v3 failed (see the TensorRT log)")
        for name in self._outputs:
            buffer, nbytes = self._buffers[name], int(np.prod(shapes[name])) * self._dtype(name).itemsize
            check_runtime(cudart.cudaMemcpyAsync(buffer.host_ptr, buffer.device_ptr, nbytes, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream), "copy to host")
        check_runtime(cudart.cudaStreamSynchronize(stream), "cudaStreamSynchronize")
        return {name: self._buffers[name].host_array(shapes[name], self._dtype(name)).copy() for name in self._outputs}
