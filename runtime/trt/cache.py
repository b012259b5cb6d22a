"""The engine cache: a plan is reused only when everything that shaped it is unchanged.

The key is the SHA-256 of a canonical JSON of `EngineKey`: what went into the build (ONNX hash,
precision recipe, batch profile, builder settings, plugin identity and source hash, TensorRT flavour
and version) and where it runs (CUDA driver and runtime, GPU name, compute capability, and on
Jetson the L4T release and power mode). Each plan has a JSON sidecar (`<plan>.json`) holding the key,
its fields and the plan's own SHA-256; the plan file stays a plain TensorRT plan, so trtexec and
other tools can still load it. A plan is loaded only when its sidecar's key equals the key computed
now and the plan's bytes still hash to what the sidecar says; otherwise it is rebuilt, or with
`--no-build` the user gets an error saying which field changed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mclrt.runtime.errors import UserError
from mclrt.runtime.fsutil import atomic_write_bytes, sha256_file

SIDECAR_FORMAT = "mclrt-engine"
SIDECAR_VERSION = 1
CACHE_ENV = "MCLRT_CACHE_DIR"


@dataclass(frozen=True)
class EngineKey:
    # --- the build -----------------------------------------------------------------------------
    graph: str
    onnx_sha256: str  # the model directory's graph, as verified against mclrt.json
    precision: str  # fp32 | fp16 | int8
    recipe: str  # how the precision was made: "as-exported", "<tool> <version>; recipe <fp16.py hash>", "builder-flags+fp32-pins"
    batch_profile: tuple[int, int, int]  # min, opt, max
    workspace_bytes: int | None
    targets: tuple[str, ...]  # RTX compute capabilities, or ("current",) / ("ampere-plus",) on enterprise
    dla_core: int | None
    strongly_typed: bool
    plugin_implementation: str  # "none" (no node), "inline" (function body), "python" (IPluginV3 + Triton), "qdp-aot"
    plugin_name: str
    plugin_namespace: str
    plugin_version: str
    plugin_source_sha256: str
    trt_flavour: str
    trt_version: str
    # --- where it runs ---------------------------------------------------------------------------
    cuda_driver: str | None
    cuda_runtime: str | None
    gpu_name: str | None
    compute_capability: str | None
    l4t_release: str | None
    power_mode: str | None

    def canonical_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"), ensure_ascii=True)

    def digest(self) -> str:
        return hashlib.sha256(self.canonical_json().encode("ascii")).hexdigest()

    def differences(self, other_fields: dict[str, Any]) -> list[str]:
        """Names of the fields whose values differ from `other_fields` (a sidecar's)."""
        mine = json.loads(self.canonical_json())
        return sorted(name for name in mine if mine[name] != other_fields.get(name))


def cache_root() -> Path:
    """$MCLRT_CACHE_DIR, else $XDG_CACHE_HOME/mclrt, else ~/.cache/mclrt."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = Path(os.environ["XDG_CACHE_HOME"]) if os.environ.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "mclrt"


def sidecar_path(plan: Path) -> Path:
    return plan.with_name(plan.name + ".json")


@dataclass(frozen=True)
class CacheLookup:
    """Whether a cached plan can be used, and if not, why (for messages and --no-build errors)."""

    plan: Path
    usable: bool
    reason: str


def lookup(plan: Path, key: EngineKey) -> CacheLookup:
    sidecar = sidecar_path(plan)
    if not plan.exists():
        return CacheLookup(plan, False, "no plan built yet")
    if not sidecar.is_file():
        return CacheLookup(plan, False, f"{sidecar.name} is missing, so nothing says how this plan was built")
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return CacheLookup(plan, False, f"{sidecar.name} is not valid JSON")
    if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT or data.get("format_version") != SIDECAR_VERSION:
        return CacheLookup(plan, False, f"{sidecar.name} is not an mclrt engine sidecar of version {SIDECAR_VERSION}")
    if data.get("key") != key.digest():
        changed = key.differences(data.get("fields") or {})
        return CacheLookup(plan, False, f"built with different {', '.join(changed) or 'settings'}")
    if sha256_file(plan) != data.get("plan_sha256"):
        return CacheLookup(plan, False, "the plan file does not match the SHA-256 in its sidecar (modified or truncated)")
    return CacheLookup(plan, True, "up to date")


def owned_by_cache(plan: Path) -> bool:
    """True if `plan` is absent or was written by this cache (has our sidecar): safe to replace."""
    if not plan.exists():
        return True
    sidecar = sidecar_path(plan)
    try:
        return json.loads(sidecar.read_text(encoding="utf-8")).get("format") == SIDECAR_FORMAT
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return False


def store(plan: Path, plan_bytes: bytes, key: EngineKey, extra: dict[str, Any] | None = None) -> None:
    """Write the plan, then its sidecar, each atomically.

    Crash safety: a sidecar of ours exists before the plan is replaced (a placeholder without a key
    the first time), so a half-finished update leaves a plan whose hash or key does not match --
    rebuilt next time -- and never a plan that looks foreign or current.
    """
    if not owned_by_cache(plan):
        raise UserError("exists and was not written by `mclrt engine build` (no mclrt sidecar); move it away first", plan)
    sidecar = sidecar_path(plan)
    if not sidecar.exists():
        placeholder = {"format": SIDECAR_FORMAT, "format_version": SIDECAR_VERSION, "key": None, "state": "building"}
        atomic_write_bytes(sidecar, json.dumps(placeholder).encode("utf-8"), overwrite=True)
    atomic_write_bytes(plan, plan_bytes, overwrite=True)
    document = {
        "format": SIDECAR_FORMAT,
        "format_version": SIDECAR_VERSION,
        "key": key.digest(),
        "fields": json.loads(key.canonical_json()),
        "plan_sha256": hashlib.sha256(plan_bytes).hexdigest(),
        "plan_bytes": len(plan_bytes),
        **(extra or {}),
    }
    atomic_write_bytes(sidecar, (json.dumps(document, indent=2) + "\n").encode("utf-8"), overwrite=True)


def key_fields() -> list[str]:
    return [f.name for f in dataclasses.fields(EngineKey)]
