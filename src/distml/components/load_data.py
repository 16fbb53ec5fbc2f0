"""KFP component ``load_data``: a dataset source into a folder artifact (distml.data.sources)."""

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
) -> str:
    """Load SOURCE (dtd:PATH, npz:PATH, sklearn:digits, synthetic:lesions, keras:mnist, ...).

    Writes a self-contained folder (metadata.json plus dataset.yml and images, or data.npz)
    and returns its format, "dtd" or "npz". copy_files=False keeps a DTD's images on their
    shared volume.
    """
    from distml.data.sources import load_data as load

    info = load(source, dataset.path, images=images, size=size, seed=seed, copy_files=copy_files)
    dataset.metadata.update({"format": info.format, "task": info.task, **info.counts})
    return info.format
