"""Compile the CorrespondenceSoftmax Triton kernel to cubin and PTX for named GPU architectures -- no GPU needed.

    python -m mclrt.tools.compile_kernels --arch 86 87 89 90 110 --out kernels/
    python -m mclrt.tools.compile_kernels --arch 87 --model runtime/models/demo --dtype fp16 --out kernels/

Per (architecture, precision, model geometry): a cubin (machine code, assembled by Triton's bundled
ptxas), the PTX it was assembled from (written at PTX ISA 8.5 where the architecture allows, so a
CUDA 12.6 / JetPack 6 driver can JIT it; sm_110 needs 9.0), and a JSON sidecar holding what a
launcher needs: entry name, parameter order (q, k, v, out), block size, dynamic shared memory, the
grid rule, PTX ISA and ptxas version. The geometries come from the presets (default: all of them) or
from exported model directories (`--model`). These are the files to ship to a machine that cannot
run Triton (a Jetson: point MCLRT_KERNEL_DIR at the folder); the launcher loads the cubin matching
the device and falls back to the PTX only where none does.

Architectures the installed Triton cannot assemble (e.g. sm_110 with Triton 3.6, whose ptxas is
CUDA 12.8) are skipped with the reason; the command fails only if no architecture is left.

argparse rather than typer: `--arch 86 87 89` (several values after one flag) is what people type.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from mclrt.runtime.errors import UserError
from mclrt.runtime.fsutil import atomic_path

DEFAULT_ARCHS = (86, 87, 89, 90, 110)
DTYPES = ("fp32", "fp16")


@dataclass(frozen=True)
class Geometry:
    """The shapes and attributes one compiled kernel is specialized on (batch excepted)."""

    positions: int
    descriptor_width: int
    value_width: int
    scale: float = 100.0
    mask_negative: bool = False


def preset_geometries(names: list[str] | None) -> dict[Geometry, list[str]]:
    """Geometry -> the presets that share it (ADE20k and CelebA-HQ, for one, have the same)."""
    from mclrt.training.config import PRESETS

    unknown = sorted(set(names or ()) - set(PRESETS))
    if unknown:
        raise UserError(f"unknown preset(s) {', '.join(unknown)}; choose from {', '.join(PRESETS)}")
    geometries: dict[Geometry, list[str]] = {}
    for name in names or list(PRESETS):
        preset = PRESETS[name]
        geometry = Geometry(
            positions=preset.positions,
            descriptor_width=preset.descriptor_width,
            value_width=preset.value_width,
            scale=preset.corr_scale,
            mask_negative=preset.mask_negative,
        )
        geometries.setdefault(geometry, []).append(name)
    return geometries


def model_geometries(paths: list[Path]) -> dict[Geometry, list[str]]:
    """Geometry -> model directories, read from each directory's mclrt.json (hashes verified)."""
    from mclrt.runtime.model_dir import load_model_dir

    geometries: dict[Geometry, list[str]] = {}
    for path in paths:
        corr = load_model_dir(path).manifest.correspondence
        geometry = Geometry(corr.positions, corr.descriptor_width, corr.value_width, corr.scale, corr.mask_negative)
        geometries.setdefault(geometry, []).append(str(path))
    return geometries


def compile_all(
    archs: list[int], dtypes: list[str], geometries: dict[Geometry, list[str]], out: Path, overwrite: bool = False
) -> list[Path]:
    """Write out/sm_<arch>/<stem>.cubin, .ptx and .json for every combination; returns the paths
    written. Architectures must have passed `supported_archs`."""
    from mclrt.runtime.kernels.correspondence_triton import KernelSpec, compile_spec

    written = []
    for arch in archs:
        for dtype in dtypes:
            for geometry, sources in geometries.items():
                spec = KernelSpec(
                    dtype=dtype,
                    positions=geometry.positions,
                    exemplar_positions=geometry.positions,  # condition and exemplar share the image size
                    descriptor_width=geometry.descriptor_width,
                    value_width=geometry.value_width,
                    scale=geometry.scale,
                    mask_negative=geometry.mask_negative,
                )
                kernel = compile_spec(arch, spec)
                folder = out / f"sm_{arch}"
                ptx_path, cubin_path = folder / f"{spec.stem}.ptx", folder / f"{spec.stem}.cubin"
                metadata = {**kernel.metadata(), "ptx": ptx_path.name, "cubin": cubin_path.name, "for": sources}
                with atomic_path(cubin_path, overwrite=overwrite) as tmp:
                    tmp.write_bytes(kernel.cubin)
                with atomic_path(ptx_path, overwrite=overwrite) as tmp:
                    tmp.write_text(kernel.ptx, encoding="utf-8")
                with atomic_path(folder / f"{spec.stem}.json", overwrite=overwrite) as tmp:
                    tmp.write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
                written += [cubin_path, ptx_path]
    return written


def supported_archs(archs: list[int]) -> tuple[list[int], dict[int, str]]:
    """(the archs the installed Triton can compile for, {skipped arch: why})."""
    from mclrt.runtime.kernels.correspondence_triton import unsupported_reason

    skipped = {arch: reason for arch in archs if (reason := unsupported_reason(arch)) is not None}
    return [arch for arch in archs if arch not in skipped], skipped


def _arch(text: str) -> int:
    value = text.lower().removeprefix("sm_").removeprefix("sm")
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"not a compute capability: {text!r} (e.g. 86, 87, 89, 90, 110)")
    return int(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mclrt.tools.compile_kernels", description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", type=_arch, nargs="+", default=list(DEFAULT_ARCHS), help="compute capabilities, e.g. 86 87 89 90 110")
    parser.add_argument("--dtype", choices=DTYPES, nargs="+", default=list(DTYPES))
    parser.add_argument("--preset", nargs="+", help="presets to compile for (default: all, unless --model is given)")
    parser.add_argument("--model", type=Path, nargs="+", help="exported model directories to compile for")
    parser.add_argument("--out", type=Path, required=True, help="output directory (sm_<arch>/ folders are made in it)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing cubin/PTX files")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    try:
        geometries: dict[Geometry, list[str]] = {}
        if args.preset or not args.model:
            geometries.update(preset_geometries(args.preset))
        for geometry, sources in model_geometries(args.model or []).items():
            geometries.setdefault(geometry, []).extend(sources)
        archs, skipped = supported_archs(list(dict.fromkeys(args.arch)))
        for arch, reason in skipped.items():
            print(f"skipped sm_{arch}: {reason}", file=sys.stderr)
        if not archs:
            raise UserError(f"the installed Triton can compile none of {', '.join(f'sm_{a}' for a in args.arch)}")
        written = compile_all(archs, args.dtype, geometries, args.out, overwrite=args.overwrite)
    except UserError as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
