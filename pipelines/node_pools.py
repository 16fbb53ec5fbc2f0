"""GPU node-pool settings for the tasks of a pipeline, from pipeline parameters.

Every value stays a pipeline parameter all the way into the compiled YAML: nothing is
compared at compile time. (DeepHealth's own Kubeflow pipeline did ``if gpu > 0`` on a
pipeline parameter while compiling, which is always false for a parameter object, so it
never asked for its GPU.) ``kfp.kubernetes`` and the accelerator settings reach only the
task's own pod; the pods of a TFJob or an InferenceService get the same values through the
train and deploy components' inputs instead.
"""

from __future__ import annotations

from kfp import kubernetes
from kfp.dsl import PipelineTask


def on_gpu_pool(task: PipelineTask, *, node_selector, tolerations, gpus, accelerator) -> PipelineTask:
    """Schedule ``task``'s pod on the GPU pool: node selector, tolerations, accelerator type and count.

    ``node_selector`` (dict) and ``tolerations`` (list of dicts, Kubernetes' field names) are
    pipeline parameters; ``accelerator`` is the resource name (``nvidia.com/gpu``) and ``gpus``
    the limit. On KFP's local runner these settings are ignored.
    """
    kubernetes.add_node_selector_json(task, node_selector_json=node_selector)
    kubernetes.add_toleration_json(task, toleration_json=tolerations)
    task.set_accelerator_type(accelerator)
    task.set_accelerator_limit(gpus)
    return task
