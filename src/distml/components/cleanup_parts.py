"""KFP component ``cleanup_parts``: remove a split's temporary part files, after success or failure."""

from typing import Optional

from kfp import dsl

from distml.components.image import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def cleanup_parts(parts: Optional[dsl.Input[dsl.Dataset]] = None) -> int:  # noqa: UP045
    """Delete the part files of split_dataset's ``parts``; return how many files went.

    Use it as ``cleanup_parts(parts=split.outputs["parts"]).after(gather).ignore_upstream_failure()``:
    it then runs when the shards and the gather end, failed or not (docs/inference.md says why
    not dsl.ExitHandler). ``parts`` is optional because KFP requires that of inputs of a task that
    ignores upstream failures; without it there is nothing to remove.
    """
    from distml.inference.cleanup import remove_parts

    return len(remove_parts(parts.path)) if parts is not None else 0
