"""`mclrt info`: parameter counts and inference GFLOPs of a preset, without allocating its weights;
with `--model DIR`, what an exported model directory holds (runtime/model_info.py, no torch).

Everything is measured on the meta device (shapes only), so even the 1-TFLOP paper model is counted
in a couple of seconds on a laptop.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer


def preset_info(preset: str, config_path: Path | None = None) -> dict[str, Any]:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from mclrt.training.config import load_model_config
    from mclrt.training.networks import MCLNet, MultiscaleDiscriminator, ProjectionHeads, count_parameters

    overrides: dict[str, Any] = {}
    if config_path is not None:
        from mclrt.training.options import read_yaml

        overrides = dict(read_yaml(config_path).get("model", {}))
        preset = overrides.pop("preset", preset)
    cfg = load_model_config(preset, overrides)
    with torch.device("meta"):
        model = MCLNet(cfg).eval()
        discriminator = MultiscaleDiscriminator(cfg)
        heads = ProjectionHeads(cfg)
        size = cfg.image_size
        condition = torch.empty(1, cfg.label_nc, size, size)
        exemplar = torch.empty(1, 3, size, size)
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(condition, exemplar, condition if cfg.maskmix else None)
    scm = count_parameters(model.corr.scm) if model.corr.scm is not None else 0
    return {
        "preset": cfg.preset,
        "image_size": [size, size],
        "correspondence_resolution": [cfg.corr_size, cfg.corr_size],
        "positions": cfg.positions,
        "descriptor_width": cfg.descriptor_width,
        "params": {
            "correspondence": count_parameters(model.corr),
            "scm": scm,
            "correspondence_without_scm": count_parameters(model.corr) - scm,
            "generator": count_parameters(model.generator),
            "discriminator": count_parameters(discriminator),
            "projection_heads": count_parameters(heads),
        },
        "gflops": counter.get_total_flops() / 1e9,
        "config": cfg.to_dict(),
    }


def info(
    model: Optional[Path] = typer.Option(None, "--model", help="Describe this model directory (preset, precision, shapes, graphs, source) instead of a preset."),
    preset: Optional[str] = typer.Option(
        None, "--preset", help="Preset name (paper-ade20k, paper-celebahq-edge, paper-deepfashion, edge-small, nano; default nano)."
    ),
    config: Optional[Path] = typer.Option(None, "--config", help="A training YAML whose `model:` section overrides the preset."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Parameters and GFLOPs per image of a preset, or what a model directory (--model) holds."""
    if model is not None:
        if preset is not None or config is not None:
            from mclrt.runtime.errors import UserError

            raise UserError("give --model DIR or --preset/--config, not both")
        _print_model_dir(model, as_json)
        return
    data = preset_info(preset or "nano", config)
    if as_json:
        print(json.dumps(data, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{data['preset']}: {data['image_size'][0]}², correspondence {data['correspondence_resolution'][0]}²")
    table.add_column("network")
    table.add_column("parameters", justify="right")
    for name, count in data["params"].items():
        table.add_row(name, f"{count / 1e6:.2f} M")
    table.add_row("inference GFLOPs / image", f"{data['gflops']:.1f}")
    Console().print(table)


def _print_model_dir(path: Path, as_json: bool) -> None:
    from mclrt.runtime.model_dir import load_model_dir
    from mclrt.runtime.model_info import describe_model_dir

    data = describe_model_dir(load_model_dir(path))
    if as_json:
        print(json.dumps(data, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    cond = data["condition"]
    table = Table(title=f"{data['model']}: {data['preset']}, {data['precision']}, {data['image_size'][0]}x{data['image_size'][1]}", title_justify="left", show_header=False)
    table.add_column("")
    table.add_column("")
    table.add_row("condition", f"{cond['kind']}, {cond['channels']} channel(s), extractor {cond['extract'] or 'none'}" + (", maskmix" if cond["maskmix"] else ""))
    table.add_row("correspondence", f"{data['correspondence']['positions']} positions, descriptor {data['correspondence']['descriptor_width']}")
    for graph, g in data["graphs"].items():
        table.add_row(graph, f"{g['file']}: {g['bytes'] / 1e6:.1f} MB, {g['initializer_elements'] / 1e6:.2f} M weights, {g['nodes']} nodes")
    source = data["source"]
    origin = source["quantized_from"] and f"quantized from {source['quantized_from']}" or source["checkpoint"] or (source["init"] and f"--init {source['init']}")
    table.add_row("architecture", data["architecture"])
    if data["imported_from"]:
        files = ", ".join(data["imported_from"]["files"].values())
        table.add_row("imported from", f"{data['imported_from']['upstream']}: {files}")
    table.add_row("source", str(origin or "not recorded"))
    table.add_row("opset", str(data["opset"]))
    Console().print(table)
