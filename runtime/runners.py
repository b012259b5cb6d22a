"""Runners: one life cycle for every inference backend -- Polygraphy's.

A runner is made cheaply, then `activate()`d (sessions, engines and device buffers are created
here), asked to `infer(feed)` any number of times, and `deactivate()`d; it is also a context
manager. Every mclrt runner is a Polygraphy `BaseRunner`, so comparing or benchmarking backends is
written once (runtime/compare.py drives Polygraphy's Comparator), and the ONNX Runtime and TensorRT
runners are Polygraphy's own `OnnxrtRunner` and `TrtRunner` behind mclrt's checks and errors.

`OnnxRuntimeRunner` picks execution providers only when they can actually run here. onnxruntime-gpu
lists the TensorRT and CUDA providers even on a machine without a GPU or without their libraries,
and asking for them anyway logs a screen of errors before falling back to the CPU. So we first check
that a CUDA device exists (through the driver library, via ctypes) and that the provider's own
shared library loads with all of its dependencies, and only then ask for it.
"""

from __future__ import annotations

import abc
import contextlib
import ctypes
import io
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from polygraphy.backend.base import BaseRunner

# ONNX Runtime's tensor type strings -> numpy dtypes (only the ones our graphs can carry).
_ORT_DTYPES = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(double)": np.dtype(np.float64),
    "tensor(int64)": np.dtype(np.int64),
    "tensor(int32)": np.dtype(np.int32),
    "tensor(int8)": np.dtype(np.int8),
    "tensor(uint8)": np.dtype(np.uint8),
    "tensor(bool)": np.dtype(np.bool_),
}


def _ort_dtype(name: str, ort_type: str) -> np.dtype:
    if ort_type not in _ORT_DTYPES:
        raise ValueError(f"input {name!r} has type {ort_type}, which mclrt runners do not feed")
    return _ORT_DTYPES[ort_type]


class FeedError(ValueError):
    """A feed that does not match the graph's inputs: a bug in the caller, not user input."""


class RunnerError(RuntimeError):
    """The backend could not load or run the graph (its own message says why)."""


@dataclass(frozen=True)
class TensorMeta:
    """Name, shape (ints for fixed dims, a name or None for dynamic ones) and dtype of a graph input."""

    name: str
    shape: tuple[int | str | None, ...]
    dtype: np.dtype

    def check(self, array: np.ndarray) -> None:
        if array.dtype != self.dtype:
            raise FeedError(f"input {self.name!r}: dtype {array.dtype}, expected {self.dtype}")
        if array.ndim != len(self.shape):
            raise FeedError(f"input {self.name!r}: rank {array.ndim} {array.shape}, expected {self.shape}")
        for axis, (got, want) in enumerate(zip(array.shape, self.shape)):
            if isinstance(want, int) and got != want:
                raise FeedError(f"input {self.name!r}: dim {axis} is {got}, expected {want} (shape {self.shape})")


