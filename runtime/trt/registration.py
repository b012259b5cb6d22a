"""One decision per process: which implementation of mclrt::CorrespondenceSoftmax v1 is registered.

Two implementations claim the same name, version and namespace: the Python IPluginV3 class creator
(`plugin.register_plugin`) and the Quickly Deployable Plugin with its AOT kernel
(`qdp_aot.register_qdp`). TensorRT keeps one creator per (name, version, namespace): `tensorrt.plugin`
ignores register_creator's answer and stores whatever `get_creator` returns afterwards, so a QDP
registered after the class creator silently *is* the class creator, and a QDP can never be
unregistered. Every caller (the engine builder, the TensorRT runner, `mclrt doctor`) therefore goes
through `use(trt, impl)`, which registers what was asked, removes what it can, refuses what it
cannot undo, and `registered(trt)` reports what the registry really holds -- which is what the
engine sidecar records.
"""

from __future__ import annotations

from types import ModuleType

from mclrt.runtime.errors import UserError
from mclrt.runtime.trt import plugin

PYTHON, AOT, NONE, FOREIGN = "python", "qdp-aot", "none", "foreign"

# Module id -> the QDP registered in this process (it cannot be removed again).
_qdp_registered: set[int] = set()


def registered(trt: ModuleType) -> str:
    """What the registry holds for mclrt::CorrespondenceSoftmax v1: "python" (our class creator),
    "qdp-aot" (our QDP), "foreign" (someone else's creator), or "none"."""
    creator = trt.get_plugin_registry().get_creator(plugin.IDENTITY.name, plugin.IDENTITY.version, plugin.IDENTITY.namespace)
    if creator is None:
        return NONE
    ours = plugin.own_creator(trt)
    if ours is not None and (creator is ours or type(creator) is type(ours)):
        return PYTHON
    if id(trt) in _qdp_registered:
        return AOT
    return FOREIGN


def use(trt: ModuleType, impl: str) -> str:
    """Make `impl` ("python", "qdp-aot" or "none") the registered implementation, or raise
    UserError when this process already holds one it cannot remove. Returns `registered(trt)`
    ("foreign" for impl "none" when another library's creator is there: not ours to remove)."""
    if impl not in (PYTHON, AOT, NONE):
        raise ValueError(f"unknown plugin implementation {impl!r}")
    current = registered(trt)
    if current == impl:
        return current
    if impl == AOT:
        from mclrt.runtime.trt import qdp_aot

        if not qdp_aot.qdp_available():  # before removing anything
            raise UserError(f"the AOT plugin for {plugin.IDENTITY.describe()} needs enterprise TensorRT >= 10.9 with tensorrt.plugin, and Triton")
    if current == AOT:
        raise UserError(
            f"this process registered the AOT plugin for {plugin.IDENTITY.describe()}, which TensorRT cannot "
            f"unregister; a '{impl}' build or run needs a new process"
        )
    if current == FOREIGN:
        if impl == NONE:
            return current  # nothing of ours to remove; the builder refuses a node it maps to it anyway
        raise UserError(f"another {plugin.IDENTITY.describe()} creator is registered in this process (not mclrt's)")
    if current == PYTHON:
        plugin.unregister_plugin(trt)
        if registered(trt) != NONE:
            raise RuntimeError(f"could not unregister the Python {plugin.IDENTITY.describe()}")
    if impl == PYTHON:
        plugin.register_plugin(trt)
    elif impl == AOT:
        from mclrt.runtime.trt import qdp_aot

        qdp_aot.register_qdp()
        _qdp_registered.add(id(trt))
    now = registered(trt)
    if now != impl:
        raise RuntimeError(f"asked to register {impl!r} for {plugin.IDENTITY.describe()}, the registry holds {now!r}")
    return now


def describe(trt: ModuleType) -> str:
    """For `mclrt doctor`: what is registered now, without registering anything."""
    current = registered(trt)
    return {
        PYTHON: "Python plugin (class creator)",
        AOT: "AOT plugin (QDP)",
        FOREIGN: "a creator that is not mclrt's",
        NONE: "not registered (each engine build and run registers what its plan needs)",
    }[current]
