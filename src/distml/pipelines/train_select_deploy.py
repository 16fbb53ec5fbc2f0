"""``train_select_deploy``: train several models in parallel, keep the best, serve it.

load data → one ``train`` task per model architecture in parallel (each a TFJob of
MultiWorkerMirroredStrategy workers on a cluster, local worker processes on the local runner)
→ ``select_model`` by a named metric → ``deploy_kserve`` (an InferenceService on a cluster;
KServe's model server on loopback, checked and stopped, on the local runner). The seeds'
Fashion-MNIST pipeline, with digits as the offline default.
"""

# No `from __future__ import annotations`: KFP reads the pipeline's annotations.
from typing import Dict, List  # noqa: UP035 - KFP's type parser wants typing generics

from kfp import dsl

from distml.components.deploy_kserve import deploy_kserve
from distml.components.load_data import load_data
from distml.components.select_model import select_model
from distml.pipelines.first_step import check_first
from distml.pipelines.node_pools import DEFAULT_IMAGE, in_image, train_task


@dsl.pipeline(name="train-select-deploy")
def train_select_deploy(
    source: str = "sklearn:digits",
    models: List[str] = ["mlp", "lenet5"],  # noqa: B006, UP006
    workers: int = 2,
    epochs: int = 8,
    batch_size: int = 32,
    metric: str = "test_accuracy",
    lowest: bool = False,
    launcher: str = "local",
    namespace: str = "",
    gpus_per_worker: int = 0,
    node_selector: Dict[str, str] = {},  # noqa: B006, UP006
    tolerations: List[Dict[str, str]] = [],  # noqa: B006, UP006
    deploy_target: str = "local",
    service_name: str = "distml-classifier",
    storage_uri: str = "",
    model_format: str = "tensorflow",
    serving_runtime_version: str = "",
    serving_service_account: str = "",
    serving_gpus: int = 0,
    serving_node_selector: Dict[str, str] = {},  # noqa: B006, UP006
    serving_tolerations: List[Dict[str, str]] = [],  # noqa: B006, UP006
    min_replicas: int = 1,
    max_replicas: int = 1,
    image: str = DEFAULT_IMAGE,
):
    """Train several models in parallel (TFJobs, MultiWorkerMirroredStrategy), select the best, deploy it on KServe.

    Args:
        source: The dataset: sklearn:digits, synthetic:digits, npz:PATH, dtd:PATH, keras:mnist,
            keras:fashion_mnist (classification).
        models: The architectures to train, one task each: mlp, cnn, lenet5.
        workers: Workers per model (MultiWorkerMirroredStrategy).
        epochs: Training epochs.
        batch_size: Batch size per worker.
        metric: The key of the models' metrics.json that selects the best, e.g. test_accuracy.
        lowest: Keep the model with the lowest metric (a loss) instead of the highest.
        launcher: "local" trains with worker processes inside the task; "kubernetes" runs a TFJob
            per model (Training Operator v1.9; needs a work PVC chosen at compile time, docs/training.md).
        namespace: Where TFJobs and the InferenceService run; empty: the namespace the tasks run in.
        gpus_per_worker: GPUs each TFJob worker asks for.
        node_selector: Node labels the TFJobs' pods must match, e.g. {"pool": "gpu"}.
        tolerations: Tolerations of the TFJobs' pods in Kubernetes' fields, e.g.
            [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}].
        deploy_target: "local" checks the model with KServe's model server in the task and stops it;
            "kserve" creates or patches the InferenceService and waits until it is Ready.
        service_name: The InferenceService's name.
        storage_uri: Where the predictor reads the Model folder (pvc://, s3://, gs://); empty: the
            artifact's own object-store URI, which needs serving_service_account.
        model_format: "tensorflow" (TF Serving, SavedModel) or "onnx" (Triton, the folder's Triton repository).
        serving_runtime_version: The serving runtime's image tag; empty: TF Serving 2.20.0 (-gpu with
            GPUs), or KServe's default Triton.
        serving_service_account: The predictor's service account, whose secret holds the S3 keys and
            endpoint (docs/cluster-setup.md).
        serving_gpus: GPUs of the predictor.
        serving_node_selector: Node labels the predictor's pods must match (serving often runs on
            another pool than training).
        serving_tolerations: Tolerations of the predictor's pods, in Kubernetes' fields.
        min_replicas: Fewest predictor replicas.
        max_replicas: Most predictor replicas.
        image: The container image every task (and every TFJob worker) runs; defaults to this
            package's versioned image.
    """
    checked = check_first("train_select_deploy", locals(), image)  # first: a run that cannot succeed fails here
    loaded = in_image(load_data(source=source).after(checked), image)
    with dsl.ParallelFor(models) as model_name:
        trained = train_task(
            image=image,
            data=loaded.outputs["dataset"],
            model_name=model_name,
            workers=workers,
            epochs=epochs,
            batch_size=batch_size,
            launcher=launcher,
            namespace=namespace,
            gpus_per_worker=gpus_per_worker,
            node_selector=node_selector,
            tolerations=tolerations,
        )
    best = in_image(select_model(models=dsl.Collected(trained.outputs["model"]), metric=metric, lowest=lowest), image)
    deploy = deploy_kserve(
        model=best.outputs["best"],
        name=service_name,
        target=deploy_target,
        storage_uri=storage_uri,
        model_format=model_format,
        runtime_version=serving_runtime_version,
        service_account=serving_service_account,
        gpus=serving_gpus,
        node_selector=serving_node_selector,
        tolerations=serving_tolerations,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        namespace=namespace,
    )
    in_image(deploy, image)
