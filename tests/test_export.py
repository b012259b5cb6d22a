"""`mclrt export`: real exports of real presets, checked with ONNX Runtime, onnx.checker and TensorRT-RTX.

The nano directory comes from the CLI, exported from a trainer checkpoint of freshly initialized
weights (`nano_model_dir`, tests/conftest.py); parity compares it with the same weights in PyTorch.
paper-ade20k (and paper-deepfashion, the 4x4-patch warp) are exported once each; being big, they are
marked slow and check parity at batch 1 only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

from mclrt.export.checkpoint import init_model, load_checkpoint_model, load_checkpoint_source, locate_checkpoint
from mclrt.export.custom_op import (
    DOMAIN,
    OP_TYPE,
    PLUGIN_NAMESPACE,
    correspondence_function,
    correspondence_softmax_op,
)
from mclrt.export.graph_checks import graph_problems
from mclrt.export.onnx_export import ExportOptions, export_model_dir
from mclrt.export.parity import ParityOptions, check_parity, parity_inputs
from mclrt.runtime.cli import main
from mclrt.runtime.errors import UserError
from mclrt.runtime.fsutil import atomic_directory, sha256_file
from mclrt.runtime.model_dir import load_model_dir
from mclrt.training.correspondence import correspondence_softmax

from export_fixtures import EMA_FACTOR, STEP, TRAIN_CONFIG, write_fresh_checkpoint

GRAPHS = ("exemplar_encoder.onnx", "translator.onnx")


def _models(model_dir: Path) -> dict[str, onnx.ModelProto]:
    return {file: onnx.load(str(model_dir / file)) for file in GRAPHS}


def _correspondence_nodes(models: dict[str, onnx.ModelProto]) -> list[tuple[str, onnx.NodeProto]]:
    return [(f, n) for f, m in models.items() for n in m.graph.node if (n.domain, n.op_type) == (DOMAIN, OP_TYPE)]


def _numpy_correspondence(q, k, v, scale, mask_negative):
    sim = np.einsum("bnc,bmc->bnm", q.astype(np.float64), k.astype(np.float64))
    if mask_negative:
        sim = np.maximum(sim, 0.0)
    logits = scale * sim
    weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return np.einsum("bnm,bmv->bnv", weights / weights.sum(axis=-1, keepdims=True), v.astype(np.float64))


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


# --- the custom op and its function ------------------------------------------------------------------


@pytest.mark.parametrize("mask_negative", [False, True])
def test_custom_op_is_the_training_correspondence_and_passes_opcheck(mask_negative):
    g = torch.Generator().manual_seed(0)
    q, k = (torch.nn.functional.normalize(torch.randn(2, n, 32, generator=g), dim=-1) for n in (40, 56))
    v = torch.rand(2, 56, 3, generator=g) * 2 - 1
    got = correspondence_softmax_op(q, k, v, 100.0, mask_negative)
    assert torch.equal(got, correspondence_softmax(q, k, v, 100.0, mask_negative))
    torch.library.opcheck(correspondence_softmax_op, (q, k, v, 100.0, mask_negative))  # fake shapes, schema


@pytest.mark.parametrize("scale,mask_negative", [(100.0, 0), (100.0, 1), (7.5, 0), (7.5, 1)])
def test_function_body_follows_the_node_attributes_in_onnxruntime(scale, mask_negative):
    """One FunctionProto serves every attribute value: scale via ref_attr, mask_negative via If."""
    node = helper.make_node(
        OP_TYPE, ["q", "k", "v"], ["y"], domain=DOMAIN, scale=scale, mask_negative=mask_negative, plugin_namespace=PLUGIN_NAMESPACE
    )
    graph = helper.make_graph(
        [node],
        "correspondence",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", None, None]) for n in "qkv"],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", None, None])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 20), helper.make_opsetid(DOMAIN, 1)], functions=[correspondence_function(20)]
    )
    model.ir_version = 10  # what the exporter writes; onnx's default is newer than ONNX Runtime reads
    onnx.checker.check_model(model, full_check=True)
    rng = np.random.default_rng(1)
    # Keys in the positive orthant and half the queries in the negative one: those rows have only
    # negative similarities, which is where MATEBIT's mask changes the result at any scale.
    k = _unit(np.abs(rng.standard_normal((3, 64, 16))))
    q = _unit(rng.standard_normal((3, 48, 16)))
    q[:, ::2] = -_unit(np.abs(rng.standard_normal((3, 24, 16))))
    v = rng.uniform(-1, 1, (3, 64, 3)).astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"q": q, "k": k, "v": v})
    want = _numpy_correspondence(q, k, v, scale, mask_negative)
    assert np.max(np.abs(got - want)) < 1e-5
    # The two mask settings must really differ on these inputs, or the test would prove nothing.
    other = _numpy_correspondence(q, k, v, scale, not mask_negative)
    assert np.max(np.abs(want - other)) > 1e-3


# --- the exported nano directory ------------------------------------------------------------------------


def test_nano_export_has_exactly_one_correspondence_node_with_its_function(nano_model_dir):
    models = _models(nano_model_dir)
    nodes = _correspondence_nodes(models)
    assert [f for f, _ in nodes] == ["translator.onnx"]
    attributes = {a.name: helper.get_attribute_value(a) for a in nodes[0][1].attribute}
    assert attributes == {"scale": pytest.approx(100.0), "mask_negative": 0, "plugin_namespace": PLUGIN_NAMESPACE.encode()}
    translator, encoder = models["translator.onnx"], models["exemplar_encoder.onnx"]
    assert [(f.domain, f.name) for f in translator.functions] == [(DOMAIN, OP_TYPE)]
    assert list(translator.functions[0].attribute) == ["scale", "mask_negative"]
    assert list(encoder.functions) == []
    for model in models.values():
        onnx.checker.check_model(model, full_check=True)
        assert {(o.domain, o.version) for o in model.opset_import} >= {("", 20)}
    assert (DOMAIN, 1) in {(o.domain, o.version) for o in translator.opset_import}
    assert graph_problems(nano_model_dir) == []


def test_nano_export_follows_the_model_directory_contract(nano_model_dir, nano_checkpoint):
    assert sorted(p.name for p in nano_model_dir.iterdir()) == ["exemplar_encoder.onnx", "mclrt.json", "translator.onnx"]
    models = _models(nano_model_dir)

    def io(values):
        return {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in values}

    encoder, translator = models["exemplar_encoder.onnx"].graph, models["translator.onnx"].graph
    assert io(encoder.input) == {"exemplar": ["batch", 3, 128, 128]}
    assert io(encoder.output) == {"exemplar_keys": ["batch", 1024, 640], "exemplar_values": ["batch", 1024, 3]}
    assert io(translator.input) == {
        "condition": ["batch", 1, 128, 128],
        "exemplar_keys": ["batch", 1024, 640],
        "exemplar_values": ["batch", 1024, 3],
    }
    assert io(translator.output) == {"image": ["batch", 3, 128, 128], "warped_exemplar": ["batch", 3, 128, 128]}

    manifest = json.loads((nano_model_dir / "mclrt.json").read_text(encoding="utf-8"))
    assert (manifest["format"], manifest["format_version"], manifest["preset"], manifest["precision"]) == ("mclrt-model", 1, "nano", "fp32")
    assert manifest["image_size"] == [128, 128]
    assert manifest["condition"] == {"kind": "edge", "channels": 1, "extract": "canny", "maskmix": False}
    assert manifest["correspondence"] == {"positions": 1024, "descriptor_width": 640, "value_width": 3, "scale": 100.0, "mask_negative": False}
    assert manifest["opset"] == 20
    assert {"torch", "onnx", "onnxscript"} <= set(manifest["versions"])
    provenance = manifest["provenance"]
    assert provenance["weights"] == "model" and provenance["step"] == STEP and provenance["train_config"] == TRAIN_CONFIG
    assert provenance["model_sha256"] == sha256_file(nano_checkpoint / "model.safetensors")
    assert provenance["model_config"]["ngf"] == 16 and provenance["model_config"]["preset"] == "nano"
    for graph, file in (("exemplar_encoder", "exemplar_encoder.onnx"), ("translator", "translator.onnx")):
        assert manifest["graphs"][graph]["file"] == file
        assert manifest["graphs"][graph]["sha256"] == sha256_file(nano_model_dir / file)
    assert load_model_dir(nano_model_dir).manifest.preset == "nano"


def _strings(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def test_a_fresh_manifest_names_the_run_and_holds_no_absolute_path(nano_model_dir, nano_checkpoint):
    """mclrt.json travels with the model: it names the run and the checkpoint folder and pins the
    weights by SHA-256, and no absolute path of the exporting machine is in it (the session's export
    was given an absolute checkpoint path)."""
    assert nano_checkpoint.is_absolute()
    manifest = json.loads((nano_model_dir / "mclrt.json").read_text(encoding="utf-8"))
    assert [s for s in _strings(manifest) if os.path.isabs(s) or s.startswith("~")] == []
    provenance = manifest["provenance"]
    assert "checkpoint" not in provenance
    assert provenance["run"] == nano_checkpoint.parent.parent.name and provenance["checkpoint_folder"] == f"{STEP:08d}"


def test_the_training_configs_absolute_paths_stay_out_of_the_provenance(tmp_path, monkeypatch):
    """A run's config holds the data root and run folder as the trainer saw them: the provenance keeps
    paths given relative, and of an absolute one outside the current folder only its name."""
    folder = write_fresh_checkpoint(tmp_path / "runs" / "exp1", "nano")
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    meta["train_config"] = {"data": {"root": "/home/someone/data/photos/train", "list": "lists/train.txt"}, "log": {"out": str(tmp_path / "runs" / "exp1")}, "vgg": {"path": "~/weights/vgg19.pth"}}
    (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    provenance = load_checkpoint_source(folder).provenance
    assert provenance["run"] == "exp1" and provenance["checkpoint_folder"] == folder.name
    assert provenance["train_config"] == {"data": {"root": ".../train", "list": "lists/train.txt"}, "log": {"out": "runs/exp1"}, "vgg": {"path": ".../vgg19.pth"}}


def test_nano_graphs_are_clean_and_self_contained(nano_model_dir):
    """Constant-folded (no Constant/Identity left, no node computable from weights alone), spectral
    norm folded (no parametrization tensors), no random or dropout op, weights inside the file, no
    stack traces."""
    for file, model in _models(nano_model_dir).items():
        initializers = {t.name for t in model.graph.initializer}
        ops = {n.op_type for n in model.graph.node}
        assert not ops & {"Constant", "Identity", "Dropout", "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike"}, file
        foldable = [n.name for n in model.graph.node if n.input and all(i in initializers or not i for i in n.input)]
        assert foldable == [], file
        assert not [t.name for t in model.graph.initializer if "parametrizations" in t.name or t.name.endswith(("_u", "_v"))], file
        assert all(t.data_location == TensorProto.DEFAULT for t in model.graph.initializer), file
        # Stack traces (machine paths, line numbers) are dropped; module scopes stay for calibration.
        keys = {p.key for n in model.graph.node for p in n.metadata_props}
        assert "pkg.torch.onnx.stack_trace" not in keys and "pkg.torch.onnx.name_scopes" in keys, file
        assert sum(t.ByteSize() for t in model.graph.initializer) > 0.9 * (nano_model_dir / file).stat().st_size


def test_nano_source_model_has_spectral_norm_folded(nano_source):
    from torch.nn.utils import parametrize

    model = nano_source.model
    assert not model.training
    assert not any(parametrize.is_parametrized(m) for m in model.modules())
    assert not any(name.endswith(("weight_orig", "_u", "_v")) for name, _ in model.named_buffers())


def test_nano_onnxruntime_matches_pytorch_at_batch_1_and_3(nano_model_dir, nano_source):
    report = check_parity(nano_source.model, nano_model_dir, ParityOptions(batches=(1, 3), tolerance=1e-4))
    assert {(o.graph, o.output, o.batch) for o in report.outputs} == {
        (g, o, b)
        for b in (1, 3)
        for g, outputs in (("exemplar_encoder", ("exemplar_keys", "exemplar_values")), ("translator", ("image", "warped_exemplar")))
        for o in outputs
    }
    assert report.ok, report.summary()
    print(f"nano parity: {report.summary()}; ORT CPU s/image {report.ort_seconds_per_image}")


def test_nano_batch_is_dynamic_and_items_are_independent(nano_model_dir, nano_source):
    """One session per graph runs batch 1 and batch 3; the real sample (index 0 of both) gives the
    same output alone and in a batch."""
    cpu = ["CPUExecutionProvider"]
    encoder = ort.InferenceSession(str(nano_model_dir / "exemplar_encoder.onnx"), providers=cpu)
    translator = ort.InferenceSession(str(nano_model_dir / "translator.onnx"), providers=cpu)
    images = {}
    for batch in (1, 3):
        feed = parity_inputs(nano_source.config, batch)
        keys, values = encoder.run(None, {"exemplar": feed["exemplar"]})
        image, warped = translator.run(None, {"condition": feed["condition"], "exemplar_keys": keys, "exemplar_values": values})
        assert image.shape == warped.shape == (batch, 3, 128, 128)
        assert np.all(np.abs(image) <= 1) and np.all(np.abs(warped) <= 1)
        images[batch] = image
    assert np.max(np.abs(images[3][0] - images[1][0])) < 1e-5
    assert np.max(np.abs(images[3][1] - images[3][0])) > 1e-2  # different inputs, different outputs


def test_nano_runs_in_plain_onnxruntime_without_torch_or_extensions(nano_model_dir):
    """A fresh interpreter that imports only numpy and onnxruntime (CPU provider, default session
    options, no custom-op library) runs both graphs; the function body is all it needs."""
    script = textwrap.dedent(
        """
        import json, sys
        import numpy as np
        import onnxruntime as ort
        d = sys.argv[1]
        cpu = ["CPUExecutionProvider"]
        encoder = ort.InferenceSession(d + "/exemplar_encoder.onnx", providers=cpu)
        translator = ort.InferenceSession(d + "/translator.onnx", providers=cpu)
        rng = np.random.default_rng(0)
        exemplar = rng.uniform(-1, 1, (2, 3, 128, 128)).astype(np.float32)
        condition = (rng.uniform(size=(2, 1, 128, 128)) < 0.1).astype(np.float32)
        keys, values = encoder.run(None, {"exemplar": exemplar})
        image, warped = translator.run(None, {"condition": condition, "exemplar_keys": keys, "exemplar_values": values})
        loaded = sorted({m.split(".")[0] for m in sys.modules} & {"torch", "onnxruntime_extensions", "onnxscript", "mclrt"})
        print(json.dumps({"shape": list(image.shape), "finite": bool(np.isfinite(image).all() and np.isfinite(warped).all()),
                          "providers": translator.get_providers(), "loaded": loaded}))
        """
    )
    done = subprocess.run([sys.executable, "-I", "-c", script, str(nano_model_dir)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"shape": [2, 3, 128, 128], "finite": True, "providers": ["CPUExecutionProvider"], "loaded": []}


# --- TensorRT-RTX: the node maps to the plugin when it is registered, the function is inlined otherwise


def _trt_plugin_link_present() -> bool:
    import importlib.util

    spec = importlib.util.find_spec("tensorrt_rtx_libs")
    return spec is not None and any((Path(p) / "libtensorrt_rtx.so").exists() for p in spec.submodule_search_locations or ())


@pytest.mark.skipif(not _trt_plugin_link_present(), reason="TensorRT-RTX with its libtensorrt_rtx.so link (make install) is needed")
@pytest.mark.parametrize("register", [True, False])
def test_tensorrt_rtx_parser_maps_the_node_to_the_plugin_only_when_registered(nano_model_dir, register):
    # A subprocess: a plugin problem can abort the whole process inside the parser.
    script = textwrap.dedent(
        """
        import json, sys
        import tensorrt_rtx as trt
        from mclrt.runtime.trt.plugin import register_plugin
        logger = trt.Logger(trt.Logger.ERROR)
        if sys.argv[2] == "1":
            register_plugin(trt)
        builder = trt.Builder(logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, logger)
        ok = parser.parse_from_file(sys.argv[1])
        kinds = [str(network.get_layer(i).type).split(".")[-1] for i in range(network.num_layers)]
        print(json.dumps({"ok": ok, "errors": [str(parser.get_error(i)) for i in range(parser.num_errors)],
                          "plugins": kinds.count("PLUGIN_V3"), "softmax": kinds.count("SOFTMAX")}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(nano_model_dir / "translator.onnx"), "1" if register else "0"],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["ok"], result["errors"]
    # The generator's own attention has one Softmax; the inlined correspondence adds the second.
    assert (result["plugins"], result["softmax"]) == ((1, 1) if register else (0, 2))


def test_mclrt_check_passes_on_nano(nano_model_dir):
    """`mclrt check` (runtime/checks/model_check.py): onnx.checker, TensorRT op table, the correspondence node and
    function, ONNX Runtime, and -- when TensorRT-RTX is installed -- its real parser and CPU build."""
    from mclrt.runtime.checks.model_check import check_model_dir, tensorrt_rtx_installed

    report = check_model_dir(nano_model_dir)
    failed = [s for s in report.steps if s.status == "fail"]
    assert report.ok, failed
    builds = [s for s in report.steps if s.step == "tensorrt-rtx-build"]
    assert len(builds) == 2
    assert all(s.status == ("pass" if tensorrt_rtx_installed() else "skip") for s in builds), builds


# --- the CLI's refusals (fast: they happen before any model is loaded) ---------------------------------


def _run(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def test_cli_needs_exactly_one_source(capsys, tmp_path):
    code, err = _run(capsys, "export", "--out", tmp_path / "m")
    assert code == 2 and "exactly one" in err
    code, err = _run(capsys, "export", tmp_path, "--init", "nano", "--out", tmp_path / "m")
    assert code == 2 and "exactly one" in err
    code, err = _run(capsys, "export", "--init", "nano", "--ema", "--out", tmp_path / "m")
    assert code == 2 and "--ema" in err
    code, err = _run(capsys, "export", "--init", "no-such-preset", "--out", tmp_path / "m")
    assert code == 2 and "unknown preset" in err
    assert not (tmp_path / "m").exists()


def test_cli_never_replaces_what_it_should_not(capsys, tmp_path):
    existing = tmp_path / "model"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    code, err = _run(capsys, "export", "--init", "nano", "--out", existing)
    assert code == 2 and "already exists" in err and "\n" == err[-1] and err.count("\n") == 1
    code, err = _run(capsys, "export", "--init", "nano", "--out", existing, "--overwrite")
    assert code == 2 and "not a model directory" in err
    a_file = tmp_path / "file"
    a_file.write_text("mine")
    code, err = _run(capsys, "export", "--init", "nano", "--out", a_file, "--overwrite")
    assert code == 2 and "not a directory" in err
    assert (existing / "notes.txt").read_text() == "mine" and a_file.read_text() == "mine"


def test_cli_reports_a_missing_checkpoint_in_one_line(capsys, tmp_path):
    code, err = _run(capsys, "export", tmp_path / "nowhere", "--out", tmp_path / "m")
    assert code == 2 and str(tmp_path / "nowhere") in err and "Traceback" not in err


# --- the atomic directory ------------------------------------------------------------------------------


def test_atomic_directory_leaves_nothing_on_failure_and_replaces_only_on_success(tmp_path):
    final = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with atomic_directory(final) as building:
            (building / "half.onnx").write_bytes(b"partial")
            raise RuntimeError("export failed")
    assert list(tmp_path.iterdir()) == []
    with atomic_directory(final) as building:
        (building / "a").write_text("first")
    with pytest.raises(UserError, match="already exists"):
        with atomic_directory(final):
            pass
    with pytest.raises(RuntimeError):
        with atomic_directory(final, overwrite=True) as building:
            (building / "b").write_text("second")
            raise RuntimeError("export failed")
    assert sorted(p.name for p in final.iterdir()) == ["a"]
    with atomic_directory(final, overwrite=True) as building:
        (building / "b").write_text("second")
    assert sorted(p.name for p in final.iterdir()) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary or old folder left


# --- checkpoints, as the trainer writes them -------------------------------------------------------------

SMALL = {"image_size": 64, "ngf": 8, "ndf": 8}


@pytest.fixture(scope="session")
def small_run(tmp_path_factory) -> Path:
    """A run folder with one checkpoint (64x64 nano, ngf 8, with EMA). Copy it before changing it."""
    run = tmp_path_factory.mktemp("small") / "run"
    write_fresh_checkpoint(run, "nano", SMALL, with_ema=True)
    return run


@pytest.fixture
def run_copy(small_run, tmp_path) -> Path:
    return Path(shutil.copytree(small_run, tmp_path / "run", symlinks=True))


def _checkpoint_folder(run: Path) -> Path:
    return run / "checkpoints" / os.readlink(run / "checkpoints" / "latest")


def _saved(folder: Path, name: str = "model.safetensors") -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / name))


