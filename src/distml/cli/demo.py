"""`distml demo`: the README's main job, ``end_to_end`` on KFP's local runner."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from distml.cli.data import console
from distml.parameters import MAX_EPOCHS, MAX_PARTS, MAX_SYNTHETIC_IMAGES


@click.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-output"),
    show_default=True,
    help="Folder for the run (KFP's task folders, run.json, kfp-local.log).",
)
@click.option(
    "--images",
    type=click.IntRange(10, MAX_SYNTHETIC_IMAGES),
    default=80,
    show_default=True,
    help="Synthetic lesion images.",
)
@click.option(
    "--parts",
    type=click.IntRange(1, MAX_PARTS),
    default=2,
    show_default=True,
    help="Parts inferred in parallel (at most --images).",
)
@click.option("--epochs", type=click.IntRange(1, MAX_EPOCHS), default=10, show_default=True)
def demo(out_dir: Path, images: int, parts: int, epochs: int) -> None:
    """Run end_to_end locally: synthetic lesions → train candidates (ONNX) → select → infer per part → serve."""
    from distml.cli.pipelines import _show_note, _show_progress, check_run_arguments
    from distml.runs import run_pipeline_locally

    arguments = {"images": images, "num_parts": parts, "epochs": epochs}
    if parts > images:  # checked before anything runs: this once trained first and failed in the split
        raise click.BadParameter(f"{parts} parts of {images} images: a part would be empty", param_hint="--parts")
    check_run_arguments("end_to_end", arguments)
    out_dir.mkdir(parents=True, exist_ok=True)  # a file in the way fails here, not after the first task
    run = run_pipeline_locally("end_to_end", arguments, out_dir=out_dir, on_progress=_show_progress, on_note=_show_note)
    _print_stage_shares(run)
    gathered = run.task_outputs.get("gather-metrics", {})
    chosen = run.task_outputs.get("select-model", {})
    deployed = run.task_outputs.get("deploy-kserve", {})
    console.print(f"\nend_to_end SUCCEEDED in {run.seconds:.1f} s. Results:")
    console.print(f"  test MIoU gathered over {parts} parts: {gathered.get('Output')}")
    console.print(f"  chosen model (SavedModel, ONNX, metrics): {chosen.get('best')}")
    console.print(f"  model comparison: {chosen.get('comparison')}")
    console.print(f"  inference report (HTML): {gathered.get('report')}")
    console.print(f"  served locally, checked and stopped: {deployed.get('url')} ({deployed.get('status')})")
    console.print(f"  InferenceService it would apply on a cluster: {deployed.get('manifest')}")
    console.print(f"  every task's output: {run.run_dir} (run.json, kfp-local.log)")


def _print_stage_shares(run) -> None:
    """Wall time of each stage (first task started to last task ended) and its share of the run."""
    spans: dict[str, list[float]] = {}
    for progress in run.tasks:
        if progress.task == "run":
            continue
        span = spans.setdefault(progress.task, [progress.elapsed_s, progress.elapsed_s])
        span[0] = min(span[0], progress.elapsed_s)
        span[1] = max(span[1], progress.elapsed_s)
    table = Table(title="wall time per stage (parallel tasks overlap)")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_column("share of the run", justify="right")
    for stage, (start, end) in spans.items():
        table.add_row(stage, f"{end - start:.1f}", f"{(end - start) / run.seconds:.0%}")
    console.print(table)
