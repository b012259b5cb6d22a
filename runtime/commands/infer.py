"""`mclrt infer`: translate condition maps into images in the style of one exemplar photo.

The exemplar is encoded once; the translator then runs per batch of conditions. For each condition
`<stem>` it writes `<stem>.png`, and with --save-warp also
- `<stem>_warp.png`: the exemplar warped onto the condition by the correspondence, and
- `<stem>_corr.png`: the correspondence itself, three panels: the exemplar under a colour key
  (x -> red, y -> green), the condition's correspondence map (each pixel in the colour of the
  exemplar position it matched: smooth colours = a coherent match, speckle = an uncertain one),
  and the condition itself.
Every file is written under a temporary name and renamed, and existing files are never replaced
unless --overwrite is given; the checks of the output (exists, writable, apart from every input) run
before any work. A run that stops -- a bad condition, a full disk, Ctrl-C -- says how many outputs
were written and which were not; `--skip-existing` resumes it. `--shard K/N` takes this machine's
share of the inputs (see `shard_of`), so N machines translate one folder together.

No torch here, directly or indirectly: this command runs where only the runtime is installed.
"""

from __future__ import annotations

import enum
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from mclrt.runtime.backends import Backend, RunnerOptions, describe
from mclrt.runtime.errors import EXIT_INCOMPLETE, EXIT_INTERRUPTED, OutputWriteError, UserError
from mclrt.runtime.fsutil import check_output_location
from mclrt.runtime.image_out import condition_to_rgb, side_by_side, to_uint8_rgb, write_png
from mclrt.runtime.model_dir import ModelDir, load_model_dir
from mclrt.runtime.pipeline import EncodedExemplar, TranslationPipeline, correspondence_colours
from mclrt.runtime.inputs.fit import Fit, check_keep_aspect, describe_fit, restore_aspect
from mclrt.runtime.inputs.preprocess import ConditionSource, check_extract, find_condition_sources, load_condition_placed, load_exemplar
from mclrt.runtime.runners import RunnerError
from mclrt.runtime.threads import cap_threads


class Extract(str, enum.Enum):
    auto = "auto"
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
    inputs: int = 0  # conditions found, before --shard
    shard: tuple[int, int] | None = None  # (K, N) of --shard K/N
    assigned: int = 0  # conditions of this run (its shard), skipped ones included
    skipped: list[str] = field(default_factory=list)  # stems whose outputs all existed (--skip-existing)
    translated: list[str] = field(default_factory=list)  # stems whose outputs this run wrote
    not_written: list[str] = field(default_factory=list)  # stems not translated when the run stopped
    interrupted: bool = False

    def shard_line(self) -> str:
        k, n = self.shard or (0, 1)
        return (
            f"shard {k}/{n}: {self.assigned} of {self.inputs} input(s); {self.images} translated, "
            f"{len(self.skipped)} already done, {len(self.failed)} failed, {len(self.not_written)} not reached"
        )

    def to_json_dict(self, out: Path) -> dict:
        """What `infer --json` prints: the counts above, the files written and, with --shard, the shard."""
        return {
            "out": str(out),
            "images": self.images, "written": [str(p) for p in self.written], "failed": self.failed,
            "skipped": self.skipped, "not_written": self.not_written, "interrupted": self.interrupted,
            "inputs": self.inputs, "assigned": self.assigned,
            "shard": None if self.shard is None else {"index": self.shard[0], "count": self.shard[1]},
            "seconds": self.seconds, "encode_seconds": self.encode_seconds, "backend": self.backend,
        }


def output_paths(out: Path, stem: str, save_warp: bool) -> list[Path]:
    names = [f"{stem}.png"] + ([f"{stem}_warp.png", f"{stem}_corr.png"] if save_warp else [])
    return [out / name for name in names]


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' -> (K, N), K counted from 0 like a SLURM array index (--array=0-<N-1>)."""
    parts = text.split("/")
    if len(parts) == 2 and all(part.strip().isdigit() for part in parts):
        k, n = int(parts[0]), int(parts[1])
        if n >= 1 and 0 <= k < n:
            return k, n
    raise UserError(f"must be K/N with 0 <= K < N (e.g. 0/4 ... 3/4); got {text!r}", "--shard")


