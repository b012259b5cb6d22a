"""`mclrt import cocosnet`: CoCosNet's released checkpoints → an mclrt checkpoint folder
(training/cocosnet_import.py does the work; torch is imported only when the command runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

import_app = typer.Typer(help="Bring models trained elsewhere: convert their checkpoints into mclrt checkpoint folders.", no_args_is_help=True)


@import_app.command("cocosnet")
def import_cocosnet_command(
    ckpt_dir: Optional[Path] = typer.Argument(None, help="Upstream's checkpoints/<name>/ folder, holding latest_net_Corr.pth and latest_net_G.pth."),
    preset: str = typer.Option(..., "--preset", help="paper-ade20k, paper-celebahq-edge or paper-deepfashion: the dataset the checkpoint was trained on."),
    out: Path = typer.Option(..., "--out", help="Checkpoint folder to write (model.safetensors + meta.json), for `mclrt export` or `mclrt train --init-from`."),
    corr: Optional[Path] = typer.Option(None, "--corr", help="netCorr file, where it is not CKPT_DIR/<epoch>_net_Corr.pth."),
    generator: Optional[Path] = typer.Option(None, "--generator", help="netG file, where it is not CKPT_DIR/<epoch>_net_G.pth."),
    discriminator: Optional[Path] = typer.Option(None, "--discriminator", help="netD file, where it is not CKPT_DIR/<epoch>_net_D.pth (optional: imported where present, for `mclrt train --init-from`)."),
    epoch: str = typer.Option("latest", "--epoch", help="Read <epoch>_net_*.pth (upstream's --which_epoch), e.g. 90."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing checkpoint folder written by an earlier import."),
    json_output: bool = typer.Option(False, "--json", help="Print the checkpoint folder, preset and upstream files (names, SHA-256) as one JSON object."),
) -> None:
    """Import CoCosNet's netCorr + netG (microsoft/CoCosNet) as a CoCosNet (no SCM, no MCL) checkpoint, and its netD where present."""
    from mclrt.runtime.errors import UserError
    from mclrt.runtime.fsutil import check_output_location
    from mclrt.training.cocosnet_import import ARCHITECTURE, PRESETS, discriminator_file, import_cocosnet, upstream_files

    if preset not in PRESETS:
        raise UserError(f"--preset must be one of {', '.join(PRESETS)}, not {preset!r}")
    if not epoch or "/" in epoch or epoch.startswith("."):
        raise UserError(f"--epoch {epoch!r} is not an epoch label (latest, or a number such as 90)")
    files = upstream_files(ckpt_dir, corr, generator, epoch)
    d_path = discriminator_file(ckpt_dir, discriminator, epoch)
    if out.exists() and overwrite and not (out / "meta.json").is_file():
        raise UserError("exists and is not a checkpoint folder; refusing to replace it", out)
    check_output_location(out, [f.path for f in files] + ([d_path] if d_path else []), replaces_folder=True)
    written = import_cocosnet(files, preset, out, overwrite=overwrite, discriminator=d_path)
    from mclrt.training.checkpoint import read_meta

    imported = read_meta(written)["imported_from"]
    d_info = imported.get("discriminator")
    if json_output:
        import json

        print(json.dumps({"checkpoint": str(written), "preset": preset, "architecture": ARCHITECTURE, "files": imported["files"], "discriminator": d_info}))
        return
    print(f"wrote {written}: {ARCHITECTURE}, {preset} with use_scm: false, pono: unbiased "
          f"(from {', '.join(f.path.name for f in files)})")
    if d_info is None:
        print(f"discriminator: none (no {epoch}_net_D.pth{' in ' + str(ckpt_dir) if ckpt_dir else ''}); `mclrt train --init-from` starts it fresh")
        return
    print(f"discriminator: {d_info['file']} mapped, {d_info['mapped_tensors']} tensors ({d_info['mapped_parameters']:,} parameters)")
    if d_info["dropped_tensors"]:
        print(f"discriminator: dropped CoCosNet's heads with no mclrt counterpart: {d_info['dropped']} "
              f"({d_info['dropped_tensors']} tensors, {d_info['dropped_parameters']:,} parameters)")
    if d_info["fresh"]:
        print(f"discriminator: not in {d_info['file']}, start fresh: {', '.join(d_info['fresh'])} ({d_info['fresh_parameters']:,} parameters)")
