"""Serving: a KServe InferenceService on a cluster, or KServe's model server locally.

The names a notebook or script needs, importable from here (each module loads on first use:
importing the package loads neither kserve nor the kubernetes client).
"""

from distml.lazy_exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "distml.serving.isvc": ("ServingSpec", "build_inference_service"),
        "distml.serving.deploy": ("deploy_inference_service",),
        "distml.serving.local": ("LocalServer", "serve_and_check"),
    },
)
