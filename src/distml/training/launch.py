"""Train with any launcher from one set of arguments: ``train`` is what the CLI and the component call.

The launcher is found by name in distml.training.launchers.LAUNCHER_MODULES; each answers
``dryrun()`` (what it would start) and ``run()`` (start that, wait, return the chief's metrics).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distml.errors import DistmlError
from distml.folders import DATA_METADATA
from distml.parameters import MAX_TIMEOUT_SECONDS, check_dns_label, check_int, check_training
from distml.tolerations import tolerations_from_dicts
from distml.training.launchers import LineProgress, create_launcher
from distml.training.worker import WorkerConfig

if TYPE_CHECKING:
    from distml.training.kubernetes import ClusterOptions

#: Metrics of metrics.json that the train component shows in KFP's UI.
HEADLINE_METRICS = ("test_accuracy", "test_miou", "test_loss", "workers", "global_batch_size")


def prepare_data(source: str, work_dir: str | os.PathLike[str]) -> Path:
    """A loaded-data folder for ``source``: the folder itself, or ``source`` loaded into ``work_dir``."""
    path = Path(source)
    if path.is_dir():
        if not DATA_METADATA.exists(path):
            raise DistmlError(
                "not a loaded-data folder (no metadata.json)",
                where=source,
                hint="Pass a folder from `distml data load`, or a source such as sklearn:digits or dtd:PATH.",
            )
        return path
    from distml.data.sources import load_data

    target = Path(work_dir) / "data"
    load_data(source, target)
    return target


def train(
    config: WorkerConfig,
    workers: int,
    *,
    launcher: str,
    options: ClusterOptions | None = None,
    progress: LineProgress | None = None,
    log_dir: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Train ``config`` with ``workers`` workers on ``launcher`` (a name of LAUNCHER_MODULES); return metrics.json.

    local: worker processes here, their logs in ``log_dir``; kubernetes: a TFJob placed per
    ``options`` (ClusterOptions, required), the failed replicas' logs and events in ``log_dir``.
    """
    check_training(
        workers=workers,
        epochs=config.epochs,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        image_size=config.image_size,
        model=config.model,
    )
    runner = create_launcher(launcher, options=options, progress=progress, log_dir=log_dir, timeout=timeout)
    return runner.run(config, workers)


def train_step(
    data_dir: str,
    model_dir: str,
    model_uri: str,
    logs_dir: str,
    *,
    model_name: str,
    workers: int,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    image_size: int,
    onnx: bool,
    launcher: str,
    image: str,
    gpus_per_worker: int,
    node_selector: dict[str, str],
    tolerations: list[dict[str, Any]],
    namespace: str,
    pvc: str,
    timeout_seconds: int,
    data_shard: str = "",
    progress: LineProgress | None = print,
) -> dict[str, Any]:
    """The train component's body: its inputs as KFP gives them ("" and 0 for unset, JSON tolerations).

    Kept in the library so an uploaded pipeline runs the logic of the image it names. With
    launcher=kubernetes the TFJob's pods run ``image`` (the pipelines pass their ``image``
    parameter, the same one their tasks run in) and share the work PVC ``pvc`` ("CLAIM:MOUNT").
    """
    # Before the data is read or a worker starts: KFP passes component inputs unchecked.
    check_training(
        workers=workers,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        image_size=image_size,
        model=model_name,
    )
    check_int("timeout_seconds", timeout_seconds, 1, MAX_TIMEOUT_SECONDS)
    check_dns_label("namespace", namespace, empty_ok=True)
    config = WorkerConfig(
        model=model_name,
        data=Path(data_dir) / data_shard if data_shard else Path(data_dir),
        out=Path(model_dir),
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        image_size=image_size or None,
        onnx=onnx,
    )
    Path(logs_dir).mkdir(parents=True, exist_ok=True)
    options = None
    if launcher == "kubernetes":  # the component's cluster inputs; other launchers take no options
        from distml.training.kubernetes import ClusterOptions, pod_template
        from distml.training.spec import PvcMount

        if not pvc:
            raise DistmlError(
                "launcher=kubernetes needs a volume shared by this task and the TFJob's pods (pvc is empty)",
                hint="Compile the pipeline with DISTML_WORK_PVC=<ReadWriteMany claim> (docs/training.md).",
            )
        if not image:
            raise DistmlError(
                "launcher=kubernetes needs the image the TFJob's workers run (image is empty)",
                hint="Pass the pipeline's `image` parameter, the image this task runs in.",
            )
        options = ClusterOptions(
            pod_template(
                image,
                gpus_per_worker=gpus_per_worker,
                node_selector=dict(node_selector),
                tolerations=tolerations_from_dicts(tolerations),
            ),
            namespace=namespace,
            pvc=PvcMount.parse(pvc),
            timeout=timeout_seconds,
            run_key=model_uri,  # same for a retried task of this run: the launcher re-attaches to its job
        )
    return train(
        config,
        workers,
        launcher=launcher,
        options=options,
        progress=progress,
        log_dir=logs_dir,
        timeout=timeout_seconds,
    )
