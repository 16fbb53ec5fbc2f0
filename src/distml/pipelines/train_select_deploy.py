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
from distml.pipelines.node_pools import DEFAULT_IMAGE, in_image, train_task


@dsl.pipeline(
    name="train-select-deploy",
    description="Train several models in parallel (TFJobs, MultiWorkerMirroredStrategy), select the best, "
    "deploy it on KServe.",
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
    loaded = in_image(load_data(source=source), image)
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
