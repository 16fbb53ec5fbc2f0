"""A self-contained HTML report of gathered inference (KFP shows it as an HTML artifact).

Images are embedded as base64 PNGs, so the one file carries everything: the summary, a
table per shard, the confusion matrix (classification) and a few image / ground truth /
output / overlay rows taken from the shards' saved images (segmentation, --save-images).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from distml.inference.metrics import SEGMENTATION

_STYLE = (
    "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;margin:.5em 0}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}img{width:128px;image-rendering:pixelated}"
)
_KINDS = ("image", "gt", "output", "overlay")


def sample_triples(folders: list[Path], count: int) -> list[dict[str, Path]]:
    """Up to ``count`` saved image sets, taken round-robin over the shards so each shows."""
    per_shard = []
    for folder in folders:
        stems = sorted(
            (p.name[: -len("_output.png")] for p in folder.glob("batch_*_output.png")),
            key=lambda stem: tuple(int(n) for n in stem.split("_")[1:3]),
        )
        per_shard.append([{kind: folder / f"{stem}_{kind}.png" for kind in _KINDS} for stem in stems])
    picked: list[dict[str, Path]] = []
    for row in range(max((len(s) for s in per_shard), default=0)):
        for shard in per_shard:
            if len(picked) < count and row < len(shard):
                picked.append(shard[row])
    return picked


def write_report(gathered: dict[str, Any], folders: list[Path], path: Path, *, images: int = 4) -> Path:
    """Write the report of ``gathered`` (metrics.combine plus shards) to ``path``."""
    segmentation = gathered["task"] == SEGMENTATION
    metric = "miou" if segmentation else "accuracy"
    parts = [f"<html><head><meta charset='utf-8'><style>{_STYLE}</style></head><body>"]
    parts.append(f"<h2>Inference: {html.escape(gathered['task'])}</h2>")
    parts.append(
        f"<p><b>{metric.upper() if segmentation else 'Accuracy'}: {_fmt(gathered[metric])}</b> over "
        f"{gathered['images']} images in {len(gathered['shards'])} shards (weighted by images).</p>"
    )
    parts.append("<table><tr><th>part</th><th>images</th><th>" + metric + "</th><th>seconds</th><th>backend</th></tr>")
    for shard in gathered["shards"]:
        parts.append(
            f"<tr><td title='{html.escape(str(shard['folder']))}'>{html.escape(part_name(shard))}</td>"
            f"<td>{shard['images']}</td>"
            f"<td>{_fmt(shard.get(metric))}</td><td>{_fmt(shard.get('seconds'))}</td>"
            f"<td>{html.escape(str(shard.get('provider') or shard.get('backend')))}</td></tr>"
        )
    parts.append("</table>")
    if not segmentation:
        parts.append(_confusion_table(gathered["classes"], gathered["confusion_matrix"]))
    triples = sample_triples(folders, images)
    if triples:
        parts.append("<h3>Samples</h3><table><tr>" + "".join(f"<th>{k}</th>" for k in _KINDS) + "</tr>")
        for triple in triples:
            cells = "".join(f"<td>{_img(triple[kind])}</td>" for kind in _KINDS)
            parts.append(f"<tr>{cells}</tr>")
        parts.append("</table>")
    parts.append("</body></html>\n")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def part_name(shard: dict[str, Any]) -> str:
    """The part file a shard inferred (its metrics.json ``dataset``), else its folder's name.

    On KFP every shard folder is called after the output, "shard", so only the part tells them apart.
    """
    return Path(str(shard.get("dataset") or shard["folder"])).name


def _confusion_table(classes: list[str], matrix: list[list[int]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in classes)
    rows = "".join(
        f"<tr><th>{html.escape(c)}</th>" + "".join(f"<td>{n}</td>" for n in row) + "</tr>"
        for c, row in zip(classes, matrix, strict=True)
    )
    return f"<h3>Confusion matrix (rows: true, columns: predicted)</h3><table><tr><th></th>{head}</tr>{rows}</table>"


def _img(path: Path) -> str:
    if not path.is_file():
        return ""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"<img alt='{html.escape(path.name)}' src='data:image/png;base64,{data}'>"


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else html.escape(str(value))
