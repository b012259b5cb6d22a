"""cuda-python's calls return `(status, *values)` instead of raising: `check_driver` and `check_runtime`
turn a status other than success into a RuntimeError naming the call and the error, and hand back the
value(s). One checker, a variant per API:

- driver API (`cuda.bindings.driver`): CUresult, cuGetErrorName / cuGetErrorString;
- runtime API (`cuda.bindings.runtime`): cudaError_t, cudaGetErrorName / cudaGetErrorString.

Users: runtime/kernels/correspondence_launch.py (both APIs) and runtime/trt/runner.py (runtime API).
cuda-python is imported when a result is checked, never at import time (this module loads without it).

UNVERIFIED WITH REAL CUDA: the development machine has no GPU and no cuda-python; the status members and
error-name calls follow cuda-python's documented API, and tests/test_cuda_calls.py runs this module
against a stand-in `cuda.bindings` package.
"""

from __future__ import annotations

from typing import Any, Literal

Api = Literal["driver", "runtime"]


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _failure(api: Api, status: Any) -> str | None:
    """None on success; otherwise the error's name and description, e.g. 'cudaErrorMemoryAllocation (out of memory)'."""
    if api == "driver":
        from cuda.bindings import driver as cu

        if status == cu.CUresult.CUDA_SUCCESS:
            return None
        name, text = cu.cuGetErrorName(status)[1], cu.cuGetErrorString(status)[1]
    else:
        from cuda.bindings import runtime as rt

        if status == rt.cudaError_t.cudaSuccess:
            return None
        name, text = rt.cudaGetErrorName(status)[1], rt.cudaGetErrorString(status)[1]
    return f"{_text(name)} ({_text(text)})"


def checked(result: tuple, call: str, api: Api) -> Any:
    """Raise RuntimeError("<call> failed: <name> (<description>)") unless the status is success; then
    return None (no values), the value (one) or a tuple of the values."""
    status, *values = result
    failure = _failure(api, status)
    if failure is not None:
        raise RuntimeError(f"{call} failed: {failure}")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def check_driver(result: tuple, call: str) -> Any:
    """`checked` for a driver API call's (CUresult, *values)."""
    return checked(result, call, "driver")


def check_runtime(result: tuple, call: str) -> Any:
    """`checked` for a runtime API call's (cudaError_t, *values)."""
    return checked(result, call, "runtime")
