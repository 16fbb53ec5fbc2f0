"""KFP component ``split_dataset``: a DTD dataset into N part files (distml.data.split)."""

from typing import List  # noqa: UP035 - KFP's type parser wants typing.List

from kfp import dsl

from distml.components.image import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def split_dataset(
    dataset: dsl.Input[dsl.Dataset],
    parts: dsl.Output[dsl.Dataset],
    num_parts: int = 2,
) -> List[str]:  # noqa: UP006
    """Split the DTD dataset of a load_data folder into part files.

    Parts refer to the images of the input dataset by relative paths, so a task reading a part
    also takes the dataset artifact as input (KFP places the artifacts of one run side by side).

    Args:
        dataset: A DTD data folder written by load_data.
        num_parts: How many parts (DeepHealth's rule: equal sizes, the rest on the last; each part
            keeps the dataset's training/validation/test proportions).

    Returns:
        parts: The part files (part-000-<name>.yml, ...) and parts.json.
        Output: The part file names, in order: feed them to dsl.ParallelFor.
    """
    from distml.data.sources import split_data_folder

    infos = split_data_folder(dataset.path, num_parts, parts.path)
    parts.metadata.update({"parts": num_parts, "images": sum(part.images for part in infos)})
    return [part.file for part in infos]
