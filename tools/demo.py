"""`make demo`: the committed demo model translates real photos' edges in the style of other photos.

    python -m mclrt.tools.demo [--model runtime/models/demo] [--out out/demo] [--photos DIR] [--overwrite]

The photos are the CC0 / public-domain / CC-BY ones that ship inside installed Python packages
(scikit-image, scikit-learn, matplotlib; see mclrt.runtime.inputs.package_photos), written to
OUT/photos/. The demo model was trained on them, so they show what it learned; `--photos DIR` (a
corpus written by `python -m mclrt.tools.fetch_photos`, `make photos`) adds rows with photos of its
held-out split, which training never saw. Each exemplar runs through `mclrt infer` (its Python entry
point, the same code as the command) on the conditions paired with it, and OUT/results.png gathers
one row per pair -- condition | exemplar | warped exemplar | output -- labelled on the left: which
photo the condition was drawn from, which photo is the exemplar, whether the exemplar is that very
photo (as given, or mirrored and shifted: the pseudo pairs of training and of `mclrt eval warp`) or
another photo, and whether each photo was a training photo or held out.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple


class Pair(NamedTuple):
    condition: str  # the photo the condition is drawn from
    exemplar: str  # the exemplar photo ("<name>~" is <name> mirrored and shifted)


MIRRORED = "~"
# Package photos (all of them training photos of the demo model): each condition with itself, mirrored,
# and with another photo's style.
PAIRS: tuple[Pair, ...] = (
    Pair("astronaut", "astronaut"),
    Pair("chelsea", "chelsea~"),
    Pair("coffee", "coffee~"),
    Pair("chelsea", "coffee"),
    Pair("grace_hopper", "astronaut"),
    Pair("rocket", "flower"),
)
HELDOUT_ROWS = 2  # photos of --photos' held-out split: each with itself mirrored, then the first with the second

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "runtime" / "models" / "demo"


def mirrored(rgb):
    """The photo flipped left-right and shifted by 1/8 of its width and 1/16 of its height (edges reflected)."""
    import cv2
    import numpy as np

    height, width = rgb.shape[:2]
    shift = np.float32([[1, 0, width // 8], [0, 1, height // 16]])
    return cv2.warpAffine(np.ascontiguousarray(rgb[:, ::-1]), shift, (width, height), borderMode=cv2.BORDER_REFLECT)


def heldout_photos(corpus: Path, count: int) -> dict[str, object]:
    """The first `count` photos (name order) of a fetch_photos corpus' held-out split, at most 768 px."""
    from mclrt.runtime.errors import UserError
    from mclrt.runtime.inputs.image_io import list_images, load_rgb

    folder = corpus / "heldout"
    if not (corpus / "manifest.json").is_file() or not folder.is_dir():
        raise UserError("is not a photo corpus (no manifest.json and heldout/; make one with `make photos`)", corpus)
    paths = list_images(folder)[:count]
    if len(paths) < count:
        raise UserError(f"holds {len(paths)} held-out photo(s); the demo shows {count}", folder)
    return {path.stem: load_rgb(path) for path in paths}


def pair_label(pair: Pair, heldout: set[str]) -> str:
    condition, exemplar = pair
    base = exemplar.removesuffix(MIRRORED)

    def split(name: str) -> str:
        return "HELD OUT" if name in heldout else "training photo"

    if base == condition:
        how = "the photo itself,\nmirrored + shifted" if exemplar.endswith(MIRRORED) else "the photo itself"
        return f"{condition}\n({split(condition)})\nexemplar: {how}"
    return f"{condition}\n({split(condition)})\nexemplar: {base}\n({split(base)})"


def run_demo(model_path: Path, out: Path, overwrite: bool = False, corpus: Path | None = None) -> Path:
    from mclrt.runtime.api import Result, Translator
    from mclrt.runtime.errors import UserError
    from mclrt.runtime.image_out import condition_to_rgb, encode_png, results_grid, write_png
    from mclrt.runtime.inputs.package_photos import package_photos
    from mclrt.runtime.inputs.preprocess import resize_photo
    from mclrt.runtime.model_dir import load_model_dir

    grid_path = out / "results.png"
    if grid_path.exists() and not overwrite:
        raise UserError("already exists (pass --overwrite to replace it)", grid_path)
    model = load_model_dir(model_path)
    extract = model.condition.extract or "none"
    photos = {photo.name: photo.rgb for photo in package_photos()}
    pairs = list(PAIRS)
    heldout: set[str] = set()
    if corpus is not None:
        extra = heldout_photos(corpus, HELDOUT_ROWS)
        heldout = set(extra)
        photos.update(extra)
        names = sorted(extra)
        pairs += [Pair(name, name + MIRRORED) for name in names] + [Pair(names[0], names[1])]
    missing = sorted({name.removesuffix(MIRRORED) for pair in pairs for name in pair} - set(photos))
    if missing:
        raise UserError(f"package photos not installed: {', '.join(missing)} (pip install 'mclrt[photos]')")
    for pair in pairs:
        if pair.exemplar.endswith(MIRRORED):
            photos[pair.exemplar] = mirrored(photos[pair.exemplar.removesuffix(MIRRORED)])

    out.mkdir(parents=True, exist_ok=True)
    photo_dir = out / "photos"
    photo_dir.mkdir(exist_ok=True)
    for name in {n for pair in pairs for n in pair}:
        path = photo_dir / f"{name.replace(MIRRORED, '_mirrored')}.png"
        if not path.exists() or overwrite:
            path.write_bytes(encode_png(photos[name]))

    by_exemplar: dict[str, list[str]] = defaultdict(list)
    for condition, exemplar in pairs:
        by_exemplar[exemplar].append(condition)

    # The Python API, as a notebook would use it: each exemplar encoded once, its conditions translated
    # from the photos themselves (the whole photo: fit stretch, as the grid's first columns show it).
    results: dict[tuple[str, str], Result] = {}
    with Translator(model, extract=extract, fit="stretch") as translator:
        for exemplar, conditions in by_exemplar.items():
            style = translator.encode(photos[exemplar])
            for condition in conditions:
                results[(condition, exemplar)] = translator.translate(photos[condition], style)
    rows = []
    for condition, exemplar in pairs:
        result = results[(condition, exemplar)]
        rows.append([condition_to_rgb(result.condition.map, model.condition.kind), resize_photo(photos[exemplar], model.image_size),
                     result.warped, result.image])
    labels = [pair_label(pair, heldout) for pair in pairs]
    write_png(grid_path, results_grid(rows, row_labels=labels), overwrite=overwrite)
    return grid_path


def main(argv: list[str] | None = None) -> int:
    from mclrt.runtime.errors import UserError

    parser = argparse.ArgumentParser(prog="python -m mclrt.tools.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--out", type=Path, default=Path("out/demo"))
    parser.add_argument(
        "--photos", type=Path, default=None, help="a fetch_photos corpus: add rows with photos of its held-out split"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT/results.png")
    args = parser.parse_args(argv)
    try:
        grid = run_demo(args.model, args.out, args.overwrite, args.photos)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {grid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
