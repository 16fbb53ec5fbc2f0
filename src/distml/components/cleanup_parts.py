"""KFP component ``cleanup_parts``: remove a split's temporary part files once the shards are gathered."""

from kfp import dsl

from distml.components.image import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def cleanup_parts(parts: dsl.Input[dsl.Dataset]) -> int:
    """Delete the part files of split_dataset's ``parts``; return how many files went.

    Use it as ``cleanup_parts(parts=split.outputs["parts"]).after(gather)``: one task, run once
    after the gather. Where ``parts`` lives in the object store (a cluster's minio://, s3://,
    gs:// artifacts) the task sees a downloaded copy: it removes nothing, returns 0 and its log
    lists the files it left there (docs/inference.md). After a failed shard the parts stay, for
    a retry of the run.
    """
    from distml.inference.cleanup import cleanup_parts_step

    return len(cleanup_parts_step(parts.path, parts.uri).removed)