class Runner(BaseRunner, metaclass=abc.ABCMeta):
    """activate() -> infer(feed) ... -> deactivate(); also `with runner: ...`.

    A Polygraphy runner (`BaseRunner`), so Polygraphy's `Comparator` and tools take any mclrt runner,
    with what mclrt's callers rely on on top: `input_metadata()` as `TensorMeta` (numpy dtypes, the
    batch axis named), `output_names()`, and `infer(feed)` checking the feed with one clear FeedError
    and turning the backend's own exceptions into RunnerError. A backend implements `_activate`,
    `_deactivate`, `_infer`, `input_metadata` and `output_names`; the ONNX Runtime and TensorRT
    runners do it by driving Polygraphy's `OnnxrtRunner` and `TrtRunner`.
    """

    def __init__(self, name: str):
        super().__init__(name=name)
        self.inference_time = None

    @property
    def last_inference_seconds(self) -> float | None:
        return self.inference_time

    # --- Polygraphy's life cycle, implemented by mclrt's -----------------------------------------
    # Activating an active runner, or deactivating an inactive one, does nothing -- quietly: Polygraphy
    # logs a warning line for each, and a pipeline that failed half-way through activation deactivates both.
    def activate(self) -> None:
        if not self.is_active:
            super().activate()

    def deactivate(self) -> None:
        if self.is_active:
            super().deactivate()

    def activate_impl(self) -> None:
        self._activate()

    def deactivate_impl(self) -> None:
        self._deactivate()

    def get_input_metadata_impl(self):
        from polygraphy.common import TensorMetadata

        metadata = TensorMetadata()
        for name, meta in self.input_metadata().items():
            metadata.add(name, dtype=meta.dtype, shape=[d if isinstance(d, int) else -1 for d in meta.shape])
        return metadata

    def infer_impl(self, feed_dict):
        start = time.perf_counter()
        outputs = self._infer(feed_dict)
        self.inference_time = time.perf_counter() - start
        return outputs

    # --- inference ------------------------------------------------------------------------------
    def infer(self, feed_dict: Mapping[str, np.ndarray], check_inputs: bool = True) -> dict[str, np.ndarray]:
        """Run the graph on `feed_dict` (every input, by name) and return every output, by name.

        Floating-point inputs are cast to the float type the graph declares, here and nowhere else, so
        an FP16 graph with FP16 inputs takes the same feed as its FP32 source.
        """
        if not self.is_active:
            raise RuntimeError(f"runner {self.name} is not active: call activate() or use it as a context manager")
        feed = self._cast_floats(feed_dict)
        if check_inputs:
            self._check_feed(feed)
        return dict(super().infer(feed, check_inputs=False))

    def _cast_floats(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        metadata = self.input_metadata()
        cast = {}
        for name, value in feed.items():
            value = np.asarray(value)
            want = metadata[name].dtype if name in metadata else None
            if want is not None and want.kind == "f" and value.dtype.kind == "f" and value.dtype != want:
                value = value.astype(want)
            cast[name] = np.ascontiguousarray(value)
        return cast

    def _check_feed(self, feed: Mapping[str, np.ndarray]) -> None:
        metadata = self.input_metadata()
        missing = sorted(set(metadata) - set(feed))
        extra = sorted(set(feed) - set(metadata))
        if missing or extra:
            raise FeedError(f"{self.name}: feed is missing {missing} and has unexpected {extra}; inputs are {list(metadata)}")
        for name, meta in metadata.items():
            meta.check(np.asarray(feed[name]))

    # --- what a backend provides ------------------------------------------------------------------
    @abc.abstractmethod
    def input_metadata(self) -> dict[str, TensorMeta]:
        """Inputs in graph order (available once active)."""

    @abc.abstractmethod
    def output_names(self) -> list[str]:
        """Outputs in graph order (available once active)."""

    @abc.abstractmethod
    def _activate(self) -> None: ...

    @abc.abstractmethod
    def _deactivate(self) -> None: ...

    @abc.abstractmethod
    def _infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...


# --- ONNX Runtime ---------------------------------------------------------------------------------

TENSORRT_EP = "TensorrtExecutionProvider"
CUDA_EP = "CUDAExecutionProvider"
CPU_EP = "CPUExecutionProvider"

# The shared library each GPU provider lives in, inside onnxruntime/capi.
_PROVIDER_LIBRARIES = {TENSORRT_EP: "libonnxruntime_providers_tensorrt.so", CUDA_EP: "libonnxruntime_providers_cuda.so"}


@dataclass(frozen=True)
class ProviderChoice:
    """The providers to ask for, best first, and why each skipped one was skipped."""

    providers: tuple[str, ...]
    skipped: dict[str, str]


def cuda_device_count() -> int:
    """Number of CUDA devices the driver reports; 0 when there is no driver or no device."""
    try:
        driver = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0
    if driver.cuInit(0) != 0:
        return 0
    count = ctypes.c_int(0)
    if driver.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return count.value


def _provider_library_loads(provider: str) -> str | None:
    """None when the provider's shared library (and so all of its CUDA/TensorRT deps) loads, else why not."""
    import onnxruntime

    capi = Path(onnxruntime.__file__).parent / "capi"
    library = capi / _PROVIDER_LIBRARIES[provider]
    if not library.exists():
        return f"{library.name} is not part of this onnxruntime build"
    try:
        # The provider libraries resolve symbols from the shared bridge, as ONNX Runtime loads them.
        ctypes.CDLL(str(capi / "libonnxruntime_providers_shared.so"), mode=ctypes.RTLD_GLOBAL)
        ctypes.CDLL(str(library))
    except OSError as err:
        return str(err)
    return None


def _preload_pip_cuda_libraries() -> None:
    """Make CUDA/cuDNN from the nvidia-* pip wheels findable, as ONNX Runtime documents.

    preload_dlls() prints a line for every library it cannot find; those are expected when CUDA comes
    from the system instead, and the loadability check that follows is the real test.
    """
    import onnxruntime

    preload = getattr(onnxruntime, "preload_dlls", None)
    if preload is None:  # older onnxruntime: system libraries only
        return
    with contextlib.redirect_stdout(io.StringIO()):
        preload(cuda=True, cudnn=True, msvc=False)


def choose_ort_providers(prefer: Sequence[str] = (TENSORRT_EP, CUDA_EP)) -> ProviderChoice:
    """The usable providers among `prefer` (in that order), always ending with the CPU provider."""
    import onnxruntime

    available = set(onnxruntime.get_available_providers())
    chosen: list[str] = []
    skipped: dict[str, str] = {}
    gpu_wanted = [p for p in prefer if p in available and p != CPU_EP]
    devices = cuda_device_count() if gpu_wanted else 0
    if gpu_wanted and devices:
        _preload_pip_cuda_libraries()
    for provider in prefer:
        if provider == CPU_EP:
            continue
        if provider not in available:
            skipped[provider] = "not in this onnxruntime build"
        elif not devices:
            skipped[provider] = "no CUDA device (no driver or no GPU)"
        elif (reason := _provider_library_loads(provider)) is not None:
            skipped[provider] = reason
        else:
            chosen.append(provider)
    chosen.append(CPU_EP)
    return ProviderChoice(tuple(chosen), skipped)


@dataclass(frozen=True)
class OrtOptions:
    """Session settings. 0 threads lets ONNX Runtime use one per physical core."""

    intra_op_threads: int = 0
    providers: tuple[str, ...] | None = None  # None: choose_ort_providers()
    # ONNX Runtime log severity: 0 verbose .. 3 error, 4 fatal. Warnings about unused initializers and
    # the like are noise for a user; errors still print.
    log_severity: int = 3
    # Write ONNX Runtime's per-kernel profile (a JSON trace) under this prefix; read it back with
    # `end_profiling()`. Off by default: profiling adds a little to every run.
    profile_prefix: str | None = None


def ort_session(model: str | os.PathLike | bytes, options: OrtOptions, name: str):
    """mclrt's session factory: ONNX Runtime settings (threads, providers that can really run here,
    denormals, spinning, profiling) -> an InferenceSession and the provider choice behind it."""
    import onnxruntime

    from mclrt.runtime.threads import available_cores

    choice = choose_ort_providers() if options.providers is None else ProviderChoice(tuple(options.providers), {})
    session_options = onnxruntime.SessionOptions()
    # Never more threads than cores, whoever asks (the commands cap --threads with a warning first):
    # 1000 threads per session on 2 cores starved the machine (issue 24).
    session_options.intra_op_num_threads = min(options.intra_op_threads, available_cores())
    # Trained GAN weights (xavier gain 0.02) produce subnormal activations, which x86 CPUs compute
    # ~20x slower; flushing them to zero does not change an 8-bit image.
    session_options.add_session_config_entry("session.set_denormal_as_zero", "1")
    # A pipeline holds two sessions (encoder, translator), each with its own thread pool, whose idle
    # threads busy-wait for more work after a run -- taking the cores from the other session's run.
    # Measured on 2 cores, demo model: encode + translate took 77-83 ms that way, 49-53 ms with the
    # spinning stopped when a run returns (it still spins between the ops of a run; each graph alone
    # runs as fast either way).
    session_options.add_session_config_entry("session.force_spinning_stop", "1")
    session_options.log_severity_level = options.log_severity
    if options.profile_prefix is not None:
        session_options.enable_profiling = True
        session_options.profile_file_prefix = options.profile_prefix
    source = model if isinstance(model, bytes) else str(model)
    try:
        session = onnxruntime.InferenceSession(source, sess_options=session_options, providers=list(choice.providers))
    except _onnxruntime_errors() as err:
        raise RunnerError(f"ONNX Runtime cannot load {name}: {_first_line(err)}") from err
    return session, choice


class OnnxRuntimeRunner(Runner):
    """Runs one ONNX graph with ONNX Runtime on the best provider that actually works here: Polygraphy's
    `OnnxrtRunner`, fed by mclrt's session factory (`ort_session`)."""

    def __init__(self, model: str | os.PathLike | bytes, options: OrtOptions = OrtOptions(), name: str | None = None):
        self.model = model if isinstance(model, bytes) else Path(model)
        super().__init__(name or (self.model.name if isinstance(self.model, Path) else "onnxruntime"))
        self.options = options
        self.provider_choice: ProviderChoice | None = None
        self._polygraphy = None  # polygraphy.backend.onnxrt.OnnxrtRunner, while active

    def _session(self):
        session, self.provider_choice = ort_session(self.model, self.options, self.name)
        return session

    @property
    def session(self):
        if self._polygraphy is None:
            raise RuntimeError(f"runner {self.name} is not active")
        return self._polygraphy.sess

    @property
    def providers_in_use(self) -> list[str]:
        """What the session really uses: ONNX Runtime may still drop a provider when it is created."""
        return list(self.session.get_providers())

    def _activate(self) -> None:
        from polygraphy.backend.onnxrt import OnnxrtRunner

        runner = OnnxrtRunner(self._session, name=self.name)
        runner.activate()
        self._polygraphy = runner

    def _deactivate(self) -> None:
        self._polygraphy.deactivate()
        self._polygraphy = None

    def end_profiling(self) -> Path:
        """Stop profiling (OrtOptions.profile_prefix) and return the trace file ONNX Runtime wrote."""
        if self._polygraphy is None or self.options.profile_prefix is None:
            raise RuntimeError(f"runner {self.name} is not active with profiling on")
        return Path(self.session.end_profiling())

    def input_metadata(self) -> dict[str, TensorMeta]:
        return {arg.name: TensorMeta(arg.name, tuple(arg.shape), _ort_dtype(arg.name, arg.type)) for arg in self.session.get_inputs()}

    def output_names(self) -> list[str]:
        return [arg.name for arg in self.session.get_outputs()]

    def _infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        # The session's own run, not OnnxrtRunner.infer: that checks every feed for a torch tensor by
        # importing torch wherever it is installed (seconds and hundreds of MB per process, in a
        # runtime that never needs torch). The rest of the life cycle is OnnxrtRunner's.
        try:
            return dict(zip(self.output_names(), self.session.run(None, dict(feed))))
        except _onnxruntime_errors() as err:
            raise RunnerError(f"ONNX Runtime failed running {self.name}: {_first_line(err)}") from err


def _onnxruntime_errors() -> tuple[type[Exception], ...]:
    """ONNX Runtime's own exception classes (they derive from Exception directly, not RuntimeError)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    names = ("Fail", "InvalidArgument", "InvalidGraph", "InvalidProtobuf", "NoSuchFile", "NoModel", "NotFound",
             "NotImplemented", "RuntimeException", "EPFail", "EngineError", "ModelLoaded")
    return tuple(getattr(state, name) for name in names if hasattr(state, name)) + (RuntimeError,)


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__
