"""`distml infer` (one shard) and `distml gather` (shards into one result)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from distml.cli.options import allow_root_option, non_empty_callback
from distml.inference.backends import BACKEND_NAMES
from distml.parameters import MAX_BATCH_SIZE


@click.command("infer")
@click.option("--backend", type=click.Choice(BACKEND_NAMES), default="onnxruntime", show_default=True)
@click.option("--model", required=True, help="An .onnx file, a model folder (its model.onnx) or an EDDL .bin (ecvl).")
@click.option(
    "--dataset", "part_file", type=click.Path(dir_okay=False, path_type=Path), required=True, help="A DTD part file."
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="New folder for this shard's metrics.json (and images).",
)
@click.option(
    "--split",
    default="test",
    show_default=True,
    callback=non_empty_callback,
    help="Split to infer; 'all' for every image.",
)
@click.option("--batch-size", type=click.IntRange(1, MAX_BATCH_SIZE), default=8, show_default=True)
@click.option("--save-images", is_flag=True, help="Write batch_<b>_<i>_gt/output/overlay.png (segmentation).")
@click.option(
    "--threads",
    type=click.IntRange(0, 1024),
    default=0,
    show_default=True,
    help="CPU threads per shard (0: the runtime's default, all cores).",
)
@allow_root_option
def infer(
    backend: str,
    model: str,
    part_file: Path,
    out_dir: Path,
    split: str,
    batch_size: int,
    save_images: bool,
    threads: int,
    allow_roots: tuple[str, ...],
) -> None:
    """Run MODEL over one split of a part file and write the shard's metrics."""
    from distml.inference.shard import run_inference

    def progress(number: int, total: int, values: dict[str, Any], elapsed: float) -> None:
        metric = f"miou {values['miou']:.4f}" if "miou" in values else f"accuracy {values['accuracy']:.4f}"
        click.echo(f"batch {number + 1}/{total}: {values['images']} images, {metric} [{elapsed:.1f}s]", err=True)

    result = run_inference(
        backend,
        model,
        part_file,
        out_dir,
        split=split,
        batch_size=batch_size,
        save_images=save_images,
        threads=threads,
        progress=progress,
        allow_roots=allow_roots,
    )
    click.echo(f"{_headline(result)} in {result['seconds']:.2f}s ({result.get('provider')}) -> {out_dir}")


@click.command("gather")
@click.argument("shard_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for the gathered metrics.json and report.html.",
)
@click.option(
    "--report-images",
    type=click.IntRange(0, 1000),
    default=4,
    show_default=True,
    help="Sample image/mask/output rows in the report.",
)
def gather(shard_dirs: tuple[Path, ...], out_dir: Path, report_images: int) -> None:
    """Combine shard folders written by `distml infer` (weighted by images) into one result."""
    from distml.inference.gather import gather_shards

    result = gather_shards(list(shard_dirs), out_dir, report_images=report_images)
    click.echo(f"{_headline(result)} from {len(shard_dirs)} shards -> {out_dir}")


def _headline(result: dict[str, Any]) -> str:
    if not result["images"]:
        return f"no images in split {result.get('split')!r}: an empty shard (gather counts it as zero images)"
    if "miou" in result:
        return f"MIoU {result['miou']:.6f} over {result['images']} images"
    return f"accuracy {result['accuracy']:.6f} ({result['correct']}/{result['images']})"