def test_checkpoint_is_found_from_every_form_of_path_and_loads(small_run):
    folder = _checkpoint_folder(small_run)
    for path in (folder, small_run / "checkpoints" / "latest", small_run, folder / "model.safetensors"):
        assert locate_checkpoint(path) == (folder, folder / "model.safetensors"), path
    model, meta = load_checkpoint_model(small_run / "checkpoints" / "latest")
    assert meta["step"] == STEP and model.cfg.image_size == 64 and model.cfg.ngf == 8
    # A weight without spectral norm is loaded as is (folded ones become W / sigma).
    name = "corr.scm.fc.weight"
    assert torch.equal(model.state_dict()[name], _saved(folder)[name])


def test_init_model_equals_a_step_0_checkpoint_of_the_same_seed(nano_source):
    """`--init PRESET --seed N` exports exactly the weights the trainer starts from (nano_source is
    loaded from a checkpoint of `build_networks(nano, seed=0)`, the trainer's initialization)."""
    fresh = init_model("nano", 0).model.state_dict()
    loaded = nano_source.model.state_dict()
    assert fresh.keys() == loaded.keys()
    for name, tensor in loaded.items():
        assert torch.equal(tensor, fresh[name]), name


def test_ema_weights_replace_the_trained_ones_and_are_recorded(small_run, tmp_path):
    folder = _checkpoint_folder(small_run)
    source = load_checkpoint_source(folder, ema=True)
    name = "corr.scm.fc.weight"
    assert torch.equal(source.model.state_dict()[name], _saved(folder)[name] * EMA_FACTOR)
    assert source.provenance["weights"] == "ema"
    assert source.provenance["ema_sha256"] == sha256_file(folder / "ema.safetensors")
    assert source.provenance["model_sha256"] == sha256_file(folder / "model.safetensors")
    assert source.provenance["step"] == STEP and source.provenance["train_config"] == TRAIN_CONFIG
    no_ema = Path(shutil.copytree(folder, tmp_path / "no_ema"))
    (no_ema / "ema.safetensors").unlink()
    with pytest.raises(UserError, match="no ema.safetensors"):
        load_checkpoint_source(no_ema, ema=True)


