"""`distml train`: distributed training with local worker processes or a TFJob on a cluster."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import click

from distml.cli.options import (
    SEED,
    finite_callback,
    namespace_callback,
    option_errors,
    parse_node_selector,
    parse_toleration,
    source_callback,
)
from distml.parameters import (
    MAX_BATCH_SIZE,
    MAX_EPOCHS,
    MAX_GPUS,
    MAX_IMAGE_SIZE,
    MAX_LEARNING_RATE,
    MAX_TIMEOUT_SECONDS,
    MAX_WORKERS,
    MIN_IMAGE_SIZE,
    check_training,
)
from distml.training.launchers import create_launcher, launcher_names
from distml.training.models import ARCHITECTURES


def _echo_err(line: str) -> None:
    click.echo(line, err=True)


@click.command("train")
@click.option(
    "--launcher",
    type=click.Choice(launcher_names()),
    default=launcher_names()[0],
    show_default=True,
    help="Where the workers run: processes here (local) or a TFJob (kubernetes).",
)
@click.option("--workers", type=click.IntRange(1, MAX_WORKERS), default=2, show_default=True, help="Worker replicas.")
@click.option("--model", "model", type=click.Choice(ARCHITECTURES), required=True, help="Architecture.")
@click.option(
    "--data",
    "source",
    required=True,
    callback=source_callback,
    help="Loaded-data folder, or a source: sklearn:digits, dtd:PATH, npz:PATH...",
)
@click.option("--epochs", type=click.IntRange(1, MAX_EPOCHS), default=5, show_default=True)
@click.option("--batch-size", type=click.IntRange(1, MAX_BATCH_SIZE), default=32, show_default=True, help="Per worker.")
@click.option(
    "--learning-rate",
    type=click.FloatRange(0, MAX_LEARNING_RATE, min_open=True),
    default=1e-3,
    show_default=True,
    callback=finite_callback,
)
@click.option(
    "--image-size",
    type=click.IntRange(MIN_IMAGE_SIZE, MAX_IMAGE_SIZE),
    default=None,
    help="Resize DTD images (unet-small: a multiple of 4, e.g. 32, 64).",
)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True, help="Model folder.")
@click.option("--onnx", is_flag=True, help="Also export model.onnx.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--image", default=None, help="[kubernetes] Worker image [default: the components' image].")
@click.option("--gpus-per-worker", type=click.IntRange(0, MAX_GPUS), default=0, show_default=True, help="[kubernetes]")
@click.option("--node-selector", multiple=True, metavar="KEY=VALUE", help="[kubernetes] Repeatable.")
@click.option("--toleration", multiple=True, metavar="KEY[=VALUE]:EFFECT", help="[kubernetes] Repeatable.")
@click.option(
    "--namespace",
    default="",
    callback=namespace_callback,
    help="[kubernetes] Default: the pod's namespace, or the kubeconfig context's.",
)
@click.option("--pvc", default=None, metavar="NAME:MOUNT", help="[kubernetes] Volume shared with the worker pods.")
@click.option(
    "--timeout",
    type=click.FloatRange(1, MAX_TIMEOUT_SECONDS),
    default=6 * 3600,
    show_default=True,
    help="Seconds.",
    callback=finite_callback,
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print what would start and start nothing: the worker processes and their TF_CONFIG (local), "
    "the TFJob YAML (kubernetes, no API call).",
)
def train(
    launcher: str,
    workers: int,
    model: str,
    source: str,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    image_size: int | None,
    out_dir: Path,
    onnx: bool,
    seed: int,
    image: str | None,
    gpus_per_worker: int,
    node_selector: tuple[str, ...],
    toleration: tuple[str, ...],
    namespace: str,
    pvc: str | None,
    timeout: float,
    dry_run: bool,
) -> None:
    """Train MODEL on DATA with WORKERS MultiWorkerMirroredStrategy workers; write a Model folder to OUT."""
    from distml.training import launch
    from distml.training.spec import PvcMount
    from distml.training.worker import WorkerConfig

    if launcher != "kubernetes" and (image or pvc or node_selector or toleration or gpus_per_worker):
        raise click.UsageError(
            "--image, --gpus-per-worker, --node-selector, --toleration and --pvc need --launcher kubernetes"
        )
    # Rules the options' types cannot express (unet-small's size a multiple of 4), before any data is read.
    check_training(
        workers=workers,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        image_size=image_size,
        model=model,
    )
    here = launcher != "kubernetes"  # the workers see this machine's paths
    out = out_dir.resolve() if here else out_dir
    if here and out.exists() and (not out.is_dir() or any(out.iterdir())):
        from distml.errors import DistmlError

        raise DistmlError(  # before training, not after it (the model folder is written last)
            "model output folder is not empty", where=str(out), hint="Choose a new or empty folder."
        )
    config = WorkerConfig(
        model=model,
        data=Path(source),
        out=out,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        image_size=image_size,
        onnx=onnx,
        seed=seed,
    )
    options = None
    if launcher == "kubernetes":  # the [kubernetes] options; other launchers take none
        from distml.components.image import COMPONENT_IMAGE
        from distml.training.kubernetes import ClusterOptions, pod_template

        with option_errors():
            options = ClusterOptions(
                pod_template(
                    image or COMPONENT_IMAGE,
                    gpus_per_worker=gpus_per_worker,
                    node_selector=parse_node_selector(node_selector),
                    tolerations=[parse_toleration(item) for item in toleration],
                ),
                namespace=namespace,
                pvc=PvcMount.parse(pvc) if pvc else None,
                timeout=timeout,
            )
    if dry_run:  # starts nothing, loads no data
        if not Path(source).is_dir():
            _echo_err(f"note: {source} is loaded into a work folder when training starts; shown as given")
        elif here:
            config.data = Path(source).resolve()
        click.echo(create_launcher(launcher, options=options).dryrun(config, workers).text, nl=False)
        return
    if launcher == "kubernetes":
        with tempfile.TemporaryDirectory(prefix="distml-train-") as work:
            config.data = launch.prepare_data(source, work)
            metrics = launch.train(
                config,
                workers,
                launcher="kubernetes",
                options=options,
                progress=_echo_err,
                log_dir=out.parent / f"{out.name}.failure",
            )
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{out.name}.work-", dir=out.parent))
        try:
            config.data = launch.prepare_data(source, work).resolve()
            metrics = launch.train(config, workers, launcher=launcher, progress=_echo_err, timeout=timeout)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    shown = {k: round(v, 4) for k, v in metrics.items() if k.startswith("test_")}
    click.echo(f"model folder: {out}  workers={metrics['workers']} " + " ".join(f"{k}={v}" for k, v in shown.items()))
