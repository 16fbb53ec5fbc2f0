"""All-or-nothing outputs: build under a temporary name, rename into place when complete.

Every writer of a folder that a later step trusts (a data folder, a model folder, a shard's
results) goes through ``staged_folder``, so a failure never leaves a folder that looks complete;
a single file goes through ``staged_file`` (or ``write_text_atomic``), and files that join others
in a shared folder (part files and their parts.json) through ``staged_files``. Nothing else in
distml renames a temporary file into place.
Two commands writing the same folder at once (two `distml data load --out x`, or a retried task
beside its first try) never mix: the second fails at once, before any work, naming the folder
(``exclusive_writer``); one that wrote without that lock is caught at the final rename.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import uuid
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
    The folder gets mode 0755 once complete (0700 while it is built would hide it from a serving container's user).
    On any exception the temporary folder is removed and ``target`` is left as it was. While it
    runs, ``target`` is locked (exclusive_writer): another writer of it fails at once.
    """
    out = Path(target)
    out.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_writer(out):
        earlier = check_output_folder(out, what=what, replaceable=replaceable)
        staging = _scratch_name(out)
        aside: Path | None = None
        try:
            staging.mkdir(mode=0o700)
            yield staging
            staging.chmod(0o755)
            try:
                if earlier:
                    aside = _scratch_name(out, ".old")
                    aside.mkdir(mode=0o700)
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
