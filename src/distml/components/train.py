"""KFP component ``train``: distributed training into a Model folder (distml.training.launch).

launcher="local" runs the workers as processes of the task (KFP's local runner, small
jobs); launcher="kubernetes" runs them as a TFJob. A TFJob's pods do not see the task's
artifacts, so the data is copied onto a PVC mounted both here (kfp.kubernetes.mount_pvc)
and in the pods (``pvc``, "NAME:MOUNT"), and the model is copied back from it.
"""

from typing import Dict, List  # noqa: UP035 - KFP's type parser wants typing generics

from kfp import dsl

from distml.components.image import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def train(
    data: dsl.Input[dsl.Dataset],
    model: dsl.Output[dsl.Model],
    metrics: dsl.Output[dsl.Metrics],
    logs: dsl.Output[dsl.Artifact],
    model_name: str = "cnn",
    workers: int = 2,
    epochs: int = 5,
    batch_size: int = 32,
    learning_rate: float = 0.001,
    image_size: int = 0,
    onnx: bool = True,
    launcher: str = "local",
    image: str = "",
    gpus_per_worker: int = 0,
    node_selector: Dict[str, str] = {},  # noqa: B006, UP006 - KFP reads defaults from the signature
    tolerations: List[Dict[str, str]] = [],  # noqa: B006, UP006
    namespace: str = "",
    pvc: str = "",
    timeout_seconds: int = 6 * 3600,
    data_shard: str = "",
):
    """Train model_name on the loaded-data folder ``data`` with ``workers`` workers.

    tolerations: [{"key": ..., "value": ... (optional), "effect": "NoSchedule"}]. ``logs``
    receives the worker logs (local) or the failed replicas' logs and events (TFJob).
    data_shard: a folder name from shard_data, to train on that shard of ``data`` only.
    """
    from pathlib import Path

    from distml.components.image import COMPONENT_IMAGE
    from distml.training import launch
    from distml.training.spec import PvcMount, Toleration
    from distml.training.worker import WorkerConfig

    config = WorkerConfig(
        model=model_name,
        data=Path(data.path) / data_shard if data_shard else Path(data.path),
        out=Path(model.path),
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        image_size=image_size or None,
        onnx=onnx,
    )
    Path(logs.path).mkdir(parents=True, exist_ok=True)
    if launcher == "kubernetes":
        if not pvc:
            from distml.errors import DistmlError

            raise DistmlError(
                "launcher=kubernetes needs a volume shared by this task and the TFJob's pods (pvc is empty)",
                hint="Compile the pipeline with DISTML_WORK_PVC=<ReadWriteMany claim> (docs/training.md).",
            )
        options = launch.ClusterOptions(
            image=image or COMPONENT_IMAGE,
            namespace=namespace,
            gpus_per_worker=gpus_per_worker,
            node_selector=dict(node_selector),
            tolerations=[Toleration(t["key"], t["effect"], t.get("value")) for t in tolerations],
            pvc=PvcMount.parse(pvc) if pvc else None,
            timeout=timeout_seconds,
            run_key=model.uri,  # same for a retried task of this run: the launcher re-attaches to its job
        )
        results = launch.train_kubernetes(config, workers, options, progress=print, failure_dir=logs.path)
    else:
        results = launch.train_local(config, workers, progress=print, log_dir=logs.path, timeout=timeout_seconds)
    for key in ("test_accuracy", "test_miou", "test_loss", "workers", "global_batch_size"):
        if key in results:
            metrics.log_metric(key, results[key])
    model.metadata.update({"architecture": model_name, "framework": "tensorflow", "workers": workers})
