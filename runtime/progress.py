"""A live line on stderr while a command works for more than a moment -- on a terminal only.

`mclrt bench` and `mclrt check` run for seconds with nothing to show until their table: this gives
them a spinner with what is happening (`rich`'s status), and nothing at all in pipes and logs, like
the progress bars of infer, video and eval warp (`disable=not console.is_terminal`).
"""

from __future__ import annotations

import contextlib
from typing import Iterator


@contextlib.contextmanager
def working(text: str) -> Iterator[None]:
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        yield
        return
    with console.status(text):
        yield
