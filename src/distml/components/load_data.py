"""KFP component ``load_data``: a dataset source into a folder artifact (distml.data.sources)."""

from typing import List  # noqa: UP035 - KFP's type parser wants typing.List

from kfp import dsl

from distml.components.image import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def load_data(
    source: str,
    dataset: dsl.Output[dsl.Dataset],
    images: int = 100,
    size: int = 64,
    seed: int = 0,
    copy_files: bool = True,
    allowed_roots: List[str] = [],  # noqa: B006, UP006 - KFP takes list defaults as the input's default
) -> str:
    """Load a dataset source into a self-contained data folder.

    The folder holds metadata.json plus dataset.yml and its images (DTD), or data.npz.

    Args:
        source: What to load: dtd:PATH, npz:PATH, sklearn:digits, synthetic:lesions,
            synthetic:digits, keras:mnist, keras:fashion_mnist or keras:imdb (keras: downloads).
        images: How many images synthetic:lesions makes (synthetic:digits: at most this many).
        size: Side in pixels of synthetic:lesions' images.
        seed: Random seed of the synthetic sources and of sklearn:digits' train/test split.
        copy_files: Copy a DTD's images into the folder; false keeps them where they are (a shared
            volume) and records their absolute paths.
        allowed_roots: Folders (e.g. a mounted volume) where a DTD's images may lie besides its
            own folder; recorded in metadata.json so the split and inference steps allow them too.

    Returns:
        dataset: The data folder (metadata.json, then dataset.yml and images, or data.npz).
        Output: The folder's format, "dtd" or "npz".
    """
    from distml.data.sources import load_data as load

    info = load(
        source,
        dataset.path,
        images=images,
        size=size,
        seed=seed,
        copy_files=copy_files,
        allow_roots=allowed_roots,
    )
    dataset.metadata.update({"format": info.format, "task": info.task, **info.counts})
    return info.format
