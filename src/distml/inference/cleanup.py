"""Remove the temporary part files of a split once the shards that read them are done.

Where the parts folder is the stored artifact itself (KFP's local runner, a shared volume),
clean-up deletes them. On a cluster a task's input artifact is a copy that KFP's launcher
downloaded from the object store into the pod (minio://, s3://, gs:// URIs): deleting the copy
frees nothing, and the stored parts stay under the store's retention rules. The step then
says so, listing what it left, instead of claiming a clean-up it did not do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from distml.folders import MANIFEST_FILE, PARTS_MANIFEST, read_parts_manifest

#: Artifact URI schemes whose files a task sees only as downloaded copies.
OBJECT_STORE_SCHEMES = ("minio://", "s3://", "gs://")


@dataclass
class CleanupReport:
    """What clean-up removed, and what it left where (the object store keeps its artifacts)."""

    removed: list[Path] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    where: str = ""

    def summary(self) -> str:
        if self.left:
            return (
                f"left {len(self.left)} part file(s) in the object store at {self.where} "
                f"({', '.join(self.left)}): KFP keeps stored artifacts; this task only saw a downloaded copy. "
                "Remove them with the bucket's lifecycle rules (docs/inference.md)."
            )
        if self.removed:
            return f"removed {len(self.removed)} part file(s) from {self.where}"
        return f"no part files at {self.where} (already removed, or the split wrote none)"


def remove_parts(parts_dir: str | os.PathLike[str]) -> list[Path]:
    """Delete the part files listed in ``parts.json`` and the manifest itself; return what was removed.

    Only files the split wrote are touched (never other files that share the folder); the
    folder goes too when that leaves it empty. A folder without ``parts.json`` (already
    cleaned, or the split never ran) is left alone.
    """
    folder = Path(parts_dir)
    if not PARTS_MANIFEST.exists(folder):
        return []
    removed = []
    for info in read_parts_manifest(folder).parts:
        path = folder / info.file
        if path.is_file():
            path.unlink()
            removed.append(path)
    PARTS_MANIFEST.path(folder).unlink()
    removed.append(PARTS_MANIFEST.path(folder))
    if not any(folder.iterdir()):
        folder.rmdir()
    return removed


def cleanup_parts_step(parts_dir: str, parts_uri: str) -> CleanupReport:
    """The cleanup_parts component's body: remove the parts where they are stored, else report them as left."""
    if parts_uri.startswith(OBJECT_STORE_SCHEMES):
        folder = Path(parts_dir)
        listed = [info.file for info in read_parts_manifest(folder).parts] if PARTS_MANIFEST.exists(folder) else []
        report = CleanupReport(left=[*listed, MANIFEST_FILE] if listed else [], where=parts_uri)
    else:
        report = CleanupReport(removed=remove_parts(parts_dir), where=parts_uri or parts_dir)
    print(report.summary())
    return report
