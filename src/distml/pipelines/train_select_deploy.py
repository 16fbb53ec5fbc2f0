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
from distml.pipelines.parameter_docs import SERVING_ARGS, shared_args


@dsl.pipeline(name="train-select-deploy")
@shared_args(
    "epochs",
    "batch_size",
    "namespace",
    "gpus_per_worker",
    "node_selector",
    "tolerations",
    *SERVING_ARGS,
    "image",
)
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
        metric: The key of the models' metrics.json that selects the best, e.g. test_accuracy.
        lowest: Keep the model with the lowest metric (a loss) instead of the highest.
        launcher: "local" trains with worker processes inside the task; "kubernetes" runs a TFJob
            per model (Training Operator v1.9; needs a work PVC chosen at compile time, docs/training.md).
        min_replicas: Fewest predictor replicas.
        max_replicas: Most predictor replicas."""
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
