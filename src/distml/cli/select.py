"""`distml select` and `distml average`: the best of several models, or their weight average."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from distml.cli.output import make_console

console = make_console()

_models = click.argument("model_dirs", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
_out = click.option(
    "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True, help="New or empty folder."
)


@click.command("select")
@_models
@click.option("--metric", default="test_accuracy", show_default=True, help="Key of metrics.json to compare.")
@click.option("--lowest", is_flag=True, help="Lowest value wins (for a loss); default: highest.")
@_out
def select_command(model_dirs: tuple[Path, ...], metric: str, lowest: bool, out_dir: Path) -> None:
    """Pick the best of MODEL_DIRS by METRIC; ties go to the model given first.

    Writes OUT/model (a copy of the chosen Model folder), OUT/comparison.md, OUT/comparison.html
    and OUT/selection.json.
    """
    from distml.selection.report import markdown_table, write_selection
    from distml.selection.select import select_model

    selection = select_model(list(model_dirs), metric, lowest=lowest)
    write_selection(selection, out_dir)
    console.print(markdown_table(selection), markup=False, highlight=False)
    console.print(f"chosen: {selection.chosen.name} -> {out_dir / 'model'}")


@click.command("average")
@_models
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="npz data folder (distml data load) whose test arrays evaluate the average.",
)
@_out
def average_command(model_dirs: tuple[Path, ...], data_dir: Path | None, out_dir: Path) -> None:
    """Average the weights of MODEL_DIRS (same architecture) into a new Model folder OUT."""
    from distml.selection.average import average_models, evaluated_metrics

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = average_models(list(model_dirs), out_dir, data=data_dir)
    shown = evaluated_metrics(out)
    console.print(f"averaged {len(model_dirs)} models -> {out} {shown or '(not evaluated: no --data)'}")
