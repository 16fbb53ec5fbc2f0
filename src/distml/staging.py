"""All-or-nothing output folders: build under a temporary name, rename into place when complete.

Every writer of a folder that a later step trusts (a data folder, a model folder, a shard's
results) goes through ``staged_folder``, so a failure never leaves a folder that looks complete.
Two commands writing the same folder at once (two `distml data load --out x`, or a retried task
beside its first try) never mix: the second fails at once, before any work, naming the folder
(``exclusive_writer``); one that wrote without that lock is caught at the final rename.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from distml.errors import DistmlError

#: flock errors of file systems that do not lock (some FUSE and old NFS mounts): write unlocked there.
_NO_LOCKING = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


def _busy(target: Path) -> DistmlError:
    return DistmlError(
        "another command is writing this folder now",
        where=str(target),
        hint="Wait for it to finish, or write to another folder.",
    )


@contextmanager
def exclusive_writer(target: str | os.PathLike[str], lock: str | os.PathLike[str] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``target`` while writing it; a second writer fails at once (DistmlError).

    The lock is ``flock`` on the file ``lock`` (default ``.<name>.lock`` beside ``target``),
    removed when done. The kernel drops a lock whose holder died (SIGKILL), so a stale lock file
    never blocks anyone: the next writer takes it over and removes it.
    """
    out = Path(target)
    lock_path = Path(lock) if lock is not None else out.parent / f".{out.name}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _busy(out) from None
        except OSError as err:
            os.close(fd)
            if err.errno not in _NO_LOCKING:
                raise
            with suppress(FileNotFoundError):
                lock_path.unlink()
            yield
            return
        try:
            held = os.fstat(fd)
            current = os.stat(lock_path)
            same = (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino)
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the writer before us removed this lock file as it finished: lock the new one
    try:
        yield
    finally:
        with suppress(FileNotFoundError):
            lock_path.unlink()
        os.close(fd)


def check_output_folder(
    target: str | os.PathLike[str],
    *,
    what: str = "output folder",
    replaceable: Callable[[Path], bool] | None = None,
) -> bool:
    """Refuse a ``target`` that exists and is not empty, unless ``replaceable`` says it is our earlier output.

    Returns whether it is such an earlier output. Commands call it before their expensive work
    (loading a model, training) as well as when they write, so a run that cannot write fails first.
    """
    out = Path(target)
    earlier = out.is_dir() and any(out.iterdir()) and replaceable is not None and replaceable(out)
    if out.exists() and not earlier and (not out.is_dir() or any(out.iterdir())):
        raise DistmlError(
            f"{what} is not empty and not an earlier output of this command",
            where=str(out),
            hint="Choose a new or empty folder, or remove this one first if its content may go.",
        )
    return bool(earlier)


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
    On any exception the temporary folder is removed and ``target`` is left as it was. While it
    runs, ``target`` is locked (exclusive_writer): another writer of it fails at once.
    """
    out = Path(target)
    out.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_writer(out):
        earlier = check_output_folder(out, what=what, replaceable=replaceable)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        aside: Path | None = None
        try:
            yield staging
            staging.chmod(0o755)
            try:
                if earlier:
                    aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
                    os.replace(out, aside / "earlier")
                elif out.exists():
                    out.rmdir()
                os.replace(staging, out)
            except OSError as err:
                if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                # A writer that took no lock filled the folder while this one ran: its output wins whole.
                raise DistmlError(
                    f"another command wrote this {what} while this one ran; its output is kept, this one is dropped",
                    where=str(out),
                    hint="Run one command per output folder at a time.",
                ) from None
        except BaseException:
            if aside is not None and (aside / "earlier").exists() and not out.exists():
                os.replace(aside / "earlier", out)  # the swap failed half-way: put the earlier output back
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            if aside is not None:
                shutil.rmtree(aside, ignore_errors=True)
