"""KFP component ``average_models``: the weight average of the models of a ParallelFor (distml.selection)."""

from typing import List  # noqa: UP035 - KFP's type parser wants typing.List

from kfp import dsl

from distml.components.image import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def average_models(
    models: dsl.Input[List[dsl.Model]],  # noqa: UP006
    data: dsl.Input[dsl.Dataset],
    averaged: dsl.Output[dsl.Model],
    metrics: dsl.Output[dsl.Metrics],
):
    """Average the weights of same-architecture models and evaluate the average.

    Refuses models whose architectures differ, naming the first layer that does not match.

    Args:
        models: The training tasks' Model folders (dsl.Collected), at least two.
        data: An npz data folder of load_data whose test arrays evaluate the average.

    Returns:
        averaged: The Model folder of the average (with model.onnx when the sources have one).
        metrics: The average's test metrics, for KFP's UI.
    """
    from distml.selection.average import average_models_step

    results = average_models_step([model.path for model in models], averaged.path, data.path)
    for key, value in results.items():
        metrics.log_metric(key, value)
        averaged.metadata[key] = value
    averaged.metadata["averaged_from"] = len(models)
