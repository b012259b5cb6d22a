"""Polygraphy on mclrt's graphs: a TensorRT-RTX plan built through Polygraphy's loaders on the CPU, its
command line fed by mclrt's data loaders, and mclrt's runners as Polygraphy runners."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "runtime" / "models" / "demo"


def _polygraphy_cli_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("polygraphy.tools") is not None


pytestmark = pytest.mark.skipif(not _polygraphy_cli_available(), reason="polygraphy is not installed")

# Polygraphy's command line is `polygraphy`; run it through this interpreter so it sees this environment.
POLYGRAPHY_MAIN = "import sys; from polygraphy.tools._main import main; sys.exit(main())"


def _polygraphy(*args, env=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", POLYGRAPHY_MAIN, *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, **(env or {})}, timeout=timeout)


def test_polygraphy_run_takes_mclrt_data_loaders_for_both_graphs():
    for graph in ("exemplar_encoder", "translator"):
        done = _polygraphy("run", DEMO / f"{graph}.onnx", "--onnxrt", "--data-loader-script", f"tools/polygraphy_data.py:{graph}",
                           env={"MCLRT_MODEL": str(DEMO), "MCLRT_BATCH": "2"})
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        assert "PASSED" in done.stdout + done.stderr
        # The feed had the model's own shapes, at the batch asked for.
        assert "shape=(2, 3, 128, 128)" in done.stdout + done.stderr


def test_the_translator_data_loader_feeds_real_encoder_descriptors():
    """Keys are the encoder's L2-normalised descriptors of a real photo, not random numbers."""
    env = {**os.environ, "MCLRT_MODEL": str(DEMO)}
    code = (
        "import importlib.util, json, numpy as np\n"
        "spec = importlib.util.spec_from_file_location('d', 'tools/polygraphy_data.py'); d = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(d)\n"
        "feed = next(d.translator())\n"
        "norms = np.linalg.norm(feed['exemplar_keys'], axis=-1)\n"
        "print(json.dumps({k: list(v.shape) for k, v in feed.items()} | {'norm_min': float(norms.min()), 'norm_max': float(norms.max())}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    assert facts["condition"] == [1, 1, 128, 128] and facts["exemplar_keys"][:2] == [1, 1024]
    assert 0.99 < facts["norm_min"] <= facts["norm_max"] < 1.01


def test_a_tensorrt_rtx_plan_builds_through_polygraphy_on_the_cpu(tmp_path):
    """Polygraphy's loaders (NetworkFromOnnxPath -> CreateConfigRTX -> EngineBytesFromNetwork) on TensorRT-RTX,
    picked the way mclrt picks it (compat.polygraphy_trt), build the demo translator without a GPU."""
    pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX is not installed (pip install 'mclrt[trt-check]')")
    code = (
        "import json, sys\n"
        "from mclrt.runtime.model_dir import load_model_dir\n"
        "from mclrt.runtime.trt import compat\n"
        "installed = compat.require()\n"
        "backend = compat.polygraphy_trt(installed)\n"
        "from polygraphy.backend.tensorrt_rtx import CreateConfigRTX\n"
        "from polygraphy.backend.trt import Profile\n"
        "from polygraphy.logger import G_LOGGER\n"
        "G_LOGGER.module_severity = G_LOGGER.ERROR\n"
        "model = load_model_dir(sys.argv[1])\n"
        "profile = Profile()\n"
        "for t in model.translator.inputs:\n"
        "    profile.add(t.name, (1, *t.fixed_shape), (1, *t.fixed_shape), (2, *t.fixed_shape))\n"
        "network = backend.NetworkFromOnnxPath(str(model.graph_path('translator')))\n"
        "config = CreateConfigRTX(compute_capabilities=[(8, 6)], profiles=[profile])\n"
        "plan = bytes(backend.EngineBytesFromNetwork(network, config=config)())\n"
        "open(sys.argv[2], 'wb').write(plan)\n"
        "print(json.dumps({'module': installed.module_name, 'bytes': len(plan)}))\n"
    )
    plan = tmp_path / "translator.plan"
    done = subprocess.run([sys.executable, "-c", code, str(DEMO), str(plan)], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    assert facts["module"] == "tensorrt_rtx"
    assert plan.stat().st_size == facts["bytes"] > 1_000_000  # a real plan: the demo translator's weights are 6 MB


def test_mclrt_runners_run_under_polygraphys_comparator():
    from polygraphy.comparator import Comparator
    from polygraphy.logger import G_LOGGER

    from mclrt.runtime.backends import Device, RunnerOptions, open_runners
    from mclrt.runtime.inputs.feeds import real_feeds
    from mclrt.runtime.model_dir import load_model_dir

    model = load_model_dir(DEMO)
    a = open_runners(model, RunnerOptions(backend="ort", device=Device.cpu), graphs=("exemplar_encoder",))["exemplar_encoder"]
    b = open_runners(model, RunnerOptions(backend="ort", device=Device.cpu, threads=1), graphs=("exemplar_encoder",))["exemplar_encoder"]
    a.name, b.name = "ort-a", "ort-b"
    feed, _ = real_feeds(model, 1)
    with G_LOGGER.verbosity(G_LOGGER.CRITICAL):
        results = Comparator.run([a, b], data_loader=[feed])
        accuracy = Comparator.compare_accuracy(results)
    assert bool(accuracy)
    assert not a.is_active and not b.is_active  # the Comparator activated and deactivated them
    keys = np.asarray(results[0][1][0]["exemplar_keys"])
    assert keys.shape == (1, 1024, 400)
