"""Train with either launcher from one set of arguments: ``train`` is what the CLI and the component call."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from distml import kube
from distml.errors import DistmlError
from distml.folders import DATA_METADATA, MODEL_METRICS, read_model_metrics
from distml.staging import staged_folder
from distml.tolerations import tolerations_from_dicts
from distml.training.local import run_local
from distml.training.spec import PvcMount, TrainingSpec, worker_args, worker_command
from distml.training.worker import WorkerConfig

Progress = Callable[[str], None]
LAUNCHERS = ("local", "kubernetes")
#: Metrics of metrics.json that the train component shows in KFP's UI.
HEADLINE_METRICS = ("test_accuracy", "test_miou", "test_loss", "workers", "global_batch_size")


@dataclass
class ClusterOptions:
    """How the launcher runs a TFJob: ``pods`` says where and how its replicas run, the rest is the launcher's.

    ``pods`` is a TrainingSpec (one type for the pods' image and placement, not a copy of its
    fields) whose command and worker count the launch fills in from the training; build it with
    ``pod_template``. ``pvc`` is the volume shared by the launcher and the pods (the data goes
    there and the model comes back); the launch adds it to the pods' volumes.
    """

    pods: TrainingSpec
    namespace: str = ""  # empty: the namespace we run in (the pod's, or the kubeconfig context's)
    pvc: PvcMount | None = None
    timeout: float = 6 * 3600
    poll_interval: float = 10.0
    run_key: str = ""  # stable per run (the component passes its output URI); empty: a new job every call


def pod_template(image: str, **placement: Any) -> TrainingSpec:
    """ClusterOptions.pods running ``image``; ``placement`` takes TrainingSpec's fields (gpus_per_worker,
    node_selector, tolerations, chief, cpu, memory, service_account, run_policy, ...).

    Its command and worker count are placeholders: cluster_spec sets them from the training.
    """
    return TrainingSpec(image=image, command=[], **placement)


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


def train_local(
    config: WorkerConfig,
    workers: int,
    *,
    progress: Progress | None = None,
    log_dir: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Train with ``workers`` local processes; return the chief's metrics.json."""
    with tempfile.TemporaryDirectory(prefix="distml-train-logs-") as scratch:
        run_local(worker_args(config), workers, log_dir=log_dir or scratch, progress=progress, timeout=timeout)
    return read_model_metrics(config.out)


