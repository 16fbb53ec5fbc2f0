"""All-or-nothing output folders: build under a temporary name, rename into place when complete.

Every writer of a folder that a later step trusts (a data folder, a model folder, a shard's
results) goes through ``staged_folder``, so a failure never leaves a folder that looks complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from distml.errors import DistmlError


@contextmanager
def staged_folder(
    target: str | os.PathLike[str],
    *,
    what: str = "output folder",
    replaceable: Callable[[Path], bool] | None = None,
) -> Iterator[Path]:
    """Yield a temporary folder beside ``target`` (which must be absent or empty); on success it becomes ``target``.

    ``replaceable`` says whether a non-empty ``target`` is this writer's own earlier output: such a
    target is swapped for the new folder only once that is complete (renamed aside, the new one
    renamed in, the old one deleted), so a failed write leaves the earlier output whole.
    The folder gets mode 0755 (mkdtemp's 0700 would hide it from a serving container's user).
    On any exception the temporary folder is removed and ``target`` is left as it was.
    """
    out = Path(target)
    earlier = out.is_dir() and any(out.iterdir()) and replaceable is not None and replaceable(out)
    if out.exists() and not earlier and (not out.is_dir() or any(out.iterdir())):
        raise DistmlError(
            f"{what} is not empty and not an earlier output of this command",
            where=str(out),
            hint="Choose a new or empty folder, or remove this one first if its content may go.",
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    aside: Path | None = None
    try:
        yield staging
        staging.chmod(0o755)
        if earlier:
            aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, aside / "earlier")
        elif out.exists():
            out.rmdir()
        os.replace(staging, out)
    except BaseException:
        if aside is not None and (aside / "earlier").exists() and not out.exists():
            os.replace(aside / "earlier", out)  # the swap failed half-way: put the earlier output back
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
