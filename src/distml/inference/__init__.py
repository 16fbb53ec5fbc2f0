"""Per-shard inference: backends (ONNX Runtime, ECVL/EDDL), metrics and their gathering.

The names a notebook or script needs, importable from here (each module loads on first use:
importing the package loads no backend).
"""

from distml.lazy_exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "distml.inference.shard": ("run_inference",),
        "distml.folders": ("read_shard_metrics", "read_gathered_metrics"),  # the shard and gathered folder contracts
        "distml.inference.gather": ("gather_shards",),
        "distml.inference.backends": ("BACKEND_NAMES", "create_backend"),
        "distml.inference.backend_api": ("Backend", "select_images"),
        "distml.inference.cleanup": ("remove_parts",),
    },
)
