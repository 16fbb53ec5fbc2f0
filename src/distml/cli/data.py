"""`distml data ...`: make, inspect, load and split datasets."""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.table import Table

from distml.cli.options import SEED, allow_root_option, source_callback
from distml.cli.output import make_console, plain
from distml.data import dtd, sources, split, synth
from distml.folders import PartInfo
from distml.parameters import MAX_SYNTHETIC_IMAGES

console = make_console()


@click.group()
def data() -> None:
    """Make, inspect, load and split datasets (DeepHealth Toolkit Dataset format, npz)."""


@data.command("synth")
@click.argument("kind", type=click.Choice(["lesions", "digits"]))
@click.option(
    "--images",
    type=click.IntRange(1, MAX_SYNTHETIC_IMAGES),
    default=None,
    help="Number of images [lesions: 100; digits: all 1797].",
)
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True, help="New or empty folder."
)
@click.option(
    "--size", type=click.IntRange(8, 2048), default=64, show_default=True, help="Image side in pixels (lesions)."
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Random seed: same seed, same files.")
def synth_command(kind: str, images: int | None, out_dir: Path, size: int, seed: int) -> None:
    """Write a synthetic DTD dataset: LESIONS (RGB images + binary masks) or DIGITS (scikit-learn)."""
    if kind == "lesions":
        path = synth.synth_lesions(out_dir, images=images or 100, size=size, seed=seed)
    else:
        path = synth.synth_digits(out_dir, images=images, seed=seed)
    _print_info(dtd.read_dataset(path), path)


@data.command("info")
@click.argument("dataset_file", type=click.Path(path_type=Path))
@click.option(
    "--check-files",
    is_flag=True,
    help="Also check that every image and ground-truth file is a regular file inside the allowed folders.",
)
@allow_root_option
def info_command(dataset_file: Path, check_files: bool, allow_roots: tuple[str, ...]) -> None:
    """Validate a DTD YAML file and summarize it."""
    dataset = dtd.read_dataset(dataset_file)
    if check_files:
        dtd.check_files(dataset, where=str(dataset_file), allow_roots=allow_roots)
    _print_info(dataset, dataset_file)
    if check_files:
        console.print("all image files present")


@data.command("split")
@click.argument("dataset_file", type=click.Path(path_type=Path))
@click.option("--parts", type=int, required=True, help="Number of part files N (1 <= N <= images).")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for part-000-<name>.yml ...",
)
@allow_root_option
def split_command(dataset_file: Path, parts: int, out_dir: Path, allow_roots: tuple[str, ...]) -> None:
    """Split a DTD dataset into N parts that keep its training/validation/test proportions."""
    started = time.perf_counter()
    dataset = dtd.read_dataset(dataset_file)
    pieces = split.split_dataset(dataset, parts)
    infos = split.write_parts(dataset, pieces, out_dir, allow_roots=allow_roots)
    print_parts(dataset, infos, out_dir)
    console.print(f"done in {time.perf_counter() - started:.1f} s")


@data.command("load")
@click.argument("source", callback=source_callback)
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True, help="New or empty folder."
)
@click.option(
    "--images",
    type=click.IntRange(1, MAX_SYNTHETIC_IMAGES),
    default=100,
    show_default=True,
    help="Images (synthetic sources).",
)
@click.option(
    "--size", type=click.IntRange(8, 2048), default=64, show_default=True, help="Image side (synthetic:lesions)."
)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--no-copy", is_flag=True, help="dtd: keep images where they are (shared volume); write absolute paths.")
@allow_root_option
def load_command(
    source: str, out_dir: Path, images: int, size: int, seed: int, no_copy: bool, allow_roots: tuple[str, ...]
) -> None:
    """Load SOURCE into a self-contained folder, as the load_data component does.

    SOURCE is one of dtd:PATH, npz:PATH, sklearn:digits, synthetic:lesions, synthetic:digits,
    keras:mnist, keras:fashion_mnist, keras:imdb (the keras ones download).
    """
    info = sources.load_data(
        source, out_dir, images=images, size=size, seed=seed, copy_files=not no_copy, allow_roots=allow_roots
    )
    counts = ", ".join(f"{k} {v}" for k, v in info.counts.items())
    console.print(plain(f"{info.source} -> {out_dir} ({info.format}, {info.task}: {counts})"))


@data.command("shard")
@click.argument("data_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--shards", type=int, required=True, help="Number of per-worker shard files.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
def shard_command(data_dir: Path, shards: int, out_dir: Path) -> None:
    """Split an npz data folder into per-worker shard files (training rows cut, test rows kept whole)."""
    for path in sources.shard_arrays(data_dir, shards, out_dir):
        console.print(plain(path))


def print_parts(dataset: dtd.Dataset, infos: list[PartInfo], out_dir: Path) -> None:
    """The table of parts: file, images, and images per split."""
    names = list(dataset.split or {})
    title = f"{plain(dataset.name)}: {len(dataset.images)} images in {len(infos)} parts -> {plain(out_dir)}"
    table = Table(title=title)
    table.add_column("part", justify="right")
    table.add_column("file")
    table.add_column("images", justify="right")
    for name in names:
        table.add_column(plain(name), justify="right")
    for info in infos:
        table.add_row(str(info.index), plain(info.file), str(info.images), *(str(info.splits.get(n, 0)) for n in names))
    console.print(table)
    if dataset.split is None:
        console.print("the dataset has no `split` section: parts are cut by position and have none either")


def _print_info(dataset: dtd.Dataset, path: Path) -> None:
    kind = "segmentation" if dataset.is_segmentation else f"classification, {len(dataset.classes)} classes"
    console.print(f"[bold]{plain(dataset.name)}[/bold] ({plain(path)}): {len(dataset.images)} images, {kind}")
    if dataset.description:
        console.print(f"  {plain(dataset.description)}")
    if dataset.split is None:
        console.print("  no split section")
    else:
        console.print("  split: " + plain(", ".join(f"{k} {v}" for k, v in dataset.split_sizes().items())))
    if dataset.features:
        console.print("  features: " + plain(", ".join(dataset.features)))
