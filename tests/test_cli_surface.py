"""One CLI a person can guess: every command names its model with --model, answers --json, shows
plain flags without a type, and the docs site's command reference (docs/reference/cli.md) is exactly what
--help shows.

Walks the real typer app; runs real commands on the nano model directory where a behaviour is claimed.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from mclrt.runtime.cli import main
from mclrt.runtime.errors import UserError
from mclrt.tools import cli_reference

# Commands that make a model directory rather than read one: export writes it from a checkpoint,
# train writes checkpoints, `import cocosnet` writes one from upstream files; `eval images` scores folders
# of images, whatever made them. Every other command reads a model directory, through --model.
MAKES_NO_MODEL_DIR_INPUT = {"mclrt export", "mclrt train", "mclrt eval images", "mclrt import cocosnet"}


def _help(capsys, monkeypatch, *command: str) -> str:
    monkeypatch.setenv("COLUMNS", "250")  # wide enough that rich never truncates an option name
    assert main([*command, "--help"]) == 0
    return capsys.readouterr().out


def _help_option_names(text: str) -> set[str]:
    """Option names in the first columns of the rendered Options panel."""
    names = set()
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r"\s{2,}", line.strip("│ \t")) if c.strip()]
        for cell in cells[:2]:
            cell = cell.lstrip("* ").strip()
            if re.fullmatch(r"--[a-z0-9-]+(,--[a-z0-9-]+)*", cell):
                names.update(cell.split(","))
    names.discard("--help")
    return names


def test_command_reference_is_generated_from_the_app_and_up_to_date():
    assert cli_reference.main(["--check"]) == 0, "run: python -m mclrt.tools.cli_reference"


def test_command_reference_check_fails_on_a_stale_or_missing_page(tmp_path, capsys):
    stale = tmp_path / "cli.md"
    stale.write_text(cli_reference.render().replace("| `--json` |", "| `--jsonx` |", 1), encoding="utf-8")
    assert cli_reference.main(["--check", "--out", str(stale)]) == 1
    assert cli_reference.main(["--check", "--out", str(tmp_path / "absent.md")]) == 1
    assert cli_reference.main(["--out", str(stale)]) == 0 and cli_reference.main(["--check", "--out", str(stale)]) == 0


def test_command_reference_lists_exactly_the_options_each_help_shows(capsys, monkeypatch):
    page = cli_reference.REFERENCE.read_text(encoding="utf-8")
    blocks = re.split(r"^## `(mclrt[^`]*)`$", page, flags=re.M)[1:]
    documented = {blocks[i]: set(re.findall(r"`(--[a-z0-9-]+)`", blocks[i + 1])) for i in range(0, len(blocks), 2)}
    listed = {name for name, _ in cli_reference.commands()}
    assert set(documented) == listed and len(listed) >= 11
    for name in listed:
        shown = _help_option_names(_help(capsys, monkeypatch, *name.split()[1:]))
        assert shown == documented[name], (name, shown ^ documented[name])


def test_every_command_takes_model_the_same_way_and_answers_json():
    for name, command in cli_reference.commands():
        options = {opt: param for param in cli_reference.visible_options(command) for opt in param.opts}
        assert "--json" in options and options["--json"].is_flag, f"{name} has no --json flag"
        if name in MAKES_NO_MODEL_DIR_INPUT:
            assert "--model" not in options
            continue
        assert "--model" in options, f"{name} does not take --model"
        model = options["--model"]
        assert model.opts == ["--model"] and not model.is_flag and model.type_descriptor.annotation is Path or "Path" in str(
            model.type_descriptor.annotation
        ), name
        visible_arguments = [p for p in command.params if p.param_type_name == "argument" and not p.hidden]
        assert visible_arguments == [], f"{name} also takes a visible positional argument"


def test_no_help_shows_bool_beside_a_flag(capsys, monkeypatch):
    for name, _ in [("mclrt", None), ("mclrt engine", None), *cli_reference.commands()]:
        text = _help(capsys, monkeypatch, *name.split()[1:])
        assert "<bool>" not in text, name


def test_version(capsys):
    from importlib.metadata import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"mclrt {version('mclrt')}"


def test_one_spelling_of_a_compute_capability():
    from mclrt.runtime.trt.compat import normalize_compute_capability

    for spelling in ("sm86", "SM86", "8.6", "86", " Sm86 "):
        assert normalize_compute_capability(spelling) == "sm86"
    assert normalize_compute_capability("12.0") == "sm120"
    assert normalize_compute_capability("auto") == "auto" and normalize_compute_capability("ampere-plus") == "ampere-plus"


def test_check_refuses_an_unknown_target_and_the_old_positional_form_still_works(nano_model_dir, capsys):
    assert main(["check", "--model", str(nano_model_dir), "--target", "turbo", "--no-trt"]) == 2
    assert "--target 'turbo'" in capsys.readouterr().err
    assert main(["check", str(nano_model_dir), "--no-trt", "--json"]) == 0
    captured = capsys.readouterr()
    assert "deprecated" in captured.err and json.loads(captured.out)["ok"] is True


def test_a_quantize_output_with_two_model_directories_says_to_pick_one(nano_model_dir, tmp_path, capsys):
    from mclrt.runtime.model_dir import load_model_dir

    for encoding in ("trt", "cpu"):
        shutil.copytree(nano_model_dir, tmp_path / "int8" / encoding)
    with pytest.raises(UserError, match=r"pick one, --model .*cpu \(ONNX Runtime\) or .*trt \(TensorRT\)"):
        load_model_dir(tmp_path / "int8")
    assert main(["bench", "--model", str(tmp_path / "int8")]) == 2
    assert "pick one" in capsys.readouterr().err


def test_info_describes_a_model_directory(nano_model_dir, capsys):
    assert main(["info", "--model", str(nano_model_dir), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["preset"] == "nano" and data["precision"] == "fp32" and data["image_size"] == [128, 128]
    assert data["condition"]["kind"] == "edge"
    for graph in ("exemplar_encoder", "translator"):
        onnx_file = Path(nano_model_dir) / data["graphs"][graph]["file"]
        assert data["graphs"][graph]["bytes"] == onnx_file.stat().st_size
        # float32 weights: the initializer elements account for most of the file
        assert 0.5 < 4 * data["graphs"][graph]["initializer_elements"] / onnx_file.stat().st_size <= 1.0


def test_doctor_on_a_cpu_only_machine_exits_0_and_says_what_it_can_do(capsys):
    from mclrt.runtime.trt import device

    if device.probe().has_device:
        pytest.skip("this machine has a CUDA device")
    assert main(["doctor", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["gpu"] is False and report["summary"].startswith("no GPU found")
    assert "CPUExecutionProvider" in report["facts"]["ONNX Runtime"]
    assert "usable cores" in report["facts"]["CPU"]
    assert report["facts"]["Build TensorRT plans here"].startswith(("yes", "no"))
    assert main(["doctor"]) == 0
    assert "no GPU found" in capsys.readouterr().out


def test_train_answers_json_with_its_run_and_checkpoint(tmp_path, capsys):
    import yaml

    from train_fixtures import tiny_config_dict, write_photo_folder

    photos = write_photo_folder(tmp_path / "photos", count=3, size=72)
    config = tmp_path / "tiny.yaml"
    data = tiny_config_dict(photos, tmp_path / "run", model={"preset": "nano", "image_size": 64, "ngf": 4, "ndf": 4}, train={"threads": 1})
    config.write_text(yaml.safe_dump(data))
    assert main(["train", "--config", str(config), "--max-steps", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["step"] == 1 and Path(report["run"]) == tmp_path / "run"
    assert (Path(report["checkpoint"]) / "model.safetensors").is_file()


def test_doctor_selftest_exits_1_when_a_build_it_was_asked_for_fails(tmp_path, capsys):
    """Non-zero only when something asked for is broken: here TensorRT cannot parse the translator."""
    import importlib.util

    import onnx
    from onnx import helper

    from model_dir_fixtures import build_tiny_model_dir, rewrite_graph

    if importlib.util.find_spec("tensorrt_rtx") is None and importlib.util.find_spec("tensorrt") is None:
        pytest.skip("TensorRT is not installed: the self-test has nothing to build with")
    model_dir = build_tiny_model_dir(tmp_path / "tiny")
    translator = onnx.load(model_dir / "translator.onnx")
    tanh = next(n for n in translator.graph.node if n.op_type == "Tanh")
    coin = helper.make_node("Bernoulli", [tanh.input[0]], ["coin"], name="coin_flip")  # ONNX Runtime runs it, TensorRT does not
    translator.graph.node.insert(list(translator.graph.node).index(tanh), coin)
    tanh.input[0] = "coin"
    rewrite_graph(model_dir, "translator.onnx", translator)
    code = main(["doctor", "--selftest", "--model", str(model_dir), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["selftest"]["passed"] is False
    failed = [row for row in report["selftest"]["rows"] if row["verdict"] == "FAIL"]
    assert failed and all(row["check"].startswith("build") for row in failed)
    assert any("translator.onnx" in row["detail"] for row in failed)