def shard_of(stem: str, count: int) -> int:
    """The shard that owns the condition whose outputs are named `stem`.

    A hash of the stem, not a position in a sorted list: a file's shard does not depend on which
    other files exist, so files added or removed while machines work (or between a run and its
    re-run) never move the others to another shard -- no input is done twice or missed. And the stem
    names the outputs, so two shards never write the same file. Shards are equal in expectation,
    not exactly (for 1000 inputs on 4 shards, within a few percent).
    """
    return int.from_bytes(hashlib.sha256(stem.encode("utf-8")).digest()[:8], "big") % count


def infer(
    model: Path = typer.Option(..., "--model", help="Model directory written by `mclrt export`."),
    cond: str = typer.Option(..., "--cond", help="Condition file, folder of them, or a quoted glob pattern."),
    exemplar: Path = typer.Option(..., "--exemplar", help="Exemplar photo whose appearance the outputs take."),
    out: Path = typer.Option(..., "--out", help="Output folder (created if missing)."),
    batch: int = typer.Option(1, "--batch", min=1, help="Conditions per translator run."),
    save_warp: bool = typer.Option(False, "--save-warp", help="Also write <stem>_warp.png and <stem>_corr.png."),
    backend: Backend = typer.Option(Backend.auto, "--backend", help="auto: the fastest backend that works here."),
    continue_on_error: bool = typer.Option(
        False, "--continue-on-error", help="Report and skip bad conditions; exit with code 3 at the end if any failed."
    ),
    extract: Extract = typer.Option(
        Extract.auto,
        "--extract",
        help="Make conditions from photos: canny/face edges or a pose map. Default auto: the model's own extractor (mclrt.json) "
        "for photos, condition maps (black-and-white edge images, label PNGs, .npy, pose files) read as they are; none: --cond holds maps only.",
    ),
    exemplar_cond: Optional[Path] = typer.Option(
        None, "--exemplar-cond", help="The exemplar's own condition map (maskmix models; default: extracted from the photo)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
    threads: int = typer.Option(0, "--threads", min=0, help="CPU threads per graph (0: one per core; at most the cores available)."),
    skip_existing: bool = typer.Option(
        False, "--skip-existing", help="Skip conditions whose outputs all exist: resume an interrupted or partly failed run."
    ),
    shard: Optional[str] = typer.Option(
        None, "--shard", metavar="K/N", help="Translate only shard K (0..N-1) of N, so N machines share a folder (implies --skip-existing)."
    ),
    fit: Fit = typer.Option(
        Fit.crop, "--fit", help="Inputs of another aspect ratio than the model's: crop (centre), pad, or stretch."
    ),
    keep_aspect: bool = typer.Option(
        False, "--keep-aspect", help="Write outputs at each condition's aspect ratio (with --fit pad or stretch)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the summary (outputs, failures, shard, timings) as one JSON object."),
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
        threads=cap_threads(threads),
        skip_existing=skip_existing,
        shard=None if shard is None else parse_shard(shard),
        fit=fit.value,
        keep_aspect=keep_aspect,
    )
    if json_output:
        print(json.dumps({**summary.to_json_dict(out), "fit": fit.value, "keep_aspect": keep_aspect}))
    else:
        console.print(describe_fit(fit.value, keep_aspect), highlight=False, soft_wrap=True)
        _print_summary(console, summary, out)
    if summary.interrupted:
        raise SystemExit(EXIT_INTERRUPTED)
    if summary.failed:
        raise SystemExit(EXIT_INCOMPLETE)


def _print_summary(console, summary: InferSummary, out: Path) -> None:
    def say(text: str) -> None:
        console.print(text, highlight=False, soft_wrap=True)

    rate = summary.images / summary.seconds if summary.seconds > 0 else 0.0
    if summary.backend:
        say(
            f"{summary.images} image(s) in {summary.seconds:.2f} s ({rate:.1f} images/s; "
            f"exemplar encoded once in {summary.encode_seconds:.2f} s) on {summary.backend} -> {out}"
        )
    elif not summary.interrupted:  # nothing left to translate: every output of this run existed
        say(f"nothing to do: the outputs of all {summary.assigned} condition(s) exist in {out}")
    if summary.skipped and summary.shard is None:
        say(f"{len(summary.skipped)} condition(s) already had their outputs (skipped)")
    if summary.shard is not None:
        say(summary.shard_line())
    if summary.interrupted:
        say(_interrupted_line(summary))
    elif summary.failed:
        say(f"{len(summary.failed)} condition(s) failed and were skipped")


def _interrupted_line(summary: InferSummary) -> str:
    def names(stems: list[str]) -> str:
        return ", ".join(stems[:5]) + (f", ... ({len(stems) - 5} more)" if len(stems) > 5 else "")

    return (
        f"interrupted: {summary.images} condition(s) written ({names(summary.translated) or 'none'}); {len(summary.not_written)} not written "
        f"({names(summary.not_written)}); run the same command with --skip-existing to finish"
    )


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
    extract: str = "auto",
    exemplar_cond: Path | None = None,
    overwrite: bool = False,
    threads: int = 0,
    skip_existing: bool = False,
    shard: tuple[int, int] | None = None,
    fit: str = "crop",
    keep_aspect: bool = False,
) -> InferSummary:
    """The work of `mclrt infer`, callable from Python (the demo and tests use it).

    Ctrl-C ends the run between two files: the summary says what was written (`interrupted`).
    """
    from rich.console import Console

    check_keep_aspect(fit, keep_aspect)
    model = load_model_dir(model_path)
    spec, size = model.condition, model.image_size
    check_extract(extract, spec)
    found = find_condition_sources(cond, spec, extract)
    summary = InferSummary(inputs=len(found), shard=shard)
    sources = found if shard is None else [source for source in found if shard_of(source.stem, shard[1]) == shard[0]]
    summary.assigned = len(sources)
    given = [model_path, exemplar_path, *([exemplar_cond] if exemplar_cond else []), *(s.path for s in found)]
    given += [s.subset for s in found if s.subset is not None]
    given += [Path(cond)] if Path(cond).is_dir() else []
    check_output_location(out, given)
    skip_existing = skip_existing or shard is not None  # a shard re-run picks up where it stopped
    if skip_existing and not overwrite:
        summary.skipped = [s.stem for s in sources if all(p.exists() for p in output_paths(out, s.stem, save_warp))]
        finished = set(summary.skipped)
        sources = [s for s in sources if s.stem not in finished]
    _check_outputs(out, sources, found, exemplar_path, save_warp, overwrite, skip_existing)
    if not sources:
        return summary
    exemplar = load_exemplar(exemplar_path, spec, size, extract, exemplar_cond, fit)

    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    done: set[str] = set()  # stems translated or reported failed
    loop_start = None
    try:
        with TranslationPipeline.open(model, RunnerOptions(backend=backend, threads=threads)) as pipeline:
            start = time.perf_counter()
            encoded = pipeline.encode(exemplar.tensor, exemplar.condition)
            summary.encode_seconds = time.perf_counter() - start
            colours = _colour_exemplar(model, encoded) if save_warp else None
            summary.backend = describe(pipeline.translator)
            loop_start = time.perf_counter()
            with _progress(errors, len(sources), summary.backend) as progress:
                task = progress.add_task("translating", total=len(sources))
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
                                raise UserError(f"{err.problem}; {_stopped(summary, sources)}", err.path) from err
                            summary.failed.append(str(err))
                            done.add(source.stem)
                            progress.console.print(f"error: {err} (skipped)", markup=False)
                    if good:
                        result = pipeline.translate(np.stack(maps), encoded)
                        corr = pipeline.translate(np.stack(maps), colours[0]) if colours else None
                        for i, source in enumerate(good):
                            try:
                                summary.written += _write_outputs(
                                    out, source, model, maps[i], exemplar.rgb, result.images[i], result.warped[i],
                                    None if corr is None else (colours[1], corr.warped[i]), overwrite, skip_existing, places[i],
                                )
                            except OutputWriteError as err:  # a full disk fails every file after it: stop
                                raise OutputWriteError(f"{err.problem}; {_stopped(summary, sources)}", err.path) from err
                            summary.images += 1
                            summary.translated.append(source.stem)
                            done.add(source.stem)
                    progress.advance(task, len(chunk))
    except KeyboardInterrupt:  # while loading, encoding or translating: every file on disk is complete
        summary.interrupted = True
        summary.not_written = [source.stem for source in sources if source.stem not in done]
    except RunnerError as err:
        raise UserError(str(err), model.path) from err
    finally:
        summary.seconds = time.perf_counter() - loop_start if loop_start is not None else 0.0
    return summary


