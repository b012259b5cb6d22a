"""The correspondence ablation of MCL-Net's Table 4, at whatever budget you can afford.

    python -m mclrt.tools.ablation --config training/configs/demo.yaml --steps 300 \
        --photos train_photos/ --holdout held_out/ --out runs/ablation [section.key=value ...]

Trains three variants from one config, with the same steps, seed and data, differing only in what
Table 4 varies:
- `baseline`: no marginal contrastive loss (loss.mcl 0) and no self-correlation map (model.use_scm false);
- `+MCL`: the marginal contrastive loss on (the config's weight, 1.0 if it has none);
- `+MCL+SCM`: both, the full MCL-Net.
Each is exported (`mclrt export`, parity-checked) and measured with `mclrt eval warp` on the held-out
photos (flip-shift and crop pseudo pairs). One table compares the three warps with the baselines of
those pairs (unwarped exemplar, mean colour); `--json` prints the same as one object, and OUT/ablation.json
keeps it. The paper's numbers (DeepFashion, warped-exemplar L1): 80.14 -> 75.27 -> 73.72.

`--steps N` is the whole budget: N - N // 3 steps at a constant rate, then N // 3 decaying to 0 (the
demo config's 2:1 shape). `--photos` sets data.root (a `photos` config; omit it for the config's own
data, e.g. the package photos). Extra `section.key=value` arguments override the config for all three.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import List, Optional

import typer

from mclrt.tools._cli import run_tool

VARIANTS = {
    "baseline": {"mcl": False, "scm": False},
    "+MCL": {"mcl": True, "scm": False},
    "+MCL+SCM": {"mcl": True, "scm": True},
}
REPORT_NAME = "ablation.json"

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def variant_overrides(name: str, mcl_weight: float) -> list[str]:
    variant = VARIANTS[name]
    return [f"loss.mcl={mcl_weight if variant['mcl'] else 0.0}", f"model.use_scm={str(variant['scm']).lower()}"]


def run_ablation(
    config_path: Path,
    steps: int,
    holdout: str,
    out: Path,
    photos: Path | None = None,
    overrides: list[str] | None = None,
    threads: int = 1,
    verify: bool = True,
    say=print,
) -> dict:
    """Train, export and evaluate the three variants; return the report (also written to OUT/ablation.json)."""
    from mclrt.export.checkpoint import load_checkpoint_source
    from mclrt.export.onnx_export import ExportOptions, export_model_dir
    from mclrt.runtime.errors import UserError
    from mclrt.runtime.fsutil import atomic_write_bytes
    from mclrt.runtime.model_dir import load_model_dir
    from mclrt.training.checkpoint import resolve_checkpoint
    from mclrt.training.eval.photos import load_photos
    from mclrt.training.eval.warp import evaluate_warp
    from mclrt.training.options import load_train_config
    from mclrt.training.train import train

    if out.exists():
        raise UserError("already exists; the ablation writes three runs and models there, give a new folder", out)
    common = list(overrides or [])
    if photos is not None:
        if not photos.is_dir():
            raise UserError("no such folder" if not photos.exists() else "not a folder", photos)
        common.append(f"data.root={photos}")
    common += [f"schedule.steps={steps - steps // 3}", f"schedule.decay_steps={steps // 3}", "schedule.epochs=null", "schedule.decay_epochs=0"]
    base = load_train_config(config_path, common)
    if photos is not None and base.data.kind != "photos":
        raise UserError(f"--photos needs a config with data.kind photos, this one has {base.data.kind!r}", config_path)
    mcl_weight = base.loss.mcl if base.loss.mcl > 0 else 1.0
    # Read the held-out photos once, before hours of training, so a bad file fails now.
    size = base.model_config().image_size
    held_out = load_photos(holdout, (size, size))

    report = {
        "config": str(config_path),
        "overrides": common,
        "steps": steps,
        "seed": base.train.seed,
        "holdout": holdout,
        "holdout_photos": [p.name for p in held_out],
        "variants": {},
    }
    for name in VARIANTS:
        config = load_train_config(config_path, [*common, *variant_overrides(name, mcl_weight), f"log.out={out / 'runs' / name}"])
        say(f"[{name}] training {steps} steps (loss.mcl {config.loss.mcl:g}, model.use_scm {config.model_config().use_scm})")
        started = time.perf_counter()
        train(config, out=out / "runs" / name)
        train_seconds = time.perf_counter() - started
        model_dir = out / "models" / name
        export_model_dir(load_checkpoint_source(resolve_checkpoint(out / "runs" / name)), model_dir, ExportOptions(verify=verify))
        warp = evaluate_warp(load_model_dir(model_dir), held_out, threads=threads).to_json_dict()
        say(f"[{name}] trained in {train_seconds:.0f} s; warp L1 {warp['summary']['all']['model']['l1']:.2f}")
        report["variants"][name] = {"model": str(model_dir), "train_seconds": round(train_seconds, 1), "summary": warp["summary"]}
        # The baselines depend only on the pairs, the same for every variant.
        report["baselines"] = {kind: {m: warp["summary"][kind][m] for m in ("unwarped", "mean_colour")} for kind in warp["summary"]}
    atomic_write_bytes(out / REPORT_NAME, (json.dumps(report, indent=2) + "\n").encode())
    return report


def print_table(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"correspondence ablation: {report['steps']} steps, seed {report['seed']}, {len(report['holdout_photos'])} held-out photo(s), all pairs")
    table.add_column("warp")
    table.add_column("L1 ↓ (0-255)", justify="right")
    table.add_column("PSNR ↑ (dB)", justify="right")
    table.add_column("SSIM ↑", justify="right")
    rows = [(name, variant["summary"]["all"]["model"]) for name, variant in report["variants"].items()]
    rows += [("unwarped exemplar", report["baselines"]["all"]["unwarped"]), ("exemplar's mean colour", report["baselines"]["all"]["mean_colour"])]
    for name, scores in rows:
        table.add_row(name, f"{scores['l1']:.2f}", f"{scores['psnr']:.2f}", f"{scores['ssim']:.4f}")
    Console().print(table)


@app.command()
def main_command(
    overrides: Optional[List[str]] = typer.Argument(None, help="Config overrides section.key=value for all three variants."),
    config: Path = typer.Option(..., "--config", help="Training YAML (e.g. training/configs/demo.yaml)."),
    steps: int = typer.Option(..., "--steps", min=3, help="Training steps per variant (the whole budget, decay included)."),
    holdout: str = typer.Option(..., "--holdout", help="Held-out photos for `mclrt eval warp`: a folder or a quoted glob."),
    out: Path = typer.Option(..., "--out", help="New folder for the runs, the models and ablation.json."),
    photos: Optional[Path] = typer.Option(None, "--photos", help="Training photos (sets data.root; default: the config's data)."),
    threads: int = typer.Option(1, "--threads", min=0, help="ONNX Runtime threads for the evaluation (training uses train.threads)."),
    json_output: bool = typer.Option(False, "--json", help="Print the report as one JSON object instead of a table."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Check each export's ONNX Runtime vs PyTorch parity (as `mclrt export`)."),
) -> None:
    """Train baseline, +MCL and +MCL+SCM with one budget and seed, export each, and compare their warps."""
    say = (lambda message: print(message, file=sys.stderr)) if json_output else print
    report = run_ablation(config, steps, holdout, out, photos, overrides, threads, verify, say)
    if json_output:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)


def main(argv: list[str] | None = None) -> int:
    return run_tool(app, argv)


if __name__ == "__main__":
    sys.exit(main())
