# ruff: noqa: B006, UP006 - KFP's type parser wants typing generics and reads defaults from the signature
"""KFP component ``check_parameters``: every pipeline's first step, refusing a run that cannot succeed.

Each pipeline passes its name, the parameters it has and their names (``given``; the other
inputs keep defaults that are never checked: KFP 2.17's local runner cannot pass an
``Optional[int] = None`` input it was not given, kfp/local/executor_input_utils.py:208); the rules are
distml.parameters.check_pipeline_parameters, the same `distml run`, `demo` and `submit` apply
before they start anything. Every other task of the pipeline runs after this one.
"""

from typing import Dict, List  # noqa: UP035

from kfp import dsl

from distml.components.image import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def check_parameters(
    pipeline: str,
    given: List[str],
    source: str = "",
    images: int = 0,
    image_size: int = 0,
    learning_rates: List[float] = [],
    models: List[str] = [],
    model_name: str = "",
    workers: int = 0,
    workers_per_shard: int = 0,
    epochs: int = 0,
    quick_model_epochs: int = 0,
    batch_size: int = 0,
    num_parts: int = 0,
    num_shards: int = 0,
    backend: str = "",
    split: str = "",
    launcher: str = "",
    namespace: str = "",
    gpus_per_worker: int = 0,
    gpus: str = "",
    accelerator: str = "",
    node_selector: Dict[str, str] = {},
    tolerations: List[Dict[str, str]] = [],
    metric: str = "",
    deploy_target: str = "",
    service_name: str = "",
    storage_uri: str = "",
    model_format: str = "",
    serving_runtime_version: str = "",
    serving_service_account: str = "",
    serving_gpus: int = 0,
    serving_node_selector: Dict[str, str] = {},
    serving_tolerations: List[Dict[str, str]] = [],
    min_replicas: int = 0,
    max_replicas: int = 0,
    image: str = "",
):
    """Refuse, in the run's first seconds and naming the parameter, parameters the run cannot succeed with.

    Args:
        pipeline: The pipeline's name, for the message.
        given: The names of the inputs below that are parameters of this pipeline: only those are checked.
        source: The data source (dtd:PATH, npz:PATH, sklearn:digits, synthetic:...).
        images: How many synthetic images (1 to 1,000,000).
        image_size: Side in pixels of the synthetic images (8 to 2048).
        learning_rates: One candidate per learning rate, each finite, above 0 and at most 10.
        models: The architectures of the candidates.
        model_name: The architecture trained.
        workers: Workers per training (1 to 256).
        workers_per_shard: Workers per shard's training (1 to 256).
        epochs: Training epochs (1 to 100,000).
        quick_model_epochs: Epochs of the quick model (1 to 100,000).
        batch_size: Batch size (1 to 65,536).
        num_parts: Parts inferred in parallel (1 to 10,000; at most the synthetic images).
        num_shards: Data shards (1 to 256).
        backend: Inference backend (onnxruntime or ecvl).
        split: The split inferred (not empty).
        launcher: local or kubernetes.
        namespace: Empty, or a Kubernetes namespace (a DNS-1123 label).
        gpus_per_worker: GPUs per TFJob worker (0 to 64).
        gpus: GPUs per inference task, a whole number as a string.
        accelerator: The GPU resource name (not empty).
        node_selector: Node labels, names to values.
        tolerations: Tolerations in Kubernetes' fields.
        metric: The metric that selects (not empty).
        deploy_target: local or kserve.
        service_name: The InferenceService's name (a DNS-1035 label of at most 45 characters).
        storage_uri: Empty, or pvc://, s3://, gs:// (s3:// needs serving_service_account).
        model_format: tensorflow or onnx.
        serving_runtime_version: Empty, or the serving runtime's image tag.
        serving_service_account: The predictor's service account.
        serving_gpus: GPUs of the predictor (0 to 64).
        serving_node_selector: The predictor's node labels.
        serving_tolerations: The predictor's tolerations.
        min_replicas: Fewest predictor replicas (0 to 1000, at most max_replicas).
        max_replicas: Most predictor replicas (1 to 1000).
        image: The image the tasks run (not empty).
    """
    from distml.parameters import check_parameters_step

    check_parameters_step(**locals())
