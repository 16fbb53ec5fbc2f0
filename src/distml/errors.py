"""Errors a user can act on: what was wrong, where, and what to do about it."""

from __future__ import annotations


class DistmlError(Exception):
    """Bad input or an unusable environment, reported as one line by the CLI (exit 1).

    ``where`` names the file and field (``data.yml: images[3].label``), ``hint`` says
    what to do. Programming errors stay ordinary exceptions and keep their traceback.
    """

    def __init__(self, what: str, *, where: str | None = None, hint: str | None = None) -> None:
        self.what = what
        self.where = where
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        if self.hint:
            text = f"{text.rstrip('.')}. {self.hint}"
        return text


class DatasetError(DistmlError):
    """A dataset file that cannot be read, or whose content breaks the format."""
