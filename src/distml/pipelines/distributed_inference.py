"""``distributed_inference``: DeepHealth's distributed inference as one KFP pipeline.

load a DTD dataset → split it into N parts → one ``infer_shard`` task per part in parallel
(``dsl.ParallelFor``) → ``gather_metrics`` (weighted by images: the same numbers as the
unsplit dataset) → ``cleanup_parts`` removes the temporary parts, whether the shards failed
or not. The model comes from ``model_uri`` (a Model folder: gs://, s3://, minio:// or a local
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
from distml.pipelines.node_pools import on_gpu_pool


def infer_in_parallel(model, loaded, *, num_parts, backend, split, batch_size, gpu) -> dsl.PipelineTask:
    """Split ``loaded``, infer every part in parallel, gather; the parts are removed in any case."""
    parts = split_dataset(dataset=loaded.outputs["dataset"], num_parts=num_parts)
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
        on_gpu_pool(shard, **gpu)
    gathered = gather_metrics(shards=dsl.Collected(shard.outputs["shard"]))
    cleanup_parts(parts=parts.outputs["parts"]).after(gathered).ignore_upstream_failure()
    return gathered


@dsl.pipeline(
    name="distributed-inference",
    description="Split a DTD dataset into parts, infer each part in parallel (ECVL/EDDL or ONNX Runtime), "
    "gather the metrics, clean up the parts.",
)
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
    gpus: int = 0,
    accelerator: str = "nvidia.com/gpu",
    node_selector: Dict[str, str] = {},  # noqa: B006, UP006
    tolerations: List[Dict[str, str]] = [],  # noqa: B006, UP006
):
    gpu = {"node_selector": node_selector, "tolerations": tolerations, "gpus": gpus, "accelerator": accelerator}
    loaded = load_data(source=source, images=images, size=image_size)
    with dsl.If(model_uri == "", name="no-model-given"):
        quick = train(
            data=loaded.outputs["dataset"],
            model_name="unet-small",
            workers=1,
            epochs=quick_model_epochs,
            batch_size=8,
            image_size=image_size,
        )
        infer_in_parallel(
            quick.outputs["model"],
            loaded,
            num_parts=num_parts,
            backend=backend,
            split=split,
            batch_size=batch_size,
            gpu=gpu,
        )
    with dsl.Else(name="model-given"):
        given = dsl.importer(artifact_uri=model_uri, artifact_class=dsl.Model, reimport=False)
        infer_in_parallel(
            given.output, loaded, num_parts=num_parts, backend=backend, split=split, batch_size=batch_size, gpu=gpu
        )
