"""KFP component ``gather_metrics``: shard results into the metrics of the whole split, and a report."""

from typing import List  # noqa: UP035 - KFP's type parser wants typing.List

from kfp import dsl

from distml.components.image import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def gather_metrics(
    shards: dsl.Input[List[dsl.Dataset]],  # noqa: UP006
    summary: dsl.Output[dsl.Dataset],
    metrics: dsl.Output[dsl.Metrics],
    report: dsl.Output[dsl.HTML],
    report_images: int = 4,
) -> float:
    """Combine the shards of infer_shard into the exact metrics of the whole split.

    Args:
        shards: The infer_shard folders (dsl.Collected); combined weighted by images, so the
            result equals inferring the unsplit dataset.
        report_images: How many image / ground truth / output / overlay rows the report shows.

    Returns:
        summary: The gathered metrics.json (with each shard's numbers) and report.html.
        metrics: MIoU or accuracy, images and shards, for KFP's UI.
        report: The HTML report: the metrics, a row per part and sample images.
        Output: MIoU (segmentation) or accuracy (classification) of the whole split.
    """
    from distml.inference.gather import gather_step

    result = gather_step([shard.path for shard in shards], summary.path, report.path, report_images=report_images)
    for name, value in result.ui_metrics().items():
        metrics.log_metric(name, value)
    return result.value