def train(
    config: WorkerConfig,
    workers: int,
    *,
    launcher: str,
    options: ClusterOptions | None = None,
    progress: Progress | None = None,
    log_dir: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Train ``config`` with ``workers`` workers on ``launcher``; return the chief's metrics.json.

    local: worker processes here, their logs in ``log_dir``; kubernetes: a TFJob placed per
    ``options`` (required), the failed replicas' logs and events in ``log_dir``.
    """
    if launcher not in LAUNCHERS:
        raise DistmlError(f"launcher {launcher!r} unknown", hint=f"Use one of: {', '.join(LAUNCHERS)}.")
    if launcher == "local":
        return train_local(config, workers, progress=progress, log_dir=log_dir, timeout=timeout)
    if options is None:
        raise DistmlError("launcher=kubernetes needs ClusterOptions (image, namespace, placement)")
    return train_kubernetes(config, workers, options, progress=progress, failure_dir=log_dir)


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
    progress: Progress | None = print,
) -> dict[str, Any]:
    """The train component's body: its inputs as KFP gives them ("" and 0 for unset, JSON tolerations).

    Kept in the library so an uploaded pipeline runs the logic of the image it names. With
    launcher=kubernetes the TFJob's pods run ``image`` (the pipelines pass their ``image``
    parameter, the same one their tasks run in) and share the work PVC ``pvc`` ("CLAIM:MOUNT").
    """
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
    if launcher == "kubernetes":
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


def cluster_spec(config: WorkerConfig, workers: int, options: ClusterOptions) -> TrainingSpec:
    """The TrainingSpec of a TFJob that runs ``config`` (its paths as the pods see them)."""
    pvcs = [*options.pods.pvcs, options.pvc] if options.pvc else options.pods.pvcs
    return replace(options.pods, command=worker_command(config), workers=workers, pvcs=pvcs)


def dry_run_yaml(config: WorkerConfig, workers: int, options: ClusterOptions, name: str) -> str:
    """The TFJob YAML that train_kubernetes would create; calls no API."""
    from distml.training.tfjob import build_tfjob, to_yaml

    options = replace(options, namespace=options.namespace or kube.current_namespace())
    staged = _on_volume(config, options, name) if options.pvc else config
    return to_yaml(build_tfjob(cluster_spec(staged, workers, options), name=name, namespace=options.namespace))


def job_name_for(config: WorkerConfig, options: ClusterOptions) -> str:
    from distml.training.tfjob import job_name

    return job_name(f"distml-{config.model}", options.run_key or uuid.uuid4().hex)


def train_kubernetes(
    config: WorkerConfig,
    workers: int,
    options: ClusterOptions,
    *,
    api_client: Any | None = None,
    progress: Progress | None = None,
    failure_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Run ``config`` as a TFJob; with a PVC, stage the data onto it and copy the model back to ``config.out``.

    Without a PVC, ``config.data`` and ``config.out`` must already be paths the pods can reach.
    With one, the job works in ``<mount>/distml/<job name>``, which is removed when the run ends,
    failed or not; a retry of the same run (same ``run_key``) whose job had already exported
    its model copies that model instead of training again. So when only the copy back fails,
    the exported model stays on the volume for that retry.
    """
    report = progress or (lambda line: None)
    options = replace(options, namespace=options.namespace or kube.current_namespace())
    name = job_name_for(config, options)
    if not options.pvc:
        _launch(config, workers, options, name, api_client, progress, failure_dir)
        return read_model_metrics(config.out)
    if not Path(options.pvc.mount_path).is_dir():
        raise DistmlError(
            f"the PVC {options.pvc.claim} is not mounted here at {options.pvc.mount_path}",
            hint="Mount the same PVC in the launching pod (kfp.kubernetes.mount_pvc) so data and model can "
            "be copied; or pass --data and --out as paths on the volume, without --pvc.",
        )
    _check_output_folder(config.out)  # now, not after hours of training
    job_config = _on_volume(config, options, name)
    job_root = Path(job_config.out).parent
    try:
        if MODEL_METRICS.exists(job_config.out):
            report(f"tfjob {name}: an earlier attempt of this run exported the model already; copying it")
        else:
            _stage_copy(Path(config.data), Path(job_config.data))
            _launch(job_config, workers, options, name, api_client, progress, failure_dir)
        with staged_folder(config.out, what="model folder") as staging:
            shutil.copytree(job_config.out, staging, dirs_exist_ok=True)
    except BaseException:
        if options.run_key and MODEL_METRICS.exists(job_config.out):  # trained: a retry copies, not retrains
            report(f"tfjob {name}: the model stays on the volume at {job_config.out} for a retry of this run")
            for scratch in job_root.iterdir():  # the data, the backup, any staging folder
                if scratch != job_config.out:
                    shutil.rmtree(scratch, ignore_errors=True)
        else:
            shutil.rmtree(job_root, ignore_errors=True)
        raise
    shutil.rmtree(job_root, ignore_errors=True)
    return read_model_metrics(config.out)


def _launch(
    config: WorkerConfig,
    workers: int,
    options: ClusterOptions,
    name: str,
    api_client: Any | None,
    progress: Progress | None,
    failure_dir: str | os.PathLike[str] | None,
) -> None:
    from distml.training.kubernetes import TFJobLauncher, launching_pod_owner

    launcher = TFJobLauncher(
        api_client if api_client is not None else kube.api_client(),
        namespace=options.namespace,
        poll_interval=options.poll_interval,
        progress=progress,
        failure_dir=failure_dir,
    )
    owner = launching_pod_owner(namespace=options.namespace)
    launcher.run(cluster_spec(config, workers, options), name=name, timeout=options.timeout, owner=owner)


def _check_output_folder(out: Path) -> None:
    """The model folder must be new or empty, and its parent creatable."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DistmlError("model folder is not empty", where=str(out), hint="Choose a new or empty --out folder.")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DistmlError(f"cannot create the model folder's parent ({err.strerror})", where=str(out.parent)) from None


def _stage_copy(source: Path, target: Path) -> None:
    """Copy a folder so that ``target`` exists only complete (a crash mid-copy leaves no half folder)."""
    if target.exists():
        return
    with staged_folder(target, what="data folder on the volume") as staging:
        shutil.copytree(source, staging, dirs_exist_ok=True)


def _on_volume(config: WorkerConfig, options: ClusterOptions, name: str) -> WorkerConfig:
    """The same config with data and output in a per-job folder on the shared volume."""
    assert options.pvc is not None
    root = Path(options.pvc.mount_path) / "distml" / name
    return replace(config, data=root / "data", out=root / "model", backup_dir=root / "backup")
