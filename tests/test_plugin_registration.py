"""One registration decision per process for mclrt::CorrespondenceSoftmax v1 (defects 3 and 5).

Against TensorRT-RTX's real plugin registry on the CPU: what `registration.use` registers, removes
and refuses, what `registered` reports, and that `mclrt doctor`'s facts no longer register anything.
The QDP (enterprise TensorRT >= 10.9) cannot be installed here; its refusal paths are checked.
Defect 5: the AOT kernel is compiled for the build GPU's exact architecture (sm_90a on Hopper), so
hardware-compatible plans never use it.
"""

from __future__ import annotations

import numpy as np
import pytest

from mclrt.runtime.errors import UserError
from mclrt.runtime.trt import builder, compat
from mclrt.runtime.trt.device import CudaInfo, GpuInfo

trt = pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX is not installed (pip install 'mclrt[trt-check]')")


@pytest.fixture
def registry():
    from mclrt.runtime.trt import registration

    registration.use(trt, registration.NONE)
    yield registration
    registration.use(trt, registration.NONE)


def test_use_registers_exactly_what_is_asked(registry):
    from mclrt.runtime.trt import plugin

    assert registry.registered(trt) == registry.NONE
    assert registry.use(trt, registry.PYTHON) == registry.PYTHON
    creator = trt.get_plugin_registry().get_creator("CorrespondenceSoftmax", "1", "mclrt")
    assert isinstance(creator, plugin.plugin_classes(trt)[1]) and creator is plugin.own_creator(trt)
    assert registry.use(trt, registry.PYTHON) == registry.PYTHON  # idempotent
    assert registry.use(trt, registry.NONE) == registry.NONE  # an inline build after a plugin build
    assert trt.get_plugin_registry().get_creator("CorrespondenceSoftmax", "1", "mclrt") is None


def test_the_aot_plugin_is_refused_before_anything_is_removed(registry):
    registry.use(trt, registry.PYTHON)
    with pytest.raises(UserError, match="enterprise TensorRT >= 10.9"):
        registry.use(trt, registry.AOT)  # TensorRT-RTX has no tensorrt.plugin
    assert registry.registered(trt) == registry.PYTHON


def test_a_foreign_creator_is_reported_and_never_replaced(registry):
    class OtherCreator(trt.IPluginCreatorV3One):
        def __init__(self):
            trt.IPluginCreatorV3One.__init__(self)
            self.name, self.plugin_namespace, self.plugin_version = "CorrespondenceSoftmax", "mclrt", "1"
            self.field_names = trt.PluginFieldCollection([trt.PluginField("scale", np.array([]), trt.PluginFieldType.FLOAT32)])

        def create_plugin(self, name, fields, phase):
            return None

    other = OtherCreator()
    assert trt.get_plugin_registry().register_creator(other, "mclrt")
    try:
        assert registry.registered(trt) == registry.FOREIGN
        with pytest.raises(UserError, match="not mclrt's"):
            registry.use(trt, registry.PYTHON)
        assert registry.use(trt, registry.NONE) == registry.FOREIGN  # not ours to remove
        assert "not mclrt's" in registry.describe(trt)
    finally:
        trt.get_plugin_registry().deregister_creator(other)
    assert registry.registered(trt) == registry.NONE


def test_doctor_reports_without_registering(registry):
    from mclrt.runtime.commands import doctor

    installed = compat.detect()
    if installed is None or installed.module is not trt:
        pytest.skip("doctor detects another TensorRT here")
    rows = dict(doctor.facts())
    assert rows["CorrespondenceSoftmax plugin"].startswith("not registered")
    assert registry.registered(trt) == registry.NONE


def test_hardware_compatible_plans_never_use_the_aot_kernel():
    e = compat.Flavour.ENTERPRISE
    gpu = CudaInfo("12.8", "12.8", (GpuInfo(0, "Hopper", (9, 0), 1 << 36),), None, None, None)
    caps = compat.capabilities(e, (10, 13))
    assert caps.qdp_aot and caps.hardware_compatibility_levels
    # Where the QDP can be built: AOT for this GPU, inline for an ampere-plus plan, refused with --plugin on.
    assert builder.choose_plugin_impl("auto", caps, gpu, ("current",), qdp=True) == builder.IMPL_AOT
    assert builder.choose_plugin_impl("auto", caps, gpu, ("ampere-plus",), qdp=True) == builder.IMPL_INLINE
    with pytest.raises(UserError, match="ampere-plus"):
        builder.choose_plugin_impl("on", caps, gpu, ("ampere-plus",), qdp=True)
    assert builder.choose_plugin_impl("off", caps, gpu, ("ampere-plus",), qdp=True) == builder.IMPL_INLINE
