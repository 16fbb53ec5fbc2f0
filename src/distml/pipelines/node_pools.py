"""GPU node-pool settings for the tasks of a pipeline, from pipeline parameters.

Every value stays a pipeline parameter all the way into the compiled YAML: nothing is
compared at compile time. (DeepHealth's own Kubeflow pipeline did ``if gpu > 0`` on a
pipeline parameter while compiling, which is always false for a parameter object, so it
never asked for its GPU.) ``kfp.kubernetes`` and the accelerator settings reach only the
task's own pod; the pods of a TFJob or an InferenceService get theirs through the train and
deploy components' inputs instead. Serving usually runs on another pool than training, so the
pipelines that deploy take it apart: ``serving_node_selector``, ``serving_tolerations``,
``serving_gpus``.
"""

from __future__ import annotations

import os

from kfp import kubernetes
from kfp.dsl import PipelineTask

from distml.components.image import COMPONENT_IMAGE

#: Default of every pipeline's ``image`` parameter: the versioned image, or DISTML_IMAGE when compiling.
DEFAULT_IMAGE = COMPONENT_IMAGE

#: The ReadWriteMany claim that train tasks share with their TFJob's pods (docs/training.md),
#: chosen when compiling: ``DISTML_WORK_PVC=distml-work distml compile``. A compile-time
#: choice like the image, because a pod cannot mount a claim whose name is an empty parameter.
WORK_PVC = os.environ.get("DISTML_WORK_PVC", "")
WORK_MOUNT = "/mnt/distml"


def train_pvc_argument() -> str:
    """The train component's ``pvc`` input: ``CLAIM:MOUNT``, or "" when compiled without a work PVC."""
    return f"{WORK_PVC}:{WORK_MOUNT}" if WORK_PVC else ""


def with_work_volume(task: PipelineTask) -> PipelineTask:
    """Mount the work PVC in a train task's pod (where it stages data for the TFJob), if one was chosen."""
    if WORK_PVC:
        kubernetes.mount_pvc(task, pvc_name=WORK_PVC, mount_path=WORK_MOUNT)
    return task


def in_image(task: PipelineTask, image) -> PipelineTask:
    """Run ``task`` in ``image``, the pipeline's ``image`` parameter, resolved when the run starts.

    KFP 2.17's driver resolves a container image given as a parameter placeholder
    (kubeflow/pipelines 2.17.0 backend/src/v2/driver/driver.go:449, resolvePodSpecInputRuntimeParameter
    in resolve.go:818-831), so a user chooses the image in the run form of an uploaded pipeline.
    """
    return task.set_container_image(image)


def train_task(
    data, *, image, launcher, namespace, gpus_per_worker, node_selector, tolerations, **training
) -> PipelineTask:
    """A ``train`` task in ``image`` whose TFJob (launcher="kubernetes") runs the same image on the GPU pool
    and shares the work PVC.

    ``training`` holds the model's own inputs (model_name, epochs, batch_size, ...).
    """
    from distml.components.train import train

    task = train(
        data=data,
        image=image,
        launcher=launcher,
        namespace=namespace,
        gpus_per_worker=gpus_per_worker,
        node_selector=node_selector,
        tolerations=tolerations,
        pvc=train_pvc_argument(),
        **training,
    )
    return with_work_volume(in_image(task, image))


def on_gpu_pool(task: PipelineTask, *, node_selector, tolerations, gpus, accelerator) -> PipelineTask:
    """Schedule ``task``'s pod on the GPU pool: node selector, tolerations, accelerator type and count.

    ``node_selector`` (dict) and ``tolerations`` (list of dicts, Kubernetes' field names) are
    pipeline parameters; ``accelerator`` is the resource name (``nvidia.com/gpu``) and ``gpus``
    the limit, a **string** parameter: KFP's driver reads an accelerator count from a parameter
    with ``GetStringValue()`` (kubeflow/pipelines 2.17.0 backend/src/v2/driver/resolve.go:825,
    called from driver.go:432), which gives "" for a number, and then sets no GPU limit at all.
    On KFP's local runner these settings are ignored.
    """
    kubernetes.add_node_selector_json(task, node_selector_json=node_selector)
    kubernetes.add_toleration_json(task, toleration_json=tolerations)
    task.set_accelerator_type(accelerator)
    task.set_accelerator_limit(gpus)
    return task
