"""One finding of a static or runtime model check, as `mclrt check` reports it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    check: str  # which check found it, e.g. "tensorrt-ops", "fp16-risk", "correspondence"
    severity: Severity  # errors fail `mclrt check`; warnings are reported
    graph: str | None  # "exemplar_encoder", "translator", or None for the directory as a whole
    node: str | None  # the node at fault, when there is one
    message: str

    def to_dict(self) -> dict:
        return asdict(self)
