"""``end_to_end``: the whole path on segmentation data, from a dataset to a served model.

load a DTD dataset → train candidate ``unet-small`` models in parallel (one per learning
rate; TFJobs on a cluster), each exported to ONNX → ``select_model`` keeps the best by the
test MIoU of training → distributed inference of that model over N parts of the dataset
(ECVL/EDDL or ONNX Runtime, one task per part, gathered, parts cleaned up) → ``deploy_kserve``,
only once the per-part inference succeeded, so a model that fails on the data is never
served. On the local runner the defaults use synthetic lesions and serve with KServe's model
server on loopback (checked, then stopped), writing the InferenceService manifest.

The candidates are selected before the distributed inference, not after: selecting on the
gathered metrics would need a ParallelFor of parts inside the ParallelFor of candidates, and
a fan-in from such a nested loop, which KFP does not support.
"""

# No `from __future__ import annotations`: KFP reads the pipeline's annotations.
from typing import Dict, List  # noqa: UP035 - KFP's type parser wants typing generics

from kfp import dsl

from distml.components.deploy_kserve import deploy_kserve
from distml.components.load_data import load_data
from distml.components.select_model import select_model
from distml.pipelines.distributed_inference import infer_in_parallel
from distml.pipelines.first_step import check_first
from distml.pipelines.node_pools import DEFAULT_IMAGE, in_image, train_task
from distml.pipelines.parameter_docs import SERVING_ARGS, shared_args


@dsl.pipeline(name="end-to-end")
@shared_args(
    "images",
    "epochs",
    "namespace",
    "gpus_per_worker",
    "gpus",
    "accelerator",
    *SERVING_ARGS,
    "image",
)
def end_to_end(
    source: str = "synthetic:lesions",
    images: int = 80,
    image_size: int = 64,
    learning_rates: List[float] = [0.001, 0.003],  # noqa: B006, UP006
    workers: int = 1,
    epochs: int = 10,
    batch_size: int = 8,
    num_parts: int = 2,
    backend: str = "onnxruntime",
    launcher: str = "local",
    namespace: str = "",
    gpus_per_worker: int = 0,
    gpus: str = "0",
    accelerator: str = "nvidia.com/gpu",
    node_selector: Dict[str, str] = {},  # noqa: B006, UP006
    tolerations: List[Dict[str, str]] = [],  # noqa: B006, UP006
    deploy_target: str = "local",
    service_name: str = "distml-lesions",
    storage_uri: str = "",
    model_format: str = "onnx",
    serving_runtime_version: str = "",
    serving_service_account: str = "",
    serving_gpus: int = 0,
    serving_node_selector: Dict[str, str] = {},  # noqa: B006, UP006
    serving_tolerations: List[Dict[str, str]] = [],  # noqa: B006, UP006
    image: str = DEFAULT_IMAGE,
):
    """Train candidates (TFJobs) and export ONNX, select the best, distributed inference per part, deploy on KServe.

    Args:
        source: The DTD segmentation dataset: dtd:PATH or synthetic:lesions.
        image_size: Side in pixels of the synthetic images, and the models' input size.
        learning_rates: One unet-small candidate per learning rate, trained in parallel.
        workers: Workers per candidate (MultiWorkerMirroredStrategy).
        batch_size: Batch size per worker, and images per inference batch.
        num_parts: How many parts of the dataset, inferred in parallel.
        backend: Inference backend: "onnxruntime" (ONNX Runtime) or "ecvl" (DeepHealth's ECVL/EDDL).
        launcher: "local" trains with worker processes inside the task; "kubernetes" runs a TFJob
            per candidate (Training Operator v1.9; needs a work PVC chosen at compile time, docs/training.md).
        node_selector: Node labels the TFJobs' and the inference pods must match, e.g. {"pool": "gpu"}.
        tolerations: Tolerations of the TFJobs' and the inference pods in Kubernetes' fields, e.g.
            [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]."""
    checked = check_first("end_to_end", locals(), image)  # first: a run that cannot succeed fails here
    loaded = in_image(load_data(source=source, images=images, size=image_size).after(checked), image)
    with dsl.ParallelFor(learning_rates) as learning_rate:
        trained = train_task(
            data=loaded.outputs["dataset"],
            image=image,
            model_name="unet-small",
            learning_rate=learning_rate,
            workers=workers,
            epochs=epochs,
            batch_size=batch_size,
            image_size=image_size,
            onnx=True,
            launcher=launcher,
            namespace=namespace,
            gpus_per_worker=gpus_per_worker,
            node_selector=node_selector,
            tolerations=tolerations,
        )
    best = in_image(select_model(models=dsl.Collected(trained.outputs["model"]), metric="test_miou"), image)
    gpu = {"node_selector": node_selector, "tolerations": tolerations, "gpus": gpus, "accelerator": accelerator}
    gathered = infer_in_parallel(
        best.outputs["best"],
        loaded,
        num_parts=num_parts,
        backend=backend,
        split="test",
        batch_size=batch_size,
        gpu=gpu,
        image=image,
    )
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
        namespace=namespace,
    ).after(gathered)
    in_image(deploy, image)
