"""`TensorRTRunner`: runs one plan with the same life cycle as the ONNX Runtime runner, on Polygraphy's
`TrtRunner`.

What stays mclrt's, in activate(): the CUDA device check first (no device: a UserError "no CUDA
device", exit code 2), the plugin registration the plan's engine-cache sidecar asks for (plans that
use the CorrespondenceSoftmax plugin cannot be deserialized otherwise), and deserializing through
mclrt's shared TensorRT logger, so a plan that fails to load gets a one-line reason. What is
Polygraphy's: the execution context, the stream, the device and pinned host buffers, setting input
shapes and tensor addresses, `execute_async_v3` and the copies back (`TrtRunner`, which uses the CUDA
runtime library through its own ctypes wrapper). Polygraphy imports `tensorrt`, or `tensorrt_rtx`
when mclrt found TensorRT-RTX (`compat.polygraphy_trt`), so both see the same module and registry.

UNVERIFIED ON A GPU: the development machine has none. Everything up to the device check runs here
(and is tested); the rest follows the documented TensorRT and Polygraphy APIs and has never executed.
Where torch is installed, Polygraphy's TrtRunner imports it at the first inference (it looks for
torch tensors in the feed): a cost of that machine's first frame, not a dependency.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np

from mclrt.runtime.errors import UserError
from mclrt.runtime.runners import Runner, TensorMeta
from mclrt.runtime.trt import cache, compat, device, plugin, registration
from mclrt.runtime.trt.logger import shared_logger


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
    """Runs one serialized plan on the first CUDA device (Polygraphy's TrtRunner behind mclrt's checks)."""

    def __init__(self, plan: str | Path, name: str | None = None, installed: compat.Installed | None = None):
        self.plan = Path(plan)
        super().__init__(name or f"tensorrt:{self.plan.name}")
        self._installed = installed
        self._runtime = self._engine = None  # the runtime outlives its engine
        self._polygraphy = None  # polygraphy.backend.trt.TrtRunner, while active
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

        with shared_logger(trt).recording() as log:
            runtime = trt.Runtime(shared_logger(trt))
            engine = runtime.deserialize_cuda_engine(self.plan.read_bytes())
        if engine is None:
            if any(plugin.IDENTITY.name in message for message in log.messages):
                raise UserError(f"cannot load the plan: plugin {plugin.IDENTITY.describe()} is not available in this process", self.plan)
            raise UserError("TensorRT could not load the plan: " + " | ".join(log.errors[-2:] or ["see the TensorRT log"]), self.plan)
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self._inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self._outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self._runtime, self._engine, self._trt = runtime, engine, trt
        runner = compat.polygraphy_trt(installed).TrtRunner(engine, name=self.name)
        runner.activate()
        self._polygraphy = runner

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
        if self._polygraphy is not None:
            self._polygraphy.deactivate()
        self._polygraphy = self._engine = self._runtime = None

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
        outputs = self._polygraphy.infer(dict(feed), check_inputs=False, copy_outputs_to_host=True)
        return {name: np.asarray(outputs[name]) for name in self._outputs}
