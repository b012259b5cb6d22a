"""`mclrt info`: parameter counts and inference GFLOPs of a preset, without allocating its weights.

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
    preset: str = typer.Option("nano", "--preset", help="Preset name (paper-ade20k, paper-celebahq-edge, paper-deepfashion, edge-small, nano)."),
    config: Optional[Path] = typer.Option(None, "--config", help="A training YAML whose `model:` section overrides the preset."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Parameters of each network and GFLOPs per image of the inference path."""
    data = preset_info(preset, config)
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