def test_a_truncated_model_file_is_a_user_error_naming_it(run_copy):
    model_file = _checkpoint_folder(run_copy) / "model.safetensors"
    model_file.write_bytes(model_file.read_bytes()[:1000])
    with pytest.raises(UserError) as err:
        load_checkpoint_model(run_copy)
    assert err.value.path == str(model_file)


def test_a_bare_model_file_that_is_not_safetensors_is_a_user_error(run_copy):
    folder = _checkpoint_folder(run_copy)
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "files": {}}))  # no hash to catch it first
    (folder / "model.safetensors").write_bytes(b"not safetensors at all")
    with pytest.raises(UserError, match="not a readable safetensors") as err:
        load_checkpoint_model(folder / "model.safetensors")
    assert err.value.path == str(folder / "model.safetensors")


def test_weights_of_another_width_are_a_user_error(run_copy):
    folder = _checkpoint_folder(run_copy)
    meta = json.loads((folder / "meta.json").read_text())
    meta["model_config"]["ngf"] = 16  # the file holds ngf-8 weights
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="wrong shape"):
        load_checkpoint_model(folder)
    (folder / "meta.json").write_text("{ not json")
    with pytest.raises(UserError) as err:
        load_checkpoint_model(folder)
    assert err.value.path == str(folder / "meta.json")


