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
    gpus: int = 0,
    accelerator: str = "",
) -> int:
    """Infer the split of part file ``part`` (a name from split_dataset) with the Model folder.

    ``dataset`` is the dataset the parts were cut from: part files refer to its images by
    relative paths, which hold because KFP places the artifacts of one run side by side.
    Writes the shard folder (metrics.json, and with save_images the gt/output/overlay PNGs
    that gather_metrics shows) and returns the number of images inferred.
    ``gpus`` and ``accelerator`` are what the pipeline asked for this task's pod: with gpus > 0
    a shard that ran on the CPU fails rather than silently wasting the GPU.
    """
    from pathlib import Path

    from distml.inference.runner import run_inference

    del dataset  # consumed for its files (see above), not read here
    result = run_inference(
        backend,
        model.path,
        Path(parts.path) / part,
        shard.path,
        split=split,
        batch_size=batch_size,
        save_images=save_images,
    )
    if not result["images"]:
        print(f"{part}: no images in split {split!r}; wrote an empty shard (it counts zero images)")
    provider = str(result.get("provider", ""))
    if gpus > 0 and "CPU" in provider.upper():
        from distml.errors import DistmlError

        raise DistmlError(
            f"the task asked for {gpus} GPU(s) ({accelerator or 'accelerator unset'}) but ran on {provider}",
            where=part,
            hint="Use an image with onnxruntime-gpu (or EDDL built with CUDA), or set gpus=0.",
        )
    for key in ("miou", "accuracy", "images", "seconds"):
        if result.get(key) is not None:
            metrics.log_metric(key, result[key])
    shard.metadata.update({"task": result["task"], "images": result["images"], "part": part, "provider": provider})
    return int(result["images"])
