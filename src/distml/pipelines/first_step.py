"""Every pipeline's first task: check_parameters over the pipeline's own parameters."""

from __future__ import annotations

from typing import Any

from kfp.dsl import PipelineTask

from distml.components.check_parameters import check_parameters
from distml.pipelines.node_pools import in_image


def check_first(pipeline: str, parameters: dict[str, Any], image: Any) -> PipelineTask:
    """The check_parameters task for ``parameters`` (the pipeline function's ``locals()`` on entry).

    The pipeline makes its first other tasks run ``.after()`` it, so nothing starts before the
    parameters are known to be usable.
    """
    checked = set(check_parameters.component_spec.inputs) - {"pipeline", "given"}
    given = {name: value for name, value in parameters.items() if name in checked}
    return in_image(check_parameters(pipeline=pipeline, given=sorted(given), **given), image)
