"""All-or-nothing outputs: build under a temporary name, rename into place when complete.

Every writer of a folder that a later step trusts (a data folder, a model folder, a shard's
results) goes through ``staged_folder``, so a failure never leaves a folder that looks complete;
a single file goes through ``staged_file`` (or ``write_text_atomic``), and files that join others
in a shared folder (part files and their parts.json) through ``staged_files``. Nothing else in
distml renames a temporary file into place.
"""

from __future__ import annotations

import os
import shutil
import uuid
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
    The folder gets mode 0755 once complete (0700 while it is built would hide it from a serving container's user).
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
    staging = _scratch_name(out)
    aside: Path | None = None
    try:
        staging.mkdir(mode=0o700)
        yield staging
        staging.chmod(0o755)
        if earlier:
            aside = _scratch_name(out, ".old")
            aside.mkdir(mode=0o700)
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


@contextmanager
def staged_file(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target``, on any exception it is removed.

    The one atomic writer of single files (a DTD file, an ONNX export, a JSON file of a folder
    contract): a reader sees the old file or the whole new one, never half of it. The file gets
    mode 0644 once complete (0600 while it is written would hide it from a serving container's user).
    """
    out = Path(target)
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = _scratch_name(out, ".tmp")
    try:
        scratch.touch(mode=0o600, exist_ok=False)
        yield scratch
        scratch.chmod(0o644)
        os.replace(scratch, out)
    finally:
        scratch.unlink(missing_ok=True)


def write_text_atomic(target: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``target`` through ``staged_file``."""
    with staged_file(target) as scratch:
        scratch.write_text(text, encoding="utf-8")
    return Path(target)


@contextmanager
def staged_files(folder: str | os.PathLike[str], *, last: str | None = None) -> Iterator[Path]:
    """Yield a temporary folder inside ``folder``; on success its files are renamed into ``folder``, ``last`` last.

    For outputs that share a folder with other files (part files and their parts.json, shard
    files): nothing in ``folder`` changes until every file is written, each file appears whole,
    and the manifest named ``last`` appears only after the files it lists.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    staging = out / f".staging-{uuid.uuid4().hex[:12]}"
    try:
        staging.mkdir(mode=0o700)
        yield staging
        names = sorted(path.name for path in staging.iterdir())
        if last in names:
            names.remove(last)
            names.append(last)
        for name in names:
            os.replace(staging / name, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _scratch_name(target: Path, suffix: str = "") -> Path:
    """A hidden, unused name beside ``target``, chosen before anything is created under it.

    Each writer creates its scratch file or folder inside its ``try``, so a signal that arrives just
    after the creation (test_signals.py sends one then) still finds it removed; with tempfile.mkdtemp
    the folder would exist before the writer's ``try`` could clean it up.
    """
    return target.parent / f".{target.name}.{uuid.uuid4().hex[:12]}{suffix}"
