"""The rich consoles of the CLI: terminal width in a terminal, wide lines in logs and pipes."""

from __future__ import annotations

import sys

from rich.console import Console

#: Width when not writing to a terminal, so tables of paths are not cut or wrapped in logs.
LOG_WIDTH = 160


def make_console(*, stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr) if stream.isatty() else Console(stderr=stderr, width=LOG_WIDTH)
