"""All-or-nothing output folders: build under a temporary name, rename into place when complete.

Every writer of a folder that a later step trusts (a data folder, a model folder, a shard's
results) goes through ``staged_folder``, so a failure never leaves a folder that looks complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from distml.errors import DistmlError


@contextmanager
def staged_folder(target: str | os.PathLike[str], *, what: str = "output folder") -> Iterator[Path]:
    """Yield a temporary folder beside ``target`` (which must be absent or empty); on success it becomes ``target``.

    The folder gets mode 0755 (mkdtemp's 0700 would hide it from a serving container's user).
    On any exception the temporary folder is removed and ``target`` is left as it was.
    """
    out = Path(target)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DistmlError(f"{what} is not empty", where=str(out), hint="Choose a new or empty folder.")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield staging
        staging.chmod(0o755)
        if out.exists():
            out.rmdir()
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
