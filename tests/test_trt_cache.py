"""The engine cache: every key field counts, sidecars guard plans, foreign files are never replaced."""

from __future__ import annotations

import dataclasses
import json

import pytest

from mclrt.runtime.errors import UserError
from mclrt.runtime.trt import cache, device

BASE = cache.EngineKey(
    graph="translator",
    onnx_sha256="a" * 64,
    precision="fp16",
    recipe="onnxconverter-common 1.16.0; recipe 0123456789abcdef",
    batch_profile=(1, 1, 4),
    workspace_bytes=1 << 30,
    targets=("sm86", "sm89"),
    dla_core=None,
    strongly_typed=True,
    plugin_implementation="python",
    plugin_name="CorrespondenceSoftmax",
    plugin_namespace="mclrt",
    plugin_version="1",
    plugin_source_sha256="b" * 64,
    trt_flavour="tensorrt-rtx",
    trt_version="1.7.1.116",
    cuda_driver="13.0",
    cuda_runtime="13.0",
    gpu_name="NVIDIA GeForce RTX 3090",
    compute_capability="sm86",
    l4t_release=None,
    power_mode=None,
)


def _other_value(value):
    """A different value of the same kind (None becomes a plausible setting)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, tuple):
        return value[:-1] + (value[-1] + 1,) if isinstance(value[-1], int) else value + ("sm120",)
    raise TypeError(value)


def test_every_field_changes_the_key():
    digests = {BASE.digest()}
    fields = cache.key_fields()
    assert {"onnx_sha256", "recipe", "batch_profile", "workspace_bytes", "targets", "dla_core", "plugin_source_sha256", "trt_version", "cuda_driver", "cuda_runtime", "gpu_name", "compute_capability", "l4t_release", "power_mode"} <= set(fields)
    for field in fields:
        changed = dataclasses.replace(BASE, **{field: _other_value(getattr(BASE, field))})
        assert changed.digest() != BASE.digest(), field
        assert changed.differences(json.loads(BASE.canonical_json())) == [field]
        digests.add(changed.digest())
    assert len(digests) == len(fields) + 1
    # Canonical: the same fields give the same key in any process.
    assert dataclasses.replace(BASE).digest() == BASE.digest()


def test_store_then_lookup(tmp_path):
    plan = tmp_path / "fp16-plugin" / "translator.plan"
    assert cache.lookup(plan, BASE).reason == "no plan built yet"
    cache.store(plan, b"plan bytes", BASE, {"graph": "translator"})
    found = cache.lookup(plan, BASE)
    assert found.usable and found.reason == "up to date"
    sidecar = json.loads(cache.sidecar_path(plan).read_text())
    assert sidecar["key"] == BASE.digest() and sidecar["fields"]["gpu_name"] == BASE.gpu_name and sidecar["graph"] == "translator"

    moved = dataclasses.replace(BASE, gpu_name="NVIDIA Jetson AGX Orin", compute_capability="sm87")
    stale = cache.lookup(plan, moved)
    assert not stale.usable and "compute_capability" in stale.reason and "gpu_name" in stale.reason

    plan.write_bytes(b"plan bytes, edited")
    assert "does not match the SHA-256" in cache.lookup(plan, BASE).reason
    cache.store(plan, b"rebuilt", BASE)  # ours (sidecar present): replaced
    assert cache.lookup(plan, BASE).usable and plan.read_bytes() == b"rebuilt"


def test_foreign_plans_are_never_overwritten(tmp_path):
    plan = tmp_path / "translator.plan"
    plan.write_bytes(b"someone's engine")
    assert not cache.owned_by_cache(plan)
    assert "missing" in cache.lookup(plan, BASE).reason
    with pytest.raises(UserError, match="not written by `mclrt engine build`"):
        cache.store(plan, b"new", BASE)
    assert plan.read_bytes() == b"someone's engine"


def test_a_build_interrupted_after_the_plan_is_rebuilt_not_trusted(tmp_path):
    """The placeholder sidecar lands before a first plan: a crash in between leaves a plan that is ours but stale."""
    plan = tmp_path / "translator.plan"
    cache.store(plan, b"first", BASE)
    cache.sidecar_path(plan).write_text(json.dumps({"format": cache.SIDECAR_FORMAT, "format_version": 1, "key": None, "state": "building"}))
    assert cache.owned_by_cache(plan)
    assert not cache.lookup(plan, BASE).usable


def test_cache_root_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "c"))
    assert cache.cache_root() == tmp_path / "c"
    monkeypatch.delenv(cache.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_root() == tmp_path / "xdg" / "mclrt"


def test_jetson_release_is_read_from_nv_tegra_release(tmp_path):
    release = tmp_path / "nv_tegra_release"
    release.write_text("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, DATE: Wed Jan  8 01:49:37 UTC 2025\n")
    assert device.l4t_release(release) == "R36.4.3"
    assert device.l4t_release(tmp_path / "absent") is None