def _stopped(summary: InferSummary, sources: list[ConditionSource]) -> str:
    return (
        f"stopped with {summary.images} of {len(sources)} condition(s) written "
        "(--continue-on-error skips bad ones; --skip-existing resumes without redoing them)"
    )


def _check_outputs(
    out: Path, sources: list[ConditionSource], found: list[ConditionSource], exemplar: Path, save_warp: bool,
    overwrite: bool, skip_existing: bool,
) -> None:
    """Refuse before any work, rather than halfway, when an output exists or would replace an input."""
    if out.exists() and not out.is_dir():
        raise UserError("exists and is not a folder", out)
    inputs = {p.resolve() for p in [exemplar, *(s.path for s in found), *(s.subset for s in found if s.subset is not None)]}
    for source in sources:
        for path in output_paths(out, source.stem, save_warp):
            if path.resolve() in inputs:
                raise UserError("would replace an input of this run; choose another --out", path)
            if path.exists() and not (overwrite or skip_existing):
                raise UserError("already exists (pass --overwrite to replace it, or --skip-existing to keep it)", path)


def _colour_exemplar(model: ModelDir, encoded: EncodedExemplar) -> tuple[EncodedExemplar, np.ndarray]:
    """The exemplar's keys with position colours as values (see `correspondence_colours`), and the colour key."""
    values, picture = correspondence_colours(model)
    return EncodedExemplar(keys=encoded.keys, values=values.astype(encoded.values.dtype)), picture


