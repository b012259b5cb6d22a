"""The text files of CoCosNet's dataset layouts: split lists and exemplar retrieval lists.

* A split list (`train.txt`, `val.txt`) names one sample per line.
* A retrieval list (`ade20k_ref.txt`, `celebahq_ref.txt`, `deepfashion_ref.txt`, and `*_ref_test.txt`
  for validation) gives each sample its exemplars, most similar first:
  `<name>,<ref1>,...,<refK>` -- comma-separated, as CoCosNet's published files and its loaders.
  Whitespace-separated lines (`<name> <ref1> ... <refK>`) are read too. The first reference is the
  "easy" exemplar, the last the "hard" one. `deepfashion_self_pair.txt` has the same format.

Blank lines are skipped; backslashes (the published DeepFashion files were written on Windows) become
slashes. A later line for the same name replaces an earlier one, as in CoCosNet's dict-building loaders.
Every problem is a `UserError` naming the file and, where there is one, the line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mclrt.runtime.errors import UserError


@dataclass(frozen=True)
class ReferenceList:
    """A parsed retrieval (or self-pair) list: name -> references, with line numbers for messages."""

    path: Path
    references: dict[str, list[str]] = field(default_factory=dict)
    line_of: dict[str, int] = field(default_factory=dict)

    def __contains__(self, name: str) -> bool:
        return name in self.references

    def easy(self, name: str) -> str:
        return self.references[name][0]

    def hard(self, name: str) -> str:
        return self.references[name][-1]

    def where(self, name: str) -> str:
        return f"line {self.line_of[name]}" if name in self.line_of else "(no line)"


def read_lines(path: str | os.PathLike, what: str) -> list[tuple[int, str]]:
    """(line number, stripped text) of the non-blank lines; `what` says in the error what the file is for."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no such file ({what})" if not path.exists() else f"not a file ({what})", path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"is not UTF-8 text ({what}): {err.reason} at byte {err.start}", path) from err
    return [(number, line.strip().replace("\\", "/")) for number, line in enumerate(text.splitlines(), 1) if line.strip()]


def read_split_list(path: str | os.PathLike) -> list[tuple[int, str]]:
    """The names in a `train.txt` / `val.txt`, with their line numbers; an empty list is an error."""
    lines = read_lines(path, "a split list: one sample name per line")
    if not lines:
        raise UserError("names no samples (the split list is empty)", path)
    return lines


def read_reference_list(path: str | os.PathLike, what: str = "an exemplar retrieval list") -> ReferenceList:
    result = ReferenceList(Path(path))
    for number, line in read_lines(path, what):
        items = [item.strip() for item in line.split(",")] if "," in line else line.split()
        if len(items) < 2 or not all(items):
            raise UserError(f"line {number}: expected '<name>,<ref1>,...,<refK>' with at least one reference, got {line!r}", path)
        result.references[items[0]] = items[1:]
        result.line_of[items[0]] = number
    if not result.references:
        raise UserError(f"is empty ({what})", path)
    return result


def format_reference_line(name: str, references: list[str]) -> str:
    """One line of a retrieval list, in CoCosNet's comma-separated format."""
    for item in (name, *references):
        if "," in item or "\n" in item:
            raise UserError("cannot be written to a retrieval list (names may not contain commas or newlines)", item)
    return ",".join([name, *references])


__all__ = ["ReferenceList", "read_lines", "read_split_list", "read_reference_list", "format_reference_line"]
