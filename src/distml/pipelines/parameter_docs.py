"""Descriptions of the parameters several pipelines share, written once.

KFP takes a pipeline's input descriptions from the ``Args:`` section of its own docstring
(kfp 2.17.0 ``kfp/dsl/component_factory.py`` ``extract_component_interface``), so the text a
pipeline shares with others is added to its docstring by :func:`shared_args` before
``@dsl.pipeline`` reads it, instead of being copied into every pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)

#: Parameter name -> its description (continuation lines indented as in an ``Args:`` section).
SHARED_ARGS: dict[str, str] = {
    "accelerator": "The GPU resource of the inference pods, e.g. nvidia.com/gpu.",
    "batch_size": "Batch size per worker.",
    "deploy_target": (
        '"local" checks the model with KServe\'s model server in the task and stops it;\n'
        '            "kserve" creates or patches the InferenceService and waits until it is Ready.'
    ),
    "epochs": "Training epochs.",
    "gpus": (
        "GPUs of each inference task's pod, a whole number as a string (KFP reads\n"
        "            accelerator counts only as strings); above 0, a shard that ran on the CPU fails."
    ),
    "gpus_per_worker": "GPUs each TFJob worker asks for.",
    "image": (
        "The container image every task (and every TFJob worker) runs; defaults to this\n"
        "            package's versioned image."
    ),
    "images": "How many images synthetic:lesions makes.",
    "model_format": '"tensorflow" (TF Serving, SavedModel) or "onnx" (Triton, the folder\'s Triton repository).',
    "namespace": "Where TFJobs and the InferenceService run; empty: the namespace the tasks run in.",
    "node_selector": 'Node labels the TFJobs\' pods must match, e.g. {"pool": "gpu"}.',
    "service_name": "The InferenceService's name.",
    "serving_gpus": "GPUs of the predictor.",
    "serving_node_selector": (
        "Node labels the predictor's pods must match (serving often runs on\n            another pool than training)."
    ),
    "serving_runtime_version": (
        "The serving runtime's image tag; empty: TF Serving 2.20.0 (-gpu with\n"
        "            GPUs), or KServe's default Triton."
    ),
    "serving_service_account": (
        "The predictor's service account, whose secret holds the S3 keys and\n"
        "            endpoint (docs/cluster-setup.md)."
    ),
    "serving_tolerations": "Tolerations of the predictor's pods, in Kubernetes' fields.",
    "storage_uri": (
        "Where the predictor reads the Model folder (pvc://, s3://, gs://); empty: the\n"
        "            artifact's own object-store URI, which needs serving_service_account."
    ),
    "tolerations": (
        "Tolerations of the TFJobs' pods in Kubernetes' fields, e.g.\n"
        '            [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}].'
    ),
}

#: The deploy step's parameters, shared by every pipeline that deploys.
SERVING_ARGS = (
    "deploy_target",
    "service_name",
    "storage_uri",
    "model_format",
    "serving_runtime_version",
    "serving_service_account",
    "serving_gpus",
    "serving_node_selector",
    "serving_tolerations",
)


def shared_args(*names: str) -> Callable[[F], F]:
    """Append the SHARED_ARGS entries of ``names`` to the decorated function's ``Args:`` section."""

    def add(function: F) -> F:
        entries = "".join(f"\n        {name}: {SHARED_ARGS[name]}" for name in names)
        doc = function.__doc__ or ""
        body = doc.rstrip()  # the Args: section is the docstring's last
        function.__doc__ = body + entries + doc[len(body) :]
        return function

    return add
