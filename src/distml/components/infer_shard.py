"""KFP component ``infer_shard``: one part of a split dataset through a model (distml.inference)."""

from kfp import dsl

from distml.components.image import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def infer_shard(
    model: dsl.Input[dsl.Model],
    parts: dsl.Input[dsl.Dataset],
    dataset: dsl.Input[dsl.Dataset],
    part: str,
    shard: dsl.Output[dsl.Dataset],
    metrics: dsl.Output[dsl.Metrics],
    backend: str = "onnxruntime",
    split: str = "test",
    batch_size: int = 8,
    save_images: bool = True,
    gpus: str = "0",
    accelerator: str = "",
) -> int:
    """Infer one split of one part file of split_dataset with a Model folder.

    Args:
        model: The Model folder (its model.onnx; the ecvl backend runs model-eddl.onnx).
        parts: split_dataset's parts folder.
        dataset: The data folder the parts were cut from: part files refer to its images by
            relative paths, which hold because KFP places the artifacts of one run side by side.
        part: The part file to infer, a name from split_dataset's list.
        backend: "onnxruntime" (ONNX Runtime) or "ecvl" (DeepHealth's ECVL/EDDL).
        split: The split of the part to infer: training, validation or test.
        batch_size: Images per batch.
        save_images: Save ground truth / output / overlay PNGs (segmentation) for the report.
        gpus: GPUs asked for this task's pod, a whole number as a string (KFP's driver reads
            accelerator counts only as strings); above 0, a shard that ran on the CPU fails
            rather than silently wasting the GPU.
        accelerator: The GPU resource asked for this task's pod, e.g. nvidia.com/gpu.

    Returns:
        shard: The shard folder: metrics.json and, with save_images, the PNGs.
        metrics: MIoU or accuracy, images and seconds of this shard, for KFP's UI.
        Output: The number of images inferred.
    """
    from distml.inference.shard import infer_part_step

    del dataset  # consumed for its files (see above), not read here
    result = infer_part_step(
        backend,
        model.path,
        parts.path,
        part,
        shard.path,
        split=split,
        batch_size=batch_size,
        save_images=save_images,
        gpus=gpus,
        accelerator=accelerator,
    )
    for key in ("miou", "accuracy", "images", "seconds"):
        if result.get(key) is not None:
            metrics.log_metric(key, result[key])
    provider = str(result.get("provider", ""))
    shard.metadata.update({"task": result["task"], "images": result["images"], "part": part, "provider": provider})
    return int(result["images"])
