"""`make demo`: the committed demo model translates real photos' edges in the style of other photos.

    python -m mclrt.tools.demo [--model runtime/models/demo] [--out out/demo] [--overwrite]

The photos are the CC0 / public-domain / CC-BY ones that ship inside installed Python packages
(scikit-image, scikit-learn, matplotlib; see mclrt.runtime.inputs.package_photos), written to
OUT/photos/. Each exemplar runs through `mclrt infer` (its Python entry point, the same code as the
command) on the conditions paired with it, and OUT/results.png gathers one row per pair:
condition | exemplar | warped exemplar | output. Rows pair a photo with itself (what the model was
trained on) and with other photos (swapped exemplars).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

# (condition photo, exemplar photo): every condition once with itself, then with swapped exemplars.
PAIRS: tuple[tuple[str, str], ...] = (
    ("astronaut", "astronaut"),
    ("astronaut", "chelsea"),
    ("chelsea", "chelsea"),
    ("chelsea", "coffee"),
    ("coffee", "grace_hopper"),
    ("grace_hopper", "astronaut"),
    ("rocket", "flower"),
)

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "runtime" / "models" / "demo"


def run_demo(model_path: Path, out: Path, overwrite: bool = False) -> Path:
    import numpy as np

    from mclrt.runtime.errors import UserError
    from mclrt.runtime.image_out import condition_to_rgb, encode_png, results_grid, write_png
    from mclrt.runtime.inputs.image_io import load_rgb
    from mclrt.runtime.commands.infer import run_infer
    from mclrt.runtime.model_dir import load_model_dir
    from mclrt.runtime.inputs.package_photos import package_photos
    from mclrt.runtime.inputs.preprocess import condition_from_photo, resize_photo

    grid_path = out / "results.png"
    if grid_path.exists() and not overwrite:
        raise UserError("already exists (pass --overwrite to replace it)", grid_path)
    model = load_model_dir(model_path)
    extract = model.condition.extract or "none"
    photos = {photo.name: photo for photo in package_photos()}
    missing = sorted({name for pair in PAIRS for name in pair} - set(photos))
    if missing:
        raise UserError(f"package photos not installed: {', '.join(missing)} (pip install 'mclrt[photos]')")

    out.mkdir(parents=True, exist_ok=True)
    photo_dir = out / "photos"
    photo_dir.mkdir(exist_ok=True)
    for name in {n for pair in PAIRS for n in pair}:
        path = photo_dir / f"{name}.png"
        if not path.exists():
            path.write_bytes(encode_png(photos[name].rgb))

    by_exemplar: dict[str, list[str]] = defaultdict(list)
    for condition, exemplar in PAIRS:
        by_exemplar[exemplar].append(condition)

    rows = []
    size = model.image_size
    with tempfile.TemporaryDirectory(dir=out, prefix=".demo-") as scratch:
        results: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
        for exemplar, conditions in by_exemplar.items():
            target = Path(scratch) / exemplar
            for condition in conditions:  # one call per condition keeps the file names unambiguous
                run_infer(
                    model_path=model_path,
                    cond=str(photo_dir / f"{condition}.png"),
                    exemplar_path=photo_dir / f"{exemplar}.png",
                    out=target,
                    save_warp=True,
                    extract=extract,
                    overwrite=True,
                )
                results[(condition, exemplar)] = (
                    load_rgb(target / f"{condition}_warp.png"),
                    load_rgb(target / f"{condition}.png"),
                )
        for condition, exemplar in PAIRS:
            cond_map = condition_from_photo(photos[condition].rgb, extract, size)
            warped, output = results[(condition, exemplar)]
            rows.append(
                [
                    condition_to_rgb(cond_map, model.condition.kind),
                    resize_photo(photos[exemplar].rgb, size),
                    warped,
                    output,
                ]
            )
    write_png(grid_path, results_grid(rows), overwrite=overwrite)
    return grid_path


def main(argv: list[str] | None = None) -> int:
    from mclrt.runtime.errors import UserError

    parser = argparse.ArgumentParser(prog="python -m mclrt.tools.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--out", type=Path, default=Path("out/demo"))
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT/results.png")
    args = parser.parse_args(argv)
    try:
        grid = run_demo(args.model, args.out, args.overwrite)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {grid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
