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
    """Load SOURCE (dtd:PATH, npz:PATH, sklearn:digits, synthetic:lesions, keras:mnist, ...).

    Writes a self-contained folder (metadata.json plus dataset.yml and images, or data.npz)
    and returns its format, "dtd" or "npz". copy_files=False keeps a DTD's images on their
    shared volume. A DTD's locations must name regular files inside its folder or under one of
    ``allowed_roots`` (e.g. a mounted volume); the roots are recorded in metadata.json so that
    the split and inference steps allow them too.
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
