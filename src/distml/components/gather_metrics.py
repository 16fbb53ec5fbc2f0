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
    """Combine infer_shard folders (weighted by images, exact) and return MIoU or accuracy.

    Writes the gathered metrics.json into ``summary``, the headline numbers into ``metrics``
    (KFP UI) and an HTML report with a few image / ground truth / output / overlay rows.
    """
    import shutil
    from pathlib import Path

    from distml.inference.gather import REPORT_FILE, gather_shards

    gathered = gather_shards([shard.path for shard in shards], summary.path, report_images=report_images)
    headline = "miou" if "miou" in gathered else "accuracy"
    metrics.log_metric(headline, gathered[headline])
    metrics.log_metric("images", gathered["images"])
    metrics.log_metric("shards", len(shards))
    shutil.copyfile(Path(summary.path) / REPORT_FILE, report.path)
    return float(gathered[headline])
