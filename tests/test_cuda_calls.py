"""The one cuda-python result checker (runtime/cuda_calls.py), driver and runtime variants, against a
stand-in `cuda.bindings` package: this machine has neither a GPU nor cuda-python, so the real enums
and error-name calls are not exercised here (the stand-in mirrors their documented shapes)."""

from __future__ import annotations

import enum
import sys
import types

import pytest

from mclrt.runtime import cuda_calls


class CUresult(enum.IntEnum):
    CUDA_SUCCESS = 0
    CUDA_ERROR_INVALID_VALUE = 1


class cudaError_t(enum.IntEnum):
    cudaSuccess = 0
    cudaErrorMemoryAllocation = 2


@pytest.fixture
def fake_cuda(monkeypatch):
    driver = types.SimpleNamespace(
        CUresult=CUresult,
        cuGetErrorName=lambda e: (CUresult.CUDA_SUCCESS, CUresult(e).name.encode()),
        cuGetErrorString=lambda e: (CUresult.CUDA_SUCCESS, b"invalid argument"),
    )
    runtime = types.SimpleNamespace(
        cudaError_t=cudaError_t,
        cudaGetErrorName=lambda e: (cudaError_t.cudaSuccess, cudaError_t(e).name.encode()),
        cudaGetErrorString=lambda e: (cudaError_t.cudaSuccess, b"out of memory"),
    )
    cuda = types.ModuleType("cuda")
    bindings = types.ModuleType("cuda.bindings")
    bindings.driver, bindings.runtime = driver, runtime
    cuda.bindings = bindings
    for name, module in {"cuda": cuda, "cuda.bindings": bindings, "cuda.bindings.driver": driver, "cuda.bindings.runtime": runtime}.items():
        monkeypatch.setitem(sys.modules, name, module)


def test_success_hands_back_none_one_value_or_a_tuple(fake_cuda):
    assert cuda_calls.check_runtime((cudaError_t.cudaSuccess,), "cudaStreamSynchronize") is None
    assert cuda_calls.check_runtime((cudaError_t.cudaSuccess, 1234), "cudaMalloc") == 1234
    assert cuda_calls.check_driver((CUresult.CUDA_SUCCESS, 12060), "cuDriverGetVersion") == 12060
    assert cuda_calls.check_driver((CUresult.CUDA_SUCCESS, 1, 2), "cuCall") == (1, 2)


def test_an_error_names_the_call_and_the_error_of_its_api(fake_cuda):
    with pytest.raises(RuntimeError, match=r"^cudaMalloc failed: cudaErrorMemoryAllocation \(out of memory\)$"):
        cuda_calls.check_runtime((cudaError_t.cudaErrorMemoryAllocation, 0), "cudaMalloc")
    with pytest.raises(RuntimeError, match=r"^cuModuleLoadData failed: CUDA_ERROR_INVALID_VALUE \(invalid argument\)$"):
        cuda_calls.check_driver((CUresult.CUDA_ERROR_INVALID_VALUE, None), "cuModuleLoadData")


def test_the_module_imports_without_cuda_python():
    assert "cuda" not in cuda_calls.__dict__  # cuda-python is imported when a result is checked, not before
