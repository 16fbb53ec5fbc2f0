"""The comparison of a selection as a Markdown table, an HTML page (KFP UI) and JSON."""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path
from typing import Any

from distml.selection.select import ModelSelection, copy_model_folder, select_model
from distml.staging import staged_folder

MODEL_SUBDIR = "model"

#: Columns shown besides the selection metric, when a model has them.
EXTRA_COLUMNS = ("test_accuracy", "test_miou", "test_loss", "workers", "global_batch_size")


def _columns(selection: ModelSelection) -> list[str]:
    present = {key for c in selection.ranked for key in c.metrics}
    return [selection.metric] + [col for col in EXTRA_COLUMNS if col in present and col != selection.metric]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.4f}"
    return "" if value is None else str(value)


def _title(selection: ModelSelection) -> str:
    direction = "lowest" if selection.lowest else "highest"
    return f"Model selection: {direction} {selection.metric} wins; chosen: {selection.chosen.name}"


def markdown_table(selection: ModelSelection) -> str:
    """A Markdown page: a title line and one row per model, best first."""
    columns = _columns(selection)
    lines = [f"# {_title(selection)}", "", "| rank | model | " + " | ".join(columns) + " | chosen |"]
    lines.append("|" + "---|" * (len(columns) + 3))
    for rank, candidate in enumerate(selection.ranked, start=1):
        cells = [_cell(candidate.metrics.get(col)) for col in columns]
        mark = "yes" if rank == 1 else ""
        lines.append(f"| {rank} | {candidate.name} | " + " | ".join(cells) + f" | {mark} |")
    return "\n".join(lines) + "\n"


def html_report(selection: ModelSelection) -> str:
    """A self-contained HTML page with the same table (the KFP UI shows HTML artifacts)."""
    columns = _columns(selection)
    head = "".join(f"<th>{html.escape(col)}</th>" for col in ["rank", "model", *columns])
    rows = []
    for rank, candidate in enumerate(selection.ranked, start=1):
        cells = [str(rank), candidate.name] + [_cell(candidate.metrics.get(col)) for col in columns]
        style = ' style="font-weight:bold;background:#e6f4ea"' if rank == 1 else ""
        rows.append(f"<tr{style}>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells) + "</tr>")
    title = html.escape(_title(selection))
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>Model selection</title>"
        "<style>table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}</style></head>\n"
        f"<body><h2>{title}</h2>\n<table><tr>{head}</tr>\n" + "\n".join(rows) + "\n</table></body></html>\n"
    )


def selection_summary(selection: ModelSelection) -> dict[str, Any]:
    """What was chosen and the ranking, for ``selection.json``."""
    return {
        "metric": selection.metric,
        "lowest": selection.lowest,
        "chosen": selection.chosen.name,
        "chosen_folder": str(selection.chosen.folder),
        "ranking": [
            {"name": c.name, "folder": str(c.folder), "value": None if math.isnan(c.value) else c.value}
            for c in selection.ranked
        ],
    }


def select_best_model(
    model_dirs: list[str | os.PathLike[str]],
    metric: str,
    *,
    lowest: bool,
    best_dir: str | os.PathLike[str],
    comparison_file: str | os.PathLike[str],
    report_file: str | os.PathLike[str],
) -> ModelSelection:
    """Select the best of ``model_dirs`` by ``metric`` and write each result where asked (the select_model step).

    ``best_dir`` gets a copy of the chosen Model folder, ``comparison_file`` the Markdown table and
    ``report_file`` the HTML one: three separate outputs, where write_selection writes one folder.
    """
    selection = select_model(model_dirs, metric, lowest=lowest)
    copy_model_folder(selection.chosen.folder, best_dir)
    Path(comparison_file).write_text(markdown_table(selection), encoding="utf-8")
    Path(report_file).write_text(html_report(selection), encoding="utf-8")
    return selection


def write_selection(selection: ModelSelection, out_dir: str | os.PathLike[str]) -> Path:
    """Write ``out_dir`` with ``model/`` (a copy of the chosen folder), comparison.md/.html, selection.json.

    Built under a temporary name and renamed, so a failure leaves no folder that looks complete.
    """
    out = Path(out_dir)
    with staged_folder(out, what="output folder") as staging:
        copy_model_folder(selection.chosen.folder, staging / MODEL_SUBDIR)
        (staging / "comparison.md").write_text(markdown_table(selection), encoding="utf-8")
        (staging / "comparison.html").write_text(html_report(selection), encoding="utf-8")
        summary = json.dumps(selection_summary(selection), indent=2) + "\n"
        (staging / "selection.json").write_text(summary, encoding="utf-8")
    return out
