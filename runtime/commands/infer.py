"""`mclrt infer`: translate condition maps into images in the style of one exemplar photo.

The exemplar is encoded once; the translator then runs per batch of conditions. For each condition
`<stem>` it writes `<stem>.png`, and with --save-warp also
- `<stem>_warp.png`: the exemplar warped onto the condition by the correspondence, and
- `<stem>_corr.png`: the correspondence itself, three panels: the exemplar under a colour key
  (x -> red, y -> green), the condition's correspondence map (each pixel in the colour of the
  exemplar position it matched: smooth colours = a coherent match, speckle = an uncertain one),
  and the condition itself.
Every file is written under a temporary name and renamed, and existing files are never replaced
unless --overwrite is given; the check for existing outputs runs before any work.

No torch here, directly or indirectly: this command runs where only the runtime is installed.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from mclrt.runtime.backends import Backend, describe
from mclrt.runtime.errors import UserError
from mclrt.runtime.image_out import condition_to_rgb, side_by_side, to_uint8_rgb, write_png
from mclrt.runtime.model_dir import ModelDir, load_model_dir
from mclrt.runtime.pipeline import EncodedExemplar, TranslationPipeline, correspondence_colours
from mclrt.runtime.inputs.fit import Fit, check_keep_aspect, describe_fit, restore_aspect
from mclrt.runtime.inputs.preprocess import ConditionSource, check_extract, find_condition_sources, load_condition_placed, load_exemplar
from mclrt.runtime.runners import RunnerError


class Extract(str, enum.Enum):
    none = "none"
    canny = "canny"
    face = "face"
    pose = "pose"


@dataclass
class InferSummary:
    written: list[Path] = field(default_factory=list)
    images: int = 0
    failed: list[str] = field(default_factory=list)  # one "path: problem" line per skipped condition
    seconds: float = 0.0  # reading conditions, translating and writing outputs (the per-image work)
    encode_seconds: float = 0.0
    backend: str = ""  # what ran the graphs, e.g. "onnxruntime (CPUExecutionProvider)"


def output_paths(out: Path, stem: str, save_warp: bool) -> list[Path]:
    names = [f"{stem}.png"] + ([f"{stem}_warp.png", f"{stem}_corr.png"] if save_warp else [])
    return [out / name for name in names]


def infer(
    model: Path = typer.Option(..., "--model", help="Model directory written by `mclrt export`."),
    cond: str = typer.Option(..., "--cond", help="Condition file, folder of them, or a quoted glob pattern."),
    exemplar: Path = typer.Option(..., "--exemplar", help="Exemplar photo whose appearance the outputs take."),
    out: Path = typer.Option(..., "--out", help="Output folder (created if missing)."),
    batch: int = typer.Option(1, "--batch", min=1, help="Conditions per translator run."),
    save_warp: bool = typer.Option(False, "--save-warp", help="Also write <stem>_warp.png and <stem>_corr.png."),
    backend: Backend = typer.Option(Backend.auto, "--backend", help="auto: the fastest backend that works here."),
    continue_on_error: bool = typer.Option(
        False, "--continue-on-error", help="Report and skip bad conditions; exit with code 2 at the end if any failed."
    ),
    extract: Extract = typer.Option(
        Extract.none, "--extract", help="Make conditions from photos: canny/face edges or a pose map (none: --cond holds condition maps)."
    ),
    exemplar_cond: Optional[Path] = typer.Option(
        None, "--exemplar-cond", help="The exemplar's own condition map (maskmix models; default: extracted from the photo)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
    threads: int = typer.Option(0, "--threads", min=0, help="CPU threads per graph (0: one per core)."),
    fit: Fit = typer.Option(
        Fit.crop, "--fit", help="Inputs of another aspect ratio than the model's: crop (centre), pad, or stretch."
    ),
    keep_aspect: bool = typer.Option(
        False, "--keep-aspect", help="Write outputs at each condition's aspect ratio (with --fit pad or stretch)."
    ),
) -> None:
    """Translate condition maps into images that look like the exemplar."""
    from rich.console import Console

    console = Console()
    summary = run_infer(
        model_path=model,
        cond=cond,
        exemplar_path=exemplar,
        out=out,
        batch=batch,
        save_warp=save_warp,
        backend=backend,
        continue_on_error=continue_on_error,
        extract=extract.value,
        exemplar_cond=exemplar_cond,
        overwrite=overwrite,
        threads=threads,
        fit=fit.value,
        keep_aspect=keep_aspect,
    )
    console.print(describe_fit(fit.value, keep_aspect), highlight=False, soft_wrap=True)
    rate = summary.images / summary.seconds if summary.seconds > 0 else 0.0
    console.print(
        f"{summary.images} image(s) in {summary.seconds:.2f} s ({rate:.1f} images/s; "
        f"exemplar encoded once in {summary.encode_seconds:.2f} s) on {summary.backend} -> {out}",
        highlight=False,
        soft_wrap=True,
    )
    if summary.failed:
        console.print(f"{len(summary.failed)} condition(s) failed and were skipped", highlight=False, soft_wrap=True)
        raise SystemExit(UserError.exit_code)


def run_infer(
    *,
    model_path: Path,
    cond: str,
    exemplar_path: Path,
    out: Path,
    batch: int = 1,
    save_warp: bool = False,
    backend: Backend = Backend.auto,
    continue_on_error: bool = False,
    extract: str = "none",
    exemplar_cond: Path | None = None,
    overwrite: bool = False,
    threads: int = 0,
    fit: str = "crop",
    keep_aspect: bool = False,
) -> InferSummary:
    """The work of `mclrt infer`, callable from Python (the demo and tests use it)."""
    from rich.console import Console

    check_keep_aspect(fit, keep_aspect)
    model = load_model_dir(model_path)
    spec, size = model.condition, model.image_size
    check_extract(extract, spec)
    sources = find_condition_sources(cond, spec, extract)
    _check_outputs(out, sources, save_warp, overwrite)
    exemplar = load_exemplar(exemplar_path, spec, size, extract, exemplar_cond, fit)

    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    summary = InferSummary()
    try:
        with TranslationPipeline.open(model, backend, threads) as pipeline:
            start = time.perf_counter()
            encoded = pipeline.encode(exemplar.tensor, exemplar.condition)
            summary.encode_seconds = time.perf_counter() - start
            colours = _colour_exemplar(model, encoded) if save_warp else None
            summary.backend = describe(pipeline.translator)
            with _progress(errors, len(sources), summary.backend) as progress:
                task = progress.add_task("translating", total=len(sources))
                loop_start = time.perf_counter()
                for first in range(0, len(sources), batch):
                    chunk = sources[first : first + batch]
                    good, maps, places = [], [], []
                    for source in chunk:
                        try:
                            condition_map, where = load_condition_placed(source, spec, size, extract, fit)
                            maps.append(condition_map)
                            places.append(where if keep_aspect else None)
                            good.append(source)
                        except UserError as err:
                            if not continue_on_error:
                                raise
                            summary.failed.append(str(err))
                            progress.console.print(f"error: {err} (skipped)", markup=False)
                    if good:
                        result = pipeline.translate(np.stack(maps), encoded)
                        corr = pipeline.translate(np.stack(maps), colours[0]) if colours else None
                        for i, source in enumerate(good):
                            summary.written += _write_outputs(
                                out, source, model, maps[i], exemplar.rgb, result.images[i], result.warped[i],
                                None if corr is None else (colours[1], corr.warped[i]), overwrite, places[i],
                            )
                            summary.images += 1
                    progress.advance(task, len(chunk))
                summary.seconds = time.perf_counter() - loop_start
    except RunnerError as err:
        raise UserError(str(err), model.path) from err
    return summary


def _check_outputs(out: Path, sources: list[ConditionSource], save_warp: bool, overwrite: bool) -> None:
    """Refuse before any work, rather than halfway, when an output already exists."""
    if out.exists() and not out.is_dir():
        raise UserError("exists and is not a folder", out)
    if overwrite:
        return
    for source in sources:
        for path in output_paths(out, source.stem, save_warp):
            if path.exists():
                raise UserError("already exists (pass --overwrite to replace it)", path)


def _colour_exemplar(model: ModelDir, encoded: EncodedExemplar) -> tuple[EncodedExemplar, np.ndarray]:
    """The exemplar's keys with position colours as values (see `correspondence_colours`), and the colour key."""
    values, picture = correspondence_colours(model)
    return EncodedExemplar(keys=encoded.keys, values=values.astype(encoded.values.dtype)), picture


def _write_outputs(out, source, model, condition, exemplar_rgb, image, warped, corr, overwrite, where=None) -> list[Path]:
    paths = output_paths(out, source.stem, corr is not None)
    as_input = (lambda rgb: restore_aspect(rgb, where)) if where is not None else (lambda rgb: rgb)
    write_png(paths[0], as_input(to_uint8_rgb(image)), overwrite=overwrite)
    if corr is not None:
        key_picture, corr_map = corr
        write_png(paths[1], as_input(to_uint8_rgb(warped)), overwrite=overwrite)
        key = (0.5 * exemplar_rgb.astype(np.float32) + 0.5 * to_uint8_rgb(key_picture).astype(np.float32)).astype(np.uint8)
        panels = [key, to_uint8_rgb(corr_map), condition_to_rgb(condition, model.condition.kind)]
        write_png(paths[2], side_by_side(panels), overwrite=overwrite)
    return paths


def _progress(console, total: int, backend: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    # A live bar only on a terminal: in logs and pipes it would be noise (the summary says it all).
    return Progress(
        TextColumn(f"[bold]translating[/] on {backend}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
        transient=False,
    )
