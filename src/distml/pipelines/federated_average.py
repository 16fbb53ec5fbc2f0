"""``federated_average``: train on separate shards, average the weights, evaluate, serve.

load data → ``shard_data`` cuts the training rows into one data folder per trainer → one
``train`` task per shard in parallel, each seeing only its shard → ``average_models``
averages their weights (same architecture) and evaluates the average on the test rows →
``deploy_kserve``. Data-parallel training without all-reduce: the aggregator of the seeds.
"""

# No `from __future__ import annotations`: KFP reads the pipeline's annotations.
from typing import Dict, List  # noqa: UP035 - KFP's type parser wants typing generics

from kfp import dsl

from distml.components.average_models import average_models
from distml.components.deploy_kserve import deploy_kserve
from distml.components.load_data import load_data
from distml.components.shard_data import shard_data
from distml.pipelines.first_step import check_first
from distml.pipelines.node_pools import DEFAULT_IMAGE, in_image, train_task
from distml.pipelines.parameter_docs import SERVING_ARGS, shared_args


@dsl.pipeline(name="federated-average")
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
def federated_average(
    source: str = "sklearn:digits",
    num_shards: int = 2,
    model_name: str = "mlp",
    workers_per_shard: int = 1,
    epochs: int = 10,
    batch_size: int = 32,
    launcher: str = "local",
    namespace: str = "",
    gpus_per_worker: int = 0,
    node_selector: Dict[str, str] = {},  # noqa: B006, UP006
    tolerations: List[Dict[str, str]] = [],  # noqa: B006, UP006
    deploy_target: str = "local",
    service_name: str = "distml-averaged",
    storage_uri: str = "",
    model_format: str = "tensorflow",
    serving_runtime_version: str = "",
    serving_service_account: str = "",
    serving_gpus: int = 0,
    serving_node_selector: Dict[str, str] = {},  # noqa: B006, UP006
    serving_tolerations: List[Dict[str, str]] = [],  # noqa: B006, UP006
    image: str = DEFAULT_IMAGE,
):
    """Train one model per data shard, average their weights, evaluate, deploy.

    Args:
        source: The dataset, as arrays: sklearn:digits, npz:PATH, keras:mnist, keras:fashion_mnist.
        num_shards: How many shards of the training rows, one trainer each.
        model_name: The architecture every trainer trains: mlp, cnn or lenet5.
        workers_per_shard: Workers of each trainer (MultiWorkerMirroredStrategy).
        launcher: "local" trains with worker processes inside the task; "kubernetes" runs a TFJob
            per shard (Training Operator v1.9; needs a work PVC chosen at compile time, docs/training.md)."""
    checked = check_first("federated_average", locals(), image)  # first: a run that cannot succeed fails here
    loaded = in_image(load_data(source=source).after(checked), image)
    shards = in_image(shard_data(data=loaded.outputs["dataset"], num_shards=num_shards), image)
    with dsl.ParallelFor(shards.outputs["Output"]) as shard:
        trained = train_task(
            image=image,
            data=shards.outputs["shards"],
            data_shard=shard,
            model_name=model_name,
            workers=workers_per_shard,
            epochs=epochs,
            batch_size=batch_size,
            launcher=launcher,
            namespace=namespace,
            gpus_per_worker=gpus_per_worker,
            node_selector=node_selector,
            tolerations=tolerations,
        )
    averaged = in_image(
        average_models(models=dsl.Collected(trained.outputs["model"]), data=loaded.outputs["dataset"]), image
    )
    deploy = deploy_kserve(
        model=averaged.outputs["averaged"],
        name=service_name,
        target=deploy_target,
        storage_uri=storage_uri,
        model_format=model_format,
        runtime_version=serving_runtime_version,
        service_account=serving_service_account,
        gpus=serving_gpus,
        node_selector=serving_node_selector,
        tolerations=serving_tolerations,
        namespace=namespace,
    )
    in_image(deploy, image)
