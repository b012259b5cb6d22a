"""Options that several commands share, defined once so their names, help and behaviour never drift.

`--alpha` / `--alpha-colour`: every command that reads a person's pictures (infer, video, eval warp,
eval images, quantize) refuses a picture with transparent pixels unless `--alpha flatten` puts it on
`--alpha-colour` (white by default). Each command declares

    alpha: Alpha = ALPHA, alpha_colour: str = ALPHA_COLOUR

and passes `alpha_background(alpha, alpha_colour)` on: None (refuse) or the colour to flatten onto,
checked before any work, which is what `load_rgb(path, alpha=...)` and the Python API take.
"""

from __future__ import annotations

import enum

import typer

from mclrt.runtime.inputs.image_io import parse_colour


class Alpha(str, enum.Enum):
    refuse = "refuse"
    flatten = "flatten"


ALPHA = typer.Option(Alpha.refuse, "--alpha", help="Pictures with transparent pixels: refuse, or flatten them onto --alpha-colour.")
ALPHA_COLOUR = typer.Option("white", "--alpha-colour", help="The background of --alpha flatten: white, black, grey or #rrggbb.")


def alpha_background(alpha: Alpha, colour: str) -> str | None:
    """None (transparent pictures are refused) or the colour to flatten them onto; a bad colour is one
    line (UserError) before any work."""
    if alpha is not Alpha.flatten:
        return None
    parse_colour(colour)
    return colour


__all__ = ["ALPHA", "ALPHA_COLOUR", "Alpha", "alpha_background"]