def _write_outputs(out, source, model, condition, exemplar_rgb, image, warped, corr, overwrite, skip_existing, where=None) -> list[Path]:
    """Write a condition's outputs; the main image last, so its presence means the set is complete.

    With `skip_existing` (resuming a stopped run) files already there are kept, not replaced. With
    `where` (--keep-aspect) the image and the warp are written at the input's aspect ratio.
    """
    paths = output_paths(out, source.stem, corr is not None)
    as_input = (lambda rgb: restore_aspect(rgb, where)) if where is not None else (lambda rgb: rgb)
    pictures = {paths[0]: lambda: as_input(to_uint8_rgb(image))}
    if corr is not None:
        key_picture, corr_map = corr

        def corr_panels() -> np.ndarray:
            key = (0.5 * exemplar_rgb.astype(np.float32) + 0.5 * to_uint8_rgb(key_picture).astype(np.float32)).astype(np.uint8)
            return side_by_side([key, to_uint8_rgb(corr_map), condition_to_rgb(condition, model.condition.kind)])

        pictures = {paths[1]: lambda: as_input(to_uint8_rgb(warped)), paths[2]: corr_panels, **pictures}
    written = []
    for path, picture in pictures.items():
        if skip_existing and not overwrite and path.exists():
            continue
        write_png(path, picture(), overwrite=overwrite)
        written.append(path)
    return written


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
