"""Triton's model configuration schema: `tritonclient`'s ModelConfig protobuf message.

tritonclient 2.73.0 ships the schema as `tritonclient/grpc/model_config_pb2.py`, but importing it
the usual way runs `tritonclient.grpc`'s package init, which needs grpcio and python-rapidjson (the
gRPC client) -- nothing the schema itself uses. So the module is loaded from its file in the installed
distribution, needing only protobuf (which onnx already brings). The generated code is protobuf 6.33
gencode; the protobuf 7 runtime of the dev environment accepts it.

`make install` installs tritonclient with --no-deps: its own requirements pin ml-dtypes<=0.5.4,
which would downgrade the ml-dtypes that onnx uses here (pyproject's `[serve]` extra says the same).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from types import ModuleType

from mclrt.runtime.errors import UserError

TRITONCLIENT_PIN = "tritonclient==2.73.0"


@functools.lru_cache(maxsize=1)
def model_config_pb2() -> ModuleType:
    """The `model_config_pb2` module of the installed tritonclient (a UserError saying how to install it)."""
    spec = importlib.util.find_spec("tritonclient")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"Triton's model-config schema needs tritonclient: pip install --no-deps '{TRITONCLIENT_PIN}' (or `make install`)")
    path = Path(next(iter(spec.submodule_search_locations))) / "grpc" / "model_config_pb2.py"
    if not path.is_file():
        raise UserError("this tritonclient has no grpc/model_config_pb2.py", path)
    module_spec = importlib.util.spec_from_file_location("mclrt_triton_model_config_pb2", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def to_pbtxt(config) -> str:
    """The config as protobuf text (what Triton reads from config.pbtxt)."""
    from google.protobuf import text_format

    return text_format.MessageToString(config)


def parse_pbtxt(text: str, path: str | Path | None = None):
    """Parse config.pbtxt text with the schema; a problem is a UserError naming the file."""
    from google.protobuf import text_format

    config = model_config_pb2().ModelConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as err:
        raise UserError(f"not a valid Triton model config: {err}", path) from None
    return config


def round_trip(config) -> str:
    """Print the config, parse it back and check nothing changed; returns the text to write."""
    text = to_pbtxt(config)
    parsed = parse_pbtxt(text)
    if parsed != config:
        raise AssertionError(f"model config {config.name!r} does not survive a round trip through the schema")
    return text
