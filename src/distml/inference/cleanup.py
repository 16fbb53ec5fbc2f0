"""Remove the temporary part files of a split once the shards that read them are done."""

from __future__ import annotations

import os
from pathlib import Path

from distml.data.split import MANIFEST, read_manifest


def remove_parts(parts_dir: str | os.PathLike[str]) -> list[Path]:
    """Delete the part files listed in ``parts.json`` and the manifest itself; return what was removed.

    Only files the split wrote are touched (never other files that share the folder); the
    folder goes too when that leaves it empty. A folder without ``parts.json`` (already
    cleaned, or the split never ran) is left alone: clean-up runs after failures too.
    """
    folder = Path(parts_dir)
    if not (folder / MANIFEST).is_file():
        return []
    removed = []
    for info in read_manifest(folder):
        path = folder / info.file
        if path.is_file():
            path.unlink()
            removed.append(path)
    (folder / MANIFEST).unlink()
    removed.append(folder / MANIFEST)
    if not any(folder.iterdir()):
        folder.rmdir()
    return removed
