"""Gather shard results into one: exact metrics of the whole split and a report.

Metrics are combined from each shard's sufficient statistics (distml.inference.metrics.combine),
weighted by images, so any split of a dataset gathers to the metrics of the unsplit dataset.
A folder without ``metrics.json`` (a failed or missing shard) is refused, by name.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from distml.errors import DistmlError
from distml.inference.metrics import combine
from distml.inference.report import write_report
from distml.inference.runner import METRICS_FILE, read_shard_metrics

REPORT_FILE = "report.html"


def gather_shards(
    shard_dirs: list[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    report_images: int = 4,
) -> dict[str, Any]:
    """Combine the shards' metrics; write ``out_dir/metrics.json`` and ``out_dir/report.html``."""
    if not shard_dirs:
        raise DistmlError("no shard folders given", hint="Give the output folders of `distml infer`.")
    folders = [Path(d) for d in shard_dirs]
    shards = [read_shard_metrics(folder) for folder in folders]
    gathered = combine(shards, names=[str(f) for f in folders])
    gathered["seconds_max"] = max(float(s.get("seconds", 0.0)) for s in shards)
    gathered["shards"] = [
        {
            "folder": str(folder),
            "dataset": shard.get("dataset"),
            "backend": shard.get("backend"),
            "provider": shard.get("provider"),
            "images": shard["images"],
            "seconds": shard.get("seconds"),
            **({"miou": shard["miou"]} if "miou" in shard else {"accuracy": shard.get("accuracy")}),
        }
        for folder, shard in zip(folders, shards, strict=True)
    ]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_report(gathered, folders, out / REPORT_FILE, images=report_images)
    _write_json_atomic(out / METRICS_FILE, gathered)
    return gathered


def _write_json_atomic(path: Path, value: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(value, indent=2) + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
