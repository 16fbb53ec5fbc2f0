"""KFP component ``select_model``: the best of the models of a ParallelFor (distml.selection)."""

from typing import List  # noqa: UP035 - KFP's type parser wants typing.List

from kfp import dsl

from distml.components.image import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def select_model(
    models: dsl.Input[List[dsl.Model]],  # noqa: UP006
    best: dsl.Output[dsl.Model],
    comparison: dsl.Output[dsl.Markdown],
    report: dsl.Output[dsl.HTML],
    metrics: dsl.Output[dsl.Metrics],
    metric: str = "test_accuracy",
    lowest: bool = False,
) -> str:
    """Keep the best of several Model folders by a metric of their metrics.json.

    Args:
        models: The training tasks' Model folders (dsl.Collected). Ties go to the model that
            comes first in this list (ParallelFor order).
        metric: The key of metrics.json to compare, e.g. test_accuracy, test_miou, test_loss.
        lowest: Keep the lowest value (a loss) instead of the highest.

    Returns:
        best: A copy of the chosen Model folder.
        comparison: The ranking as a Markdown table.
        report: The ranking as an HTML table.
        metrics: Each candidate's value of ``metric``, for KFP's UI.
        Output: The chosen model's name.
    """
    import math
    from pathlib import Path

    from distml.selection.report import html_report, markdown_table
    from distml.selection.select import copy_model_folder, select_model

    selection = select_model([model.path for model in models], metric, lowest=lowest)
    copy_model_folder(selection.chosen.folder, best.path)
    Path(comparison.path).write_text(markdown_table(selection), encoding="utf-8")
    Path(report.path).write_text(html_report(selection), encoding="utf-8")
    for candidate in selection.ranked:
        if not math.isnan(candidate.value):  # NaN is not JSON: KFP could not store it; the tables show it
            metrics.log_metric(f"{metric} {candidate.name}", candidate.value)
    best.metadata.update({"selected_by": metric, metric: selection.chosen.value, "source": selection.chosen.name})
    return selection.chosen.name