@pytest.mark.slow
def test_cli_exports_ema_weights_and_verifies_by_default(small_run, tmp_path, capsys):
    folder = _checkpoint_folder(small_run)
    out = tmp_path / "model"
    code, err = _run(capsys, "export", small_run / "checkpoints" / "latest", "--ema", "--out", out)
    assert code == 0, err
    manifest = load_model_dir(out).manifest
    assert manifest.image_size == (64, 64) and manifest.correspondence.positions == 256
    assert manifest.provenance["weights"] == "ema" and manifest.provenance["step"] == STEP
    assert manifest.provenance["model_sha256"] == sha256_file(folder / "model.safetensors")
    assert "ONNX Runtime vs PyTorch: max abs error" in err  # --verify is on by default
    assert graph_problems(out) == []


def test_area_maskmix_exports_as_one_average_pool_and_matches_pytorch(tmp_path):
    """The edge presets' averaged maskmix (model.maskmix_downsample: area) becomes one AveragePool per
    graph, and ONNX Runtime reproduces PyTorch on real edge maps."""
    from mclrt.export.checkpoint import SourceModel, prepare_for_export
    from mclrt.training.config import load_model_config
    from mclrt.training.networks import build_networks

    config = load_model_config("nano", {"ngf": 4, "ndf": 4, "maskmix": True, "maskmix_downsample": "area"})
    source = SourceModel(prepare_for_export(build_networks(config, seed=0)["model"]), config, {"init": "test", "seed": 0})
    result = export_model_dir(source, tmp_path / "model", ExportOptions(verify=False))
    assert graph_problems(result.path) == []
    pools = {f: [n for n in m.graph.node if n.op_type == "AveragePool"] for f, m in _models(result.path).items()}
    assert all(len(nodes) >= 1 for nodes in pools.values()), pools
    report = check_parity(source.model, result.path, ParityOptions(batches=(1, 2)))
    assert report.ok, report.summary()


