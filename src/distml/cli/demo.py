"""`distml demo`: the README's main job, end to end on the local default."""

from __future__ import annotations

from pathlib import Path

import click

from distml.cli.data import console, print_parts
from distml.data import dtd, split, synth


@click.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-output"),
              show_default=True, help="Folder for everything the demo writes.")
@click.option("--images", type=click.IntRange(min=4), default=60, show_default=True)
@click.option("--parts", type=click.IntRange(min=1), default=3, show_default=True)
def demo(out_dir: Path, images: int, parts: int) -> None:
    """Make a synthetic lesion dataset, split it into parts and print them."""
    dataset_file = synth.synth_lesions(out_dir / "lesions", images=images, size=64, seed=0)
    dataset = dtd.read_dataset(dataset_file)
    console.print(f"dataset: {dataset_file} ({len(dataset.images)} images)")
    infos = split.write_parts(dataset, split.split_dataset(dataset, parts), out_dir / "parts")
    print_parts(dataset, infos, out_dir / "parts")
