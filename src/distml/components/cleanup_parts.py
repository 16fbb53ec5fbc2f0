"""KFP component ``cleanup_parts``: remove a split's temporary part files once the shards are gathered."""

from kfp import dsl

from distml.components.image import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def cleanup_parts(parts: dsl.Input[dsl.Dataset]) -> int:
    """Delete the temporary part files of split_dataset once the shards are gathered.

    Use it as ``cleanup_parts(parts=split.outputs["parts"]).after(gather)``: one task, run once
    after the gather. After a failed shard the parts stay, for a retry of the run.

    Args:
        parts: split_dataset's parts folder. Where it lives in the object store (a cluster's
            minio://, s3://, gs:// artifacts) the task sees a downloaded copy: it removes
            nothing and its log lists the files it left there (docs/inference.md).

    Returns:
        Output: How many files were deleted (0 for an object-store copy).
    """
    from distml.inference.cleanup import cleanup_parts_step

    return len(cleanup_parts_step(parts.path, parts.uri).removed)
