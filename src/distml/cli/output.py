"""The rich consoles of the CLI: terminal width in a terminal, wide lines in logs and pipes."""

from __future__ import annotations

import re
import sys

from rich.console import Console
from rich.markup import escape

#: C0 and C1 control characters but tab and newline: ESC starts terminal escape sequences.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
#: ``scheme://user:password@``: the password part.
_CREDENTIALS = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*):[^/\s@]*@")

#: Width when not writing to a terminal, so tables of paths are not cut or wrapped in logs.
LOG_WIDTH = 160


def make_console(*, stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr) if stream.isatty() else Console(stderr=stderr, width=LOG_WIDTH)


def printable(text: object) -> str:
    """``text`` with control characters shown as escapes (``\\x1b``), never sent to the terminal raw."""
    return _CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), str(text))


def plain(text: object) -> str:
    """``text`` from a file or a user (a dataset name) for a rich markup string: printable, markup escaped."""
    return escape(printable(text))


def redact(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@host`` URL replaced by ``***``."""
    return _CREDENTIALS.sub(r"\1:***@", text)
