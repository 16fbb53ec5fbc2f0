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
    """Infer the split of part file ``part`` (a name from split_dataset) with the Model folder.

    ``dataset`` is the dataset the parts were cut from: part files refer to its images by
    relative paths, which hold because KFP places the artifacts of one run side by side.
    Writes the shard folder (metrics.json, and with save_images the gt/output/overlay PNGs
    that gather_metrics shows) and returns the number of images inferred.
    ``gpus`` (a whole number as a string, as KFP's driver needs accelerator counts) and
    ``accelerator`` are what the pipeline asked for this task's pod: with gpus > 0 a shard
    that ran on the CPU fails rather than silently wasting the GPU.
    """
    from distml.inference.runner import infer_part_step

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
