"""KFP component ``shard_data``: an npz data folder into per-worker data folders (distml.data.sources)."""

from typing import List  # noqa: UP035 - KFP's type parser wants typing.List

from kfp import dsl

from distml.components.image import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def shard_data(
    data: dsl.Input[dsl.Dataset],
    shards: dsl.Output[dsl.Dataset],
    num_shards: int = 2,
) -> List[str]:  # noqa: UP006
    """Cut the training rows of an npz data folder into one data folder per trainer.

    Args:
        data: An npz data folder written by load_data.
        num_shards: How many shards; the training rows are cut, the test rows go whole into each.

    Returns:
        shards: One data folder per shard (shard-000-of-002/, ...).
        Output: The shard folder names for dsl.ParallelFor; a train task takes ``shards`` with
            one name as its ``data_shard``.
    """
    from distml.data.sources import shard_data_folders

    names = shard_data_folders(data.path, num_shards, shards.path)
    shards.metadata["shards"] = num_shards
    return names
