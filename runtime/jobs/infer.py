"""The work of `mclrt infer`: condition files -> image files, through the Python API (runtime/api.py).

The exemplar is encoded once; the translator then runs per batch of conditions. For each condition
`<stem>` it writes `<stem>.png`, and with `save_warp` also
- `<stem>_warp.png`: the exemplar warped onto the condition by the correspondence, and
- `<stem>_corr.png`: the correspondence itself, three labelled panels: "exemplar key" (the exemplar
  under a colour key, x -> red, y -> green), "correspondence" (each pixel of the condition in the
  colour of the exemplar position it matched: smooth colours = a coherent match, speckle = an
  uncertain one), and "condition" (the map the model saw);
and with `save_condition`
- `<stem>_cond.png`: the condition map the model saw, after extraction, polarity and fitting, at the
  model's size (edge models: white lines on black, so `--cond x_cond.png --extract none` reads it back).
All output names of the run are planned before the first write: two inputs whose outputs would share
a path (`x.jpg` and `x_warp.jpg` with `save_warp`, `a.png` and `a.jpg`) are refused up front with
one line naming both, whatever `overwrite` says. Every file is written under a temporary name and
renamed, and existing files are never replaced unless `overwrite` is given; the checks of the output
(exists, writable, apart from every input) run before any work. A run that stops -- a bad condition, a full disk, Ctrl-C -- says how many outputs
were written and which were not; `skip_existing` resumes it. `shard=(K, N)` takes this machine's
share of the inputs (see `shard_of`), so N machines translate one folder together.

`mclrt infer` and the demo (tools/demo.py) call `run_infer`. No torch here, directly or indirectly.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mclrt.runtime.api import Style, Translator
from mclrt.runtime.errors import OutputWriteError, UserError
from mclrt.runtime.fsutil import check_output_location
from mclrt.runtime.image_out import condition_as_input, condition_to_rgb, labelled, side_by_side, to_uint8_rgb, write_png
from mclrt.runtime.inputs.fit import check_keep_aspect, restore_aspect
from mclrt.runtime.inputs.preprocess import ConditionSource, find_condition_sources
from mclrt.runtime.model_dir import ModelDir
from mclrt.runtime.pipeline import EncodedExemplar, correspondence_colours


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


# The side files infer writes next to `<stem>.png`; eval images never counts them as generated images.
SIDE_SUFFIXES = ("_warp", "_corr", "_cond")


def output_names(stem: str, save_warp: bool, save_condition: bool = False) -> dict[str, str]:
    """What each output of a condition is ('image', 'warp', 'corr', 'cond') -> its file name."""
    names = {"image": f"{stem}.png"}
    if save_warp:
        names |= {"warp": f"{stem}_warp.png", "corr": f"{stem}_corr.png"}
    if save_condition:
        names["cond"] = f"{stem}_cond.png"
    return names


def output_paths(out: Path, stem: str, save_warp: bool, save_condition: bool = False) -> list[Path]:
    return [out / name for name in output_names(stem, save_warp, save_condition).values()]


def plan_outputs(out: Path, sources: list[ConditionSource], save_warp: bool, save_condition: bool = False) -> None:
    """Every output name of the run, before the first write: two inputs that would write one path are refused,
    in one line naming both (never one replacing the other's output, whatever --overwrite says)."""
    owners: dict[str, tuple[ConditionSource, str]] = {}
    for source in sources:
        for what, name in output_names(source.stem, save_warp, save_condition).items():
            key = os.path.normcase(name)
            if key in owners:
                other, other_what = owners[key]
                raise UserError(
                    f"{other.path} ({_role(other_what)}) and {source.path} ({_role(what)}) would both be written to {name}; "
                    "rename one of them (nothing was written)",
                    out / name,
                )
            owners[key] = (source, what)


def _role(what: str) -> str:
    return {"image": "its image", "warp": "its --save-warp warp", "corr": "its --save-warp correspondence", "cond": "its --save-condition map"}[what]


def shard_of(stem: str, count: int) -> int:
    """The shard that owns the condition whose outputs are named `stem`.

    A hash of the stem, not a position in a sorted list: a file's shard does not depend on which
    other files exist, so files added or removed while machines work (or between a run and its
    re-run) never move the others to another shard -- no input is done twice or missed. And the stem
    names the outputs, so two shards never write the same file. Shards are equal in expectation,
    not exactly (for 1000 inputs on 4 shards, within a few percent).
    """
    return int.from_bytes(hashlib.sha256(stem.encode("utf-8")).digest()[:8], "big") % count


def run_infer(
    *,
    model_path: Path,
    cond: str,
    exemplar_path: Path,
    out: Path,
    batch: int = 1,
    save_warp: bool = False,
    backend: str = "auto",
    continue_on_error: bool = False,
    extract: str = "auto",
    exemplar_cond: Path | None = None,
    overwrite: bool = False,
    threads: int = 0,
    skip_existing: bool = False,
    shard: tuple[int, int] | None = None,
    fit: str = "crop",
    keep_aspect: bool = False,
    invert: str = "auto",
    alpha: str | None = None,
    save_condition: bool = False,
    recursive: bool = False,
) -> InferSummary:
    """The work of `mclrt infer`, callable from Python (the demo and tests use it).

    Ctrl-C ends the run between two files: the summary says what was written (`interrupted`).
    """
    from rich.console import Console

    check_keep_aspect(fit, keep_aspect)
    translator = Translator(model_path, backend, threads=threads, extract=extract, fit=fit, invert=invert, alpha=alpha)  # runners open on first use
    model = translator.model
    spec = model.condition
    found = find_condition_sources(cond, spec, extract, recursive=recursive)
    plan_outputs(out, found, save_warp, save_condition)  # all of them: the shards of one folder share --out
    summary = InferSummary(inputs=len(found), shard=shard)
    sources = found if shard is None else [source for source in found if shard_of(source.stem, shard[1]) == shard[0]]
    summary.assigned = len(sources)
    given = [model_path, exemplar_path, *([exemplar_cond] if exemplar_cond else []), *(s.path for s in found)]
    given += [s.subset for s in found if s.subset is not None]
    given += [Path(cond)] if Path(cond).is_dir() else []
    check_output_location(out, given)
    skip_existing = skip_existing or shard is not None  # a shard re-run picks up where it stopped
    if skip_existing and not overwrite:
        summary.skipped = [s.stem for s in sources if all(p.exists() for p in output_paths(out, s.stem, save_warp, save_condition))]
        finished = set(summary.skipped)
        sources = [s for s in sources if s.stem not in finished]
    _check_outputs(out, sources, found, exemplar_path, save_warp, overwrite, skip_existing, save_condition)
    if not sources:
        return summary

    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    done: set[str] = set()  # stems translated or reported failed
    loop_start = None
    try:
        with translator:
            start = time.perf_counter()
            style = translator.encode(exemplar_path, exemplar_cond)
            summary.encode_seconds = time.perf_counter() - start
            colours = _colour_exemplar(model, style) if save_warp else None
            summary.backend = translator.backend
            loop_start = time.perf_counter()
            with _progress(errors, len(sources), summary.backend) as progress:
                task = progress.add_task("translating", total=len(sources))
                for first in range(0, len(sources), batch):
                    chunk = sources[first : first + batch]
                    good, maps, places = [], [], []
                    for source in chunk:
                        try:
                            condition = translator.condition(source)
                            maps.append(condition.map)
                            places.append(condition.placement if keep_aspect else None)
                            good.append(source)
                        except UserError as err:
                            if not continue_on_error:
                                raise UserError(f"{err.problem}; {_stopped(summary, sources)}", err.path) from err
                            summary.failed.append(str(err))
                            done.add(source.stem)
                            progress.console.print(f"error: {err} (skipped)", markup=False)
                    if good:
                        images, warped = translator.translate_maps(np.stack(maps), style)
                        corr = translator.translate_maps(np.stack(maps), colours[0])[1] if colours else None
                        for i, source in enumerate(good):
                            try:
                                summary.written += _write_outputs(
                                    out, source, model, maps[i], style.rgb, images[i], warped[i],
                                    None if corr is None else (colours[1], corr[i]), overwrite, skip_existing, places[i],
                                    save_condition,
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
    overwrite: bool, skip_existing: bool, save_condition: bool = False,
) -> None:
    """Refuse before any work, rather than halfway, when an output exists or would replace an input."""
    if out.exists() and not out.is_dir():
        raise UserError("exists and is not a folder", out)
    inputs = {p.resolve() for p in [exemplar, *(s.path for s in found), *(s.subset for s in found if s.subset is not None)]}
    for source in sources:
        for path in output_paths(out, source.stem, save_warp, save_condition):
            if path.resolve() in inputs:
                raise UserError("would replace an input of this run; choose another --out", path)
            if path.exists() and not (overwrite or skip_existing):
                raise UserError("already exists (pass --overwrite to replace it, or --skip-existing to keep it)", path)


def _colour_exemplar(model: ModelDir, style: Style) -> tuple[EncodedExemplar, np.ndarray]:
    """The exemplar's keys with position colours as values (see `correspondence_colours`), and the colour key."""
    values, picture = correspondence_colours(model)
    return EncodedExemplar(keys=style.encoded.keys, values=values.astype(style.encoded.values.dtype)), picture


CORR_LABELS = ("exemplar key", "correspondence", "condition")


def _write_outputs(
    out, source, model, condition, exemplar_rgb, image, warped, corr, overwrite, skip_existing, where=None, save_condition=False
) -> list[Path]:
    """Write a condition's outputs; the main image last, so its presence means the set is complete.

    With `skip_existing` (resuming a stopped run) files already there are kept, not replaced. With
    `where` (--keep-aspect) the image and the warp are written at the input's aspect ratio.
    """
    names = output_names(source.stem, corr is not None, save_condition)
    as_input = (lambda rgb: restore_aspect(rgb, where)) if where is not None else (lambda rgb: rgb)
    pictures = {}
    if save_condition:
        pictures[out / names["cond"]] = lambda: condition_as_input(condition, model.condition.kind)
    if corr is not None:
        key_picture, corr_map = corr

        def corr_panels() -> np.ndarray:
            key = (0.5 * exemplar_rgb.astype(np.float32) + 0.5 * to_uint8_rgb(key_picture).astype(np.float32)).astype(np.uint8)
            panels = [key, to_uint8_rgb(corr_map), condition_to_rgb(condition, model.condition.kind)]
            return side_by_side([labelled(panel, label) for panel, label in zip(panels, CORR_LABELS)])

        pictures |= {out / names["warp"]: lambda: as_input(to_uint8_rgb(warped)), out / names["corr"]: corr_panels}
    pictures[out / names["image"]] = lambda: as_input(to_uint8_rgb(image))
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
