"""``distributed_inference``: DeepHealth's distributed inference as one KFP pipeline.

load a DTD dataset → split it into N parts → one ``infer_shard`` task per part in parallel
(``dsl.ParallelFor``) → ``gather_metrics`` (weighted by images: the same numbers as the
unsplit dataset) → ``cleanup_parts`` removes the temporary parts (or, where the object store
keeps them, says what it left). The model comes from ``model_uri`` (a Model folder: gs://, s3://, minio:// or a local
path) or, when that is empty, from a quick ``unet-small`` trained on the same data, so the
defaults run as they are on KFP's local runner.
"""

# No `from __future__ import annotations`: KFP reads the pipeline's annotations.
from typing import Dict, List  # noqa: UP035 - KFP's type parser wants typing generics

from kfp import dsl

from distml.components.cleanup_parts import cleanup_parts
from distml.components.gather_metrics import gather_metrics
from distml.components.infer_shard import infer_shard
from distml.components.load_data import load_data
from distml.components.split_dataset import split_dataset
from distml.components.train import train
from distml.pipelines.first_step import check_first
from distml.pipelines.node_pools import DEFAULT_IMAGE, in_image, on_gpu_pool
from distml.pipelines.parameter_docs import shared_args


def infer_in_parallel(model, loaded, *, num_parts, backend, split, batch_size, gpu, image) -> dsl.PipelineTask:
    """Split ``loaded``, infer every part in parallel, gather, then remove the parts (once, after the gather).

    Not ``ignore_upstream_failure()``: KFP's Argo compiler turns it into an exit hook on *each*
    dependency (kubeflow/pipelines 2.17.0 backend/src/v2/compiler/argocompiler/dag.go:62-104), so
    the clean-up would also run right after split_dataset, before the shards read the parts.
    After a failed shard the parts stay, for a retry (docs/inference.md).
    """
    parts = in_image(split_dataset(dataset=loaded.outputs["dataset"], num_parts=num_parts), image)
    with dsl.ParallelFor(parts.outputs["Output"]) as part:
        shard = infer_shard(
            model=model,
            parts=parts.outputs["parts"],
            dataset=loaded.outputs["dataset"],
            part=part,
            backend=backend,
            split=split,
            batch_size=batch_size,
            # Also inputs of the task, not only pod settings: KFP 2.17's local runner cannot
            # resolve accelerator settings from pipeline parameters otherwise (inside a ParallelFor).
            gpus=gpu["gpus"],
            accelerator=gpu["accelerator"],
        )
        on_gpu_pool(in_image(shard, image), **gpu)
    gathered = in_image(gather_metrics(shards=dsl.Collected(shard.outputs["shard"])), image)
    in_image(cleanup_parts(parts=parts.outputs["parts"]), image).after(gathered)
    return gathered


@dsl.pipeline(name="distributed-inference")
@shared_args("images", "gpus", "accelerator")
def distributed_inference(
    source: str = "synthetic:lesions",
    images: int = 40,
    image_size: int = 32,
    num_parts: int = 2,
    model_uri: str = "",
    backend: str = "onnxruntime",
    split: str = "test",
    batch_size: int = 8,
    quick_model_epochs: int = 10,
    gpus: str = "0",
    accelerator: str = "nvidia.com/gpu",
    node_selector: Dict[str, str] = {},  # noqa: B006, UP006
    tolerations: List[Dict[str, str]] = [],  # noqa: B006, UP006
    image: str = DEFAULT_IMAGE,
):
    """Split a DTD dataset into parts, infer each part in parallel (ECVL/EDDL or ONNX Runtime), gather, clean up.

    Args:
        source: The DTD dataset: dtd:PATH, synthetic:lesions or synthetic:digits.
        image_size: Side in pixels of synthetic:lesions' images, and the quick model's input size.
        num_parts: How many parts, inferred in parallel.
        model_uri: A Model folder to infer with (gs://, s3://, minio:// or a local path); empty:
            train a quick unet-small on the same data first.
        backend: "onnxruntime" (ONNX Runtime) or "ecvl" (DeepHealth's ECVL/EDDL).
        split: The split of each part to infer: training, validation or test.
        batch_size: Images per inference batch.
        quick_model_epochs: Training epochs of the quick model (used when model_uri is empty).
        node_selector: Node labels the inference pods must match, e.g. {"pool": "gpu"}.
        tolerations: Tolerations of the inference pods in Kubernetes' fields, e.g.
            [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}].
        image: The container image every task runs; defaults to this
            package's versioned image.
    """
    checked = check_first("distributed_inference", locals(), image)  # first: a run that cannot succeed fails here
    gpu = {"node_selector": node_selector, "tolerations": tolerations, "gpus": gpus, "accelerator": accelerator}
    loaded = in_image(load_data(source=source, images=images, size=image_size).after(checked), image)
    with dsl.If(model_uri == "", name="no-model-given"):
        quick = train(
            data=loaded.outputs["dataset"],
            model_name="unet-small",
            workers=1,
            epochs=quick_model_epochs,
            batch_size=8,
            image_size=image_size,
        )
        in_image(quick, image)
        infer_in_parallel(
            quick.outputs["model"],
            loaded,
            num_parts=num_parts,
            backend=backend,
            split=split,
            batch_size=batch_size,
            gpu=gpu,
            image=image,
        )
    with dsl.Else(name="model-given"):
        given = dsl.importer(artifact_uri=model_uri, artifact_class=dsl.Model, reimport=False)
        infer_in_parallel(
            given.output,
            loaded,
            num_parts=num_parts,
            backend=backend,
            split=split,
            batch_size=batch_size,
            gpu=gpu,
            image=image,
        )
