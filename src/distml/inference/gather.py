"""Gather shard results into one: exact metrics of the whole split and a report.

Metrics are combined from each shard's sufficient statistics (distml.inference.metrics.combine),
weighted by images, so any split of a dataset gathers to the metrics of the unsplit dataset.
A folder without ``metrics.json`` (a failed or missing shard) is refused, by name.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distml.errors import DistmlError
from distml.folders import METRICS_FILE, REPORT_FILE, is_gathered_folder, read_shard_metrics, write_gathered_metrics
from distml.inference.metrics import CLASSIFICATION, SEGMENTATION, combine
from distml.inference.report import write_report
from distml.staging import staged_file, staged_folder

#: What each task's shard must hold for combining (besides ``images``).
REQUIRED_KEYS = {SEGMENTATION: ("iou_sum",), CLASSIFICATION: ("classes", "confusion_matrix")}


def gather_shards(
    shard_dirs: list[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    report_images: int = 4,
) -> dict[str, Any]:
    """Combine the shards' metrics; write ``out_dir/metrics.json`` and ``out_dir/report.html``.

    ``out_dir`` must be new, empty, or hold an earlier gather's two files (replaced); it is
    written all at once, so a failure never leaves a report without its metrics.
    """
    if not shard_dirs:
        raise DistmlError("no shard folders given", hint="Give the output folders of `distml infer`.")
    folders = [Path(d) for d in shard_dirs]
    _refuse_repeats(folders)
    shards = [read_shard_metrics(folder) for folder in folders]
    names = [str(f) for f in folders]
    _check_consistent(shards, names)
    gathered = combine(shards, names=names)
    if not gathered["images"]:
        raise DistmlError(
            f"no images in split {shards[0].get('split')!r} in any shard",
            hint="Infer a split that has images, or check how the dataset was split.",
        )
    gathered["split"] = shards[0].get("split")
    gathered["seconds_max"] = max(float(s.get("seconds", 0.0)) for s in shards)
    headline = headline_metric(gathered["task"])
    gathered["shards"] = [
        {
            "folder": str(folder),
            "dataset": shard.get("dataset"),
            "backend": shard.get("backend"),
            "provider": shard.get("provider"),
            "images": shard["images"],
            "seconds": shard.get("seconds"),
            headline: shard.get(headline),
        }
        for folder, shard in zip(folders, shards, strict=True)
    ]
    out = Path(out_dir)
    _refuse_out_among_shards(out, folders)
    with staged_folder(out, what="gather output folder", replaceable=is_gathered_folder) as staging:
        write_report(gathered, folders, staging / REPORT_FILE, images=report_images)
        write_gathered_metrics(staging, gathered)
    return gathered


def headline_metric(task: str) -> str:
    """The one number that sums up a gathered split: mean IoU for segmentation, accuracy for classification."""
    return "miou" if task == SEGMENTATION else "accuracy"


@dataclass(frozen=True)
class GatherResult:
    """What the gather_metrics component shows in KFP's UI and returns."""

    metric: str  # headline_metric of the task
    value: float
    images: int
    shards: int

    def ui_metrics(self) -> dict[str, float]:
        return {self.metric: self.value, "images": self.images, "shards": self.shards}


def gather_step(
    shard_dirs: list[str],
    summary_dir: str,
    report_file: str,
    *,
    report_images: int,
) -> GatherResult:
    """The gather_metrics component's body: gather into ``summary_dir``, its report also to ``report_file``.

    KFP shows an HTML output artifact (``report_file``) in its UI, not a file inside a Dataset folder,
    so the report is written to both.
    """
    gathered = gather_shards(shard_dirs, summary_dir, report_images=report_images)
    with staged_file(report_file) as scratch:
        shutil.copyfile(Path(summary_dir) / REPORT_FILE, scratch)
    metric = headline_metric(gathered["task"])
    return GatherResult(metric, float(gathered[metric]), int(gathered["images"]), len(shard_dirs))


def _refuse_out_among_shards(out: Path, folders: list[Path]) -> None:
    """--out may not be one of the shards, nor a folder that holds one (it would replace its input)."""
    target = out.resolve()
    for folder in folders:
        shard = folder.resolve()
        if target == shard or target in shard.parents:
            raise DistmlError(
                "--out is a shard folder being gathered, or holds one: gathering would replace its input",
                where=str(out),
                hint="Give --out a new folder, apart from the shard folders.",
            )


def _refuse_repeats(folders: list[Path]) -> None:
    """The same shard twice would count its images twice."""
    seen: dict[Path, Path] = {}
    for folder in folders:
        key = folder.resolve()
        if key in seen:
            raise DistmlError(
                f"shard folder given twice (also as {seen[key]})",
                where=str(folder),
                hint="Give each shard folder once.",
            )
        seen[key] = folder


def _check_consistent(shards: list[dict[str, Any]], names: list[str]) -> None:
    """Every shard has what combining needs, and all come from one model and one split."""
    for name, shard in zip(names, shards, strict=True):
        needed = REQUIRED_KEYS.get(shard.get("task"), ("task",))
        missing = [key for key in ("images", *needed) if key not in shard]
        if missing:
            raise DistmlError(
                f"{METRICS_FILE} lacks {', '.join(missing)}: not written by `distml infer`",
                where=name,
                hint="Re-run the inference of this part, or leave the folder out.",
            )
    for key, what in (("split", "split"), ("model_sha256", "model (sha256)")):
        first = shards[0].get(key)
        for name, shard in zip(names[1:], shards[1:], strict=True):
            if shard.get(key) != first and first is not None and shard.get(key) is not None:
                raise DistmlError(
                    f"{what} {shard.get(key)!r} differs from {first!r} of {names[0]}",
                    where=name,
                    hint="Gather the shards of one run: the same model over the same split of every part.",
                )
