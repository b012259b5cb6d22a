"""Whether a run folder starts a new run, continues the one it holds, or is refused.

The default is to continue: a run folder that already holds a checkpoint resumes from its latest
complete one. That is what makes a torchrun restart (`--max-restarts K`: a worker died, torchrun
starts the whole group again with the same command line) carry on by itself, and what a user who
re-types the same `make train` after a crash wants. Nothing is ever overwritten:

    mode     folder holds no checkpoint      folder holds a checkpoint
    auto     start a new run                 continue it -- only if the training config is the
                                             one the checkpoint recorded, else refuse (a different
                                             config in the same folder is a mistake, not a restart)
    resume   refuse ("nothing to resume")    continue it, with this config (`--resume`)
    fresh    start a new run                 refuse ("already holds checkpoints") (`--fresh`)

"Latest complete" comes from `checkpoint.latest_checkpoint`: a checkpoint folder is renamed into
place only once every file is written, so a write killed half-way is never picked.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any

from mclrt.runtime.errors import UserError
from mclrt.training.checkpoint import latest_checkpoint, read_meta


class StartMode(str, Enum):
    AUTO = "auto"
    RESUME = "resume"
    FRESH = "fresh"


def _plain(value: Any) -> Any:
    """The value as a JSON round trip gives it back (tuples -> lists), so a live config compares
    equal to the one a checkpoint recorded."""
    return json.loads(json.dumps(value))


def _first_difference(recorded: Any, current: Any, where: str = "") -> str | None:
    if isinstance(recorded, dict) and isinstance(current, dict):
        for key in sorted(set(recorded) | set(current)):
            name = f"{where}.{key}" if where else str(key)
            if key not in recorded or key not in current:
                return name
            found = _first_difference(recorded[key], current[key], name)
            if found is not None:
                return found
        return None
    return None if recorded == current else (where or "(the whole config)")


def checkpoint_to_start_from(checkpoints: Path, mode: StartMode, train_config: dict[str, Any]) -> Path | None:
    """The checkpoint this run continues from, None for a new run; a `UserError` when the folder
    and the mode disagree (see the table in the module docstring)."""
    existing = latest_checkpoint(checkpoints)
    if existing is None:
        if mode is StartMode.RESUME:
            raise UserError("nothing to resume: no checkpoint in this run folder", checkpoints)
        return None
    if mode is StartMode.FRESH:
        raise UserError(
            "already holds checkpoints: --fresh never overwrites a run (drop --fresh to continue it, or choose another --out)",
            checkpoints.parent,
        )
    if mode is StartMode.AUTO:
        differs = _first_difference(_plain(read_meta(existing)["train_config"]), _plain(train_config))
        if differs is not None:
            raise UserError(
                f"holds a run trained with a different config ({differs} differs): pass --resume to continue "
                "it with this config, or choose another --out",
                checkpoints.parent,
            )
    return existing


__all__ = ["StartMode", "checkpoint_to_start_from"]
