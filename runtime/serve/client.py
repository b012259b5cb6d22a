"""A KServe v2 HTTP client on the standard library (http.client): JSON or binary tensors.

Used by the serving tests and `python -m mclrt.tools.serve_bench`; tritonclient's own HTTP client needs
gevent, which mclrt's environment does not carry. Binary tensors follow Triton's binary-data
extension: the JSON header, then the raw little-endian bytes of each tensor in order, with the header's
length in `Inference-Header-Content-Length`.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Mapping, Sequence
from urllib.parse import urlsplit

import numpy as np

DATATYPES = {np.dtype(np.float32): "FP32", np.dtype(np.float16): "FP16", np.dtype(np.int32): "INT32", np.dtype(np.int64): "INT64", np.dtype(np.uint8): "UINT8"}
NUMPY_TYPES = {name: dtype for dtype, name in DATATYPES.items()}
HEADER_LENGTH = "Inference-Header-Content-Length"


class InferError(Exception):
    """The server answered with an error (status and its message)."""

    def __init__(self, status: int, message: str):
        self.status, self.message = status, message
        super().__init__(f"HTTP {status}: {message}")


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> "Endpoint":
        parts = urlsplit(url if "://" in url else f"http://{url}")
        return cls(parts.hostname or "127.0.0.1", parts.port or 8000)

    def request(self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None,
                timeout: float = 120.0) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=dict(headers or {}))
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def get_json(self, path: str) -> dict:
        status, _, body = self.request("GET", path)
        if status != 200:
            raise InferError(status, _error_message(body))
        return json.loads(body)


def encode_request(inputs: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None, binary: bool = True) -> tuple[bytes, dict[str, str]]:
    """The body and headers of an infer request."""
    tensors, blobs = [], []
    for name, array in inputs.items():
        array = np.ascontiguousarray(array)
        entry = {"name": name, "shape": list(array.shape), "datatype": DATATYPES[array.dtype]}
        if binary:
            data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
            entry["parameters"] = {"binary_data_size": len(data)}
            blobs.append(data)
        else:
            entry["data"] = array.ravel().tolist()
        tensors.append(entry)
    header: dict = {"inputs": tensors}
    if outputs is not None:
        header["outputs"] = [{"name": name, "parameters": {"binary_data": binary}} for name in outputs]
    elif binary:
        header["parameters"] = {"binary_data_output": True}
    text = json.dumps(header).encode("utf-8")
    headers = {"Content-Type": "application/octet-stream" if binary else "application/json"}
    if binary:
        headers[HEADER_LENGTH] = str(len(text))
    return text + b"".join(blobs), headers


def decode_response(body: bytes, headers: Mapping[str, str]) -> dict[str, np.ndarray]:
    length = int(headers.get(HEADER_LENGTH.lower(), len(body)))
    header, offset, result = json.loads(body[:length]), length, {}
    for output in header["outputs"]:
        dtype = NUMPY_TYPES[output["datatype"]].newbyteorder("<")
        size = (output.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            array = np.frombuffer(body[offset : offset + size], dtype=dtype)
            offset += size
        else:
            array = np.asarray(output["data"], dtype=dtype)
        result[output["name"]] = array.reshape(output["shape"]).astype(dtype.newbyteorder("="))
    return result


def infer(url: str, model: str, inputs: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None,
          binary: bool = True, timeout: float = 120.0) -> dict[str, np.ndarray]:
    """One inference; an error response raises InferError."""
    body, headers = encode_request(inputs, outputs, binary)
    return post_infer(url, model, body, headers, timeout)


def post_infer(url: str, model: str, body: bytes, headers: Mapping[str, str], timeout: float = 120.0) -> dict[str, np.ndarray]:
    status, response_headers, response = Endpoint.parse(url).request("POST", f"/v2/models/{model}/infer", body, headers, timeout)
    if status != 200:
        raise InferError(status, _error_message(response))
    return decode_response(response, response_headers)


def model_statistics(url: str, model: str) -> dict:
    """Triton's statistics extension for one model (all versions): the first entry of model_stats."""
    return Endpoint.parse(url).get_json(f"/v2/models/{model}/stats")["model_stats"][0]


def batch_counts(stats: Mapping) -> dict[int, int]:
    """Executions per batch size, from a model's statistics (batch_stats)."""
    return {int(entry["batch_size"]): int(entry["compute_infer"]["count"]) for entry in stats.get("batch_stats", [])}


def batch_counts_after(url: str, model: str, before: Mapping[int, int], samples: int, wait_s: float = 5.0) -> dict[int, int]:
    """Executions per batch size since `before`, once they account for `samples` samples.

    Triton records a step's statistics after the ensemble's response can already have reached the
    client, so a read right after the last answer may miss the last execution: read again (briefly).
    """
    import time

    deadline = time.monotonic() + wait_s
    while True:
        after = batch_counts(model_statistics(url, model))
        delta = {size: after[size] - before.get(size, 0) for size in sorted(after) if after[size] != before.get(size, 0)}
        if sum(size * count for size, count in delta.items()) >= samples or time.monotonic() > deadline:
            return delta
        time.sleep(0.05)


def _error_message(body: bytes) -> str:
    try:
        return json.loads(body).get("error", body.decode("utf-8", "replace"))
    except (ValueError, AttributeError):
        return body.decode("utf-8", "replace")[:300]