# --- the paper presets (big: slow, but CI runs them) ------------------------------------------------------


@pytest.mark.slow
@pytest.mark.xdist_group(name="ade20k")
def test_paper_ade20k_exports_checks_and_matches_pytorch_at_batch_1(ade20k_model_dir, ade20k_source):
    from mclrt.runtime.checks.model_check import check_model_dir, tensorrt_rtx_installed

    assert graph_problems(ade20k_model_dir) == []
    manifest = load_model_dir(ade20k_model_dir).manifest
    assert manifest.condition.maskmix and manifest.condition.channels == 151
    assert (manifest.correspondence.positions, manifest.correspondence.descriptor_width) == (4096, 2560)
    encoder_inputs = [t.name for t in manifest.graphs["exemplar_encoder"].inputs]
    assert encoder_inputs == ["exemplar", "exemplar_condition"]
    sizes = {f: (ade20k_model_dir / f).stat().st_size / 1e6 for f in GRAPHS}

    started = time.perf_counter()
    report = check_parity(ade20k_source.model, ade20k_model_dir, ParityOptions(batches=(1,)))
    print(f"paper-ade20k: files {sizes} MB; parity {report.summary()} in {time.perf_counter() - started:.0f} s; "
          f"ORT CPU s/image {report.ort_seconds_per_image}")
    assert report.ok, report.summary()

    check = check_model_dir(ade20k_model_dir)
    assert check.ok, [s for s in check.steps if s.status == "fail"]
    builds = [s for s in check.steps if s.step == "tensorrt-rtx-build"]
    assert all(s.status == ("pass" if tensorrt_rtx_installed() else "skip") for s in builds), builds


@pytest.mark.slow
@pytest.mark.xdist_group(name="ade20k")
def test_paper_deepfashion_exports_its_patch_warp(tmp_path):
    """The 4x4-patch warp (Cv = 48) and the pose condition: structure and batch-1 parity."""
    source = init_model("paper-deepfashion", 0)
    started = time.perf_counter()
    result = export_model_dir(source, tmp_path / "deepfashion", ExportOptions(verify=False))
    seconds = time.perf_counter() - started
    assert graph_problems(result.path) == []
    assert result.manifest.correspondence.value_width == 48
    assert result.manifest.condition.kind == "pose" and not result.manifest.condition.maskmix
    report = check_parity(source.model, result.path, ParityOptions(batches=(1,)))
    print(f"paper-deepfashion: export {seconds:.0f} s, files {result.file_bytes}; parity {report.summary()}")
    assert report.ok, report.summary()
