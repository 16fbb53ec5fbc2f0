"""KFP component ``train``: distributed training into a Model folder (distml.training.launch.train_step).

launcher="local" runs the workers as processes of the task (KFP's local runner, small
jobs); launcher="kubernetes" runs them as a TFJob of ``image``. A TFJob's pods do not see the
task's artifacts, so the data is copied onto a PVC mounted both here (kfp.kubernetes.mount_pvc)
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
    """Train a model with MultiWorkerMirroredStrategy workers into a Model folder.

    Args:
        data: A data folder written by load_data (or shard_data's folders, with data_shard).
        model_name: The architecture: mlp, cnn, lenet5 (classification) or unet-small (segmentation).
        workers: How many workers (processes, or TFJob replicas); each trains on its share of the data.
        epochs: Training epochs.
        batch_size: Batch size per worker (the global batch is workers times this).
        learning_rate: The optimizer's learning rate.
        image_size: Side in pixels DTD images are resized to; 0 keeps the first image's size.
        onnx: Also export model.onnx (and the Triton repository and, where EDDL imports it,
            model-eddl.onnx) beside the SavedModel.
        launcher: "local" runs the workers as processes of this task; "kubernetes" runs them
            as a TFJob (Training Operator v1.9).
        image: The image the TFJob's workers run (launcher="kubernetes"; the pipelines pass
            the image their tasks run in).
        gpus_per_worker: GPUs each TFJob worker asks for (launcher="kubernetes").
        node_selector: Node labels the TFJob's pods must match, e.g. {"pool": "gpu"}.
        tolerations: Tolerations of the TFJob's pods in Kubernetes' fields, e.g.
            [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}].
        namespace: Where the TFJob runs; empty: the namespace this task runs in.
        pvc: "CLAIM:MOUNT", the ReadWriteMany volume this task and the TFJob's pods share
            (the data goes there and the model comes back); needed by launcher="kubernetes".
        timeout_seconds: How long training may take before its workers (or TFJob) are stopped.
        data_shard: A folder name from shard_data, to train on that shard of ``data`` only.

    Returns:
        model: The Model folder: SavedModel (model/1/), model.keras, ONNX exports,
            metrics.json and model.json.
        metrics: The headline test metrics and the worker count, for KFP's UI.
        logs: The workers' logs (local), or the failed replicas' logs and events (TFJob).
    """
    from distml.training.launch import HEADLINE_METRICS, train_step

    results = train_step(
        data.path,
        model.path,
        model.uri,
        logs.path,
        model_name=model_name,
        workers=workers,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        image_size=image_size,
        onnx=onnx,
        launcher=launcher,
        image=image,
        gpus_per_worker=gpus_per_worker,
        node_selector=node_selector,
        tolerations=tolerations,
        namespace=namespace,
        pvc=pvc,
        timeout_seconds=timeout_seconds,
        data_shard=data_shard,
    )
    for key in HEADLINE_METRICS:
        if key in results:
            metrics.log_metric(key, results[key])
    model.metadata.update({"architecture": model_name, "framework": "tensorflow", "workers": workers})
