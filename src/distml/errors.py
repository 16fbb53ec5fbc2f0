"""Errors a user can act on: what was wrong, where, and what to do about it."""

from __future__ import annotations

import errno


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


#: What to do about the environment errors a command meets while writing or reading files.
_OS_HINTS = {
    errno.ENOSPC: "Free some space, or write to another disk.",
    errno.EDQUOT: "Free some space, or write to another disk.",
    errno.EACCES: "Check the permissions of this path, or choose another one.",
    errno.EPERM: "Check the permissions of this path, or choose another one.",
    errno.EROFS: "This file system is read-only: choose another path.",
    errno.ENOTDIR: "A part of this path is a file, not a folder: choose another path.",
    errno.EEXIST: "A file is in the way where a folder should be: choose another path.",
    errno.EISDIR: "This is a folder, not a file.",
    errno.ENAMETOOLONG: "Use a shorter file or folder name.",
    errno.ENOENT: "Check the path.",
}


def os_error(err: OSError) -> DistmlError:
    """An OSError (disk full, permission denied, not a directory, name too long...) as one actionable line."""
    where = err.filename if isinstance(err.filename, str) else None
    what = err.strerror or str(err)
    if where and isinstance(err.filename2, str):
        what = f"{what} (-> {err.filename2})"
    return DistmlError(what, where=where, hint=_OS_HINTS.get(err.errno or 0))
