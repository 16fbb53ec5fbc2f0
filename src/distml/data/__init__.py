"""Datasets: the DeepHealth Toolkit Dataset format, the split engine, sources and synthetic data.

The names a notebook or script needs, importable from here (each module loads on first use).
"""

from distml.lazy_exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "distml.data.dtd": ("Dataset", "Image", "read_dataset", "write_dataset"),
        "distml.data.sources": ("load_data", "load_arrays", "split_data_folder", "shard_data_folders"),
        "distml.data.split": ("split_dataset", "write_parts"),
        # The data and parts folder contracts (metadata.json, parts.json) live in distml.folders.
        "distml.folders": ("ArtifactInfo", "read_data_info", "PartInfo", "PartsManifest", "read_parts_manifest"),
        "distml.data.synth": ("synth_lesions", "synth_digits"),
    },
)
