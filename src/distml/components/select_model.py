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
    from distml.selection.report import select_best_model

    selection = select_best_model(
        [model.path for model in models],
        metric,
        lowest=lowest,
        best_dir=best.path,
        comparison_file=comparison.path,
        report_file=report.path,
    )
    for key, value in selection.finite_values().items():  # the tables show the NaNs
        metrics.log_metric(key, value)
    best.metadata.update({"selected_by": metric, metric: selection.chosen.value, "source": selection.chosen.name})
    return selection.chosen.name
