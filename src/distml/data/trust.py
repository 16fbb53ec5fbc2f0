"""Which files a dataset may make us read: its own folder, and the roots the user allowed.

A DTD file is untrusted input: its locations could name ``../../etc/passwd``, a service-account
token, a symlink out of the folder, ``/dev/zero`` or a FIFO, and ``data load`` would copy what
they name into an artifact others read. So every location (image planes and ground-truth
paths) must resolve inside the dataset file's folder, or under a root the user names
(``--allow-root DIR``, the ``allowed_roots`` input of load_data). Readers (``data load``,
``infer``, ``data info --check-files``) resolve symlinks first and read regular files only;
``split``, which never opens an image, checks the paths by name (``..`` and absolute paths),
so 1M-image splits stay fast, and whatever it writes is checked again by the reader.

ECVL itself reads any absolute location (dataset_parser.cpp:181-188): here an absolute
location is read when it lies under an allowed root. The folders distml writes carry the
roots their content was checked against: ``metadata.json`` (load_data with allowed roots,
e.g. a shared volume with ``copy_files=False``) and ``parts.json`` (split: the dataset folder
the parts point into). Those two files are trusted, since distml wrote them; their file
entries must stay inside their folder. ``data load`` never reads them from its source.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from distml.data.dtd import Dataset, is_url
from distml.errors import DatasetError
from distml.folders import DATA_METADATA, PARTS_MANIFEST, checked_roots, is_inside

_ALLOW_HINT = (
    "Move the file into the dataset's folder, or allow its root with --allow-root DIR (load_data: allowed_roots)"
)


def check_locations(
    dataset: Dataset,
    *,
    allow_roots: Iterable[str | os.PathLike[str]] = (),
    read: bool = False,
    recorded: bool = True,
    indices: Iterable[int] | None = None,
    where: str | None = None,
) -> None:
    """Raise a DatasetError naming the image and the rule unless every location may be read.

    ``read``: resolve symlinks and require existing regular files (for readers); otherwise
    check paths by name only. ``recorded``: also allow the roots recorded by distml beside the
    dataset file (metadata.json, parts.json). ``indices``: check only these images.
    """
    where = where or (str(dataset.source) if dataset.source else dataset.name)
    root = os.path.abspath(dataset.root)
    extra = [os.path.abspath(r) for r in allow_roots]
    if recorded and dataset.source is not None:
        extra += recorded_roots(dataset.source)
    roots = [root, *extra]
    real_roots = [os.path.realpath(r) for r in roots] if read else []
    missing: list[str] = []
    chosen = range(len(dataset.images)) if indices is None else indices
    for i in chosen:
        image = dataset.images[i]
        for fieldname, location in dataset.paths_of(image):
            name = f"images[{i}].{fieldname} {location}"
            if location.startswith(("http://", "https://")) and is_url(location):
                raise DatasetError(
                    f"{name}: URL locations are not fetched",
                    where=where,
                    hint="Download the image into the dataset's folder and give its path.",
                )
            # Fast path (most locations): relative and free of `..` cannot leave the folder by name.
            if not read and not location.startswith("/") and ".." not in location:
                continue
            joined = os.path.join(root, location)
            if not is_inside(os.path.normpath(joined), roots):
                raise DatasetError(
                    f"{name}: outside the dataset's folder {root} and every allowed root",
                    where=where,
                    hint=_ALLOW_HINT,
                )
            if not read:
                continue
            real = os.path.realpath(joined)
            if not is_inside(real, real_roots):
                raise DatasetError(
                    f"{name}: a symbolic link to {real}, outside the dataset's folder and every allowed root",
                    where=where,
                    hint=_ALLOW_HINT,
                )
            try:
                mode = os.stat(real).st_mode
            except FileNotFoundError:
                missing.append(name)
                continue
            except OSError as err:
                raise DatasetError(f"{name}: cannot be read ({err.strerror})", where=where) from err
            if not stat.S_ISREG(mode):
                raise DatasetError(
                    f"{name}: not a regular file ({_kind(mode)}); only regular files are read",
                    where=where,
                    hint="Point the location at an image file.",
                )
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise DatasetError(
            f"{missing[0]} does not exist{more}",
            where=where,
            hint=f"Paths are relative to {dataset.root}; fix them or restore the files.",
        )


def _kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a file"


def recorded_roots(dataset_file: str | os.PathLike[str]) -> list[str]:
    """Roots distml recorded beside a dataset file: metadata.json ``roots``, parts.json ``roots``.

    parts.json counts only for the part files it lists. Relative roots are relative to the folder.
    Other keys of the two files are not read here, so a foreign file of that name only needs to be JSON.
    """
    path = Path(dataset_file)
    folder = path.parent
    roots: list[str] = []
    if DATA_METADATA.exists(folder):
        roots += checked_roots(DATA_METADATA.read(folder), DATA_METADATA, folder)
    if PARTS_MANIFEST.exists(folder):
        content = PARTS_MANIFEST.read(folder)
        parts = content.get("parts")
        listed = {entry.get("file") for entry in parts if isinstance(entry, dict)} if isinstance(parts, list) else set()
        if path.name in listed:
            roots += checked_roots(content, PARTS_MANIFEST, folder)
    return [os.path.abspath(os.path.join(folder, root)) for root in roots]
