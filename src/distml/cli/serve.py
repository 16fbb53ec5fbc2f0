"""`distml serve` (KServe's model server on this machine) and `distml deploy` (an InferenceService, or local)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from distml.cli.options import (
    namespace_callback,
    node_selector_callback,
    non_empty_callback,
    option_errors,
    service_name_callback,
    tolerations_callback,
)
from distml.cli.output import make_console
from distml.parameters import MAX_GPUS, MAX_REPLICAS, MAX_TIMEOUT_SECONDS

console = make_console(stderr=True)

_name = click.option(
    "--name",
    required=True,
    callback=service_name_callback,
    help="Model / InferenceService name (DNS-1035 label of at most 45 characters).",
)
_log_requests = click.option(
    "--log-requests",
    is_flag=True,
    help="Log every request (KServe's access line and its two timing lines); off by default, they cost "
    "about a fifth of a small model's throughput.",
)
_threads = click.option(
    "--threads",
    type=click.IntRange(0, 1024),
    default=1,
    show_default=True,
    help="ONNX Runtime intra-op threads per prediction (0: one per core); more pays for big batches only.",
)


@click.command("serve")
@click.option(
    "--model",
    "model_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Model folder (model.onnx or model.keras, model.json).",
)
@_name
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True, help="HTTP port.")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    callback=non_empty_callback,  # an empty host would listen on every interface
    help="Address to listen on: 127.0.0.1 is this machine only; 0.0.0.0 every interface.",
)
@click.option(
    "--max-request-mb",
    type=click.IntRange(1, 4096),
    default=8,
    show_default=True,
    help="Largest request body in MiB; a larger one gets HTTP 413.",
)
@_log_requests
@_threads
def serve_command(
    model_dir: Path, name: str, port: int, host: str, max_request_mb: int, log_requests: bool, threads: int
) -> None:
    """Serve a Model folder with KServe's model server (V1 and V2 protocols) until Ctrl-C."""
    _serve(model_dir, name, port, host, max_request_mb, log_requests=log_requests, threads=threads)


def _serve(
    model_dir: Path,
    name: str,
    port: int,
    host: str,
    max_request_mb: int,
    *,
    log_requests: bool = False,
    threads: int = 1,
) -> None:
    from distml.serving.local import make_kserve_models, run_server

    models = make_kserve_models(model_dir, name, threads=threads)
    shown = f"[{host}]" if ":" in host else host
    v2 = ", ".join(f"http://{shown}:{port}/v2/models/{model.name}/infer" for model in models)
    console.print(
        f"serving {model_dir} as {name!r} on {shown}:{port} ({models[0].predictor.backend}, bodies up to "
        f'{max_request_mb} MiB); POST http://{shown}:{port}/v1/models/{name}:predict with {{"instances": [...]}}; '
        f"V2: {v2}",
        markup=False,
        highlight=False,
    )
    run_server(models, port, host=host, max_request_bytes=max_request_mb * 1024 * 1024, log_requests=log_requests)


@click.command("deploy")
@click.option(
    "--target",
    type=click.Choice(["kserve", "local"]),
    default="kserve",
    show_default=True,
    help="kserve: create/patch an InferenceService; local: serve here (as `distml serve`).",
)
@_name
@click.option("--storage-uri", help="kserve: URI of the Model folder (pvc://PVC/PATH, s3://..., gs://...).")
@click.option(
    "--model", "model_dir", type=click.Path(file_okay=False, path_type=Path), help="local: the Model folder to serve."
)
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True, help="local: HTTP port.")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    callback=non_empty_callback,
    help="local: address to listen on (0.0.0.0: all).",
)
@click.option(
    "--max-request-mb", type=click.IntRange(1, 4096), default=8, show_default=True, help="local: largest body (MiB)."
)
@click.option(
    "--format",
    "model_format",
    type=click.Choice(["tensorflow", "onnx"]),
    default="tensorflow",
    show_default=True,
    help="Predictor: TF Serving (model/1 SavedModel) or Triton (the Model folder's triton/ repository).",
)
@click.option(
    "--runtime-version",
    default=None,
    help="Serving runtime image tag (runtimeVersion) [tensorflow: TF Serving 2.20.0, -gpu added with --gpus; "
    "onnx: KServe's Triton].",
)
@click.option("--gpus", type=click.IntRange(0, MAX_GPUS), default=0, show_default=True, help="GPUs per replica.")
@click.option("--cpu", default="1", show_default=True, help="CPU request and limit per replica.")
@click.option("--memory", default="2Gi", show_default=True, help="Memory request and limit per replica.")
@click.option(
    "--node-selector",
    "node_selector",
    multiple=True,
    callback=node_selector_callback,
    metavar="KEY=VALUE",
    help="Node label the predictor pods need (repeatable).",
)
@click.option(
    "--toleration",
    "tolerations",
    multiple=True,
    callback=tolerations_callback,
    metavar="KEY[=VALUE]:EFFECT",
    help="Taint the predictor pods tolerate (repeatable).",
)
@click.option(
    "--min-replicas", type=click.IntRange(0, MAX_REPLICAS), default=1, show_default=True, help="0 allows scale to zero."
)
@click.option("--max-replicas", type=click.IntRange(1, MAX_REPLICAS), default=1, show_default=True)
@click.option(
    "--scale-metric",
    type=click.Choice(["cpu", "memory", "concurrency", "rps"]),
    default=None,
    help="Autoscaling metric (with --scale-target).",
)
@click.option("--scale-target", type=click.IntRange(min=1), default=None, help="Autoscaling target value.")
@click.option(
    "--canary-percent",
    type=click.IntRange(0, 100),
    default=None,
    help="Traffic share of the new revision (the previous one keeps the rest).",
)
@click.option(
    "--service-account",
    default=None,
    help="Service account of the predictor; needed for s3:// (its secret holds the keys and endpoint).",
)
@click.option(
    "--namespace", default=None, callback=namespace_callback, help="Namespace [the pod's or the kubeconfig context's]."
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.IntRange(1, MAX_TIMEOUT_SECONDS),
    default=600,
    show_default=True,
    help="Seconds to wait for Ready.",
)
@click.option("--no-wait", is_flag=True, help="Return after create/patch without waiting for Ready.")
@click.option("--dry-run", is_flag=True, help="Print the InferenceService YAML; call no API.")
@_log_requests
@_threads
def deploy_command(
    target: str,
    name: str,
    storage_uri: str | None,
    model_dir: Path | None,
    port: int,
    host: str,
    max_request_mb: int,
    model_format: str,
    runtime_version: str | None,
    gpus: int,
    cpu: str,
    memory: str,
    node_selector: dict[str, str],
    tolerations: list,
    min_replicas: int,
    max_replicas: int,
    scale_metric: str | None,
    scale_target: int | None,
    canary_percent: int | None,
    service_account: str | None,
    namespace: str | None,
    timeout_s: int,
    no_wait: bool,
    dry_run: bool,
    log_requests: bool,
    threads: int,
) -> None:
    """Deploy a model: a KServe InferenceService on the cluster, or the local model server.

    Creates the InferenceService when absent, patches it only when its spec differs, and waits
    for the generation it wrote to be Ready, showing the conditions while it waits.
    """
    if target == "local":
        if model_dir is None:
            raise click.UsageError("--target local needs --model DIR")
        _serve(model_dir, name, port, host, max_request_mb, log_requests=log_requests, threads=threads)
        return
    if not storage_uri:
        raise click.UsageError("--target kserve needs --storage-uri")
    from distml import kube
    from distml.kube import manifest_yaml
    from distml.serving import deploy
    from distml.serving.isvc import ServingSpec, build_inference_service

    namespace = namespace or kube.current_namespace()  # the dry run shows what a deploy would write
    with option_errors():  # checks the name, storage URI, runtime version, replicas and scaling
        spec = ServingSpec(
            name=name,
            storage_uri=storage_uri,
            namespace=namespace,
            model_format=model_format,
            runtime_version=runtime_version,
            gpus=gpus,
            cpu=cpu,
            memory=memory,
            node_selector=node_selector,
            tolerations=tolerations,
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            scale_metric=scale_metric,
            scale_target=scale_target,
            canary_traffic_percent=canary_percent,
            service_account=service_account,
        )
        spec.check()
    if dry_run:
        click.echo(manifest_yaml(build_inference_service(spec)), nl=False)
        return
    api_client = kube.api_client()
    started = time.monotonic()
    result = deploy.deploy_inference_service(
        build_inference_service(spec),
        api_client,
        wait=not no_wait,
        timeout_s=timeout_s,
        progress=lambda message: console.print(f"[{time.monotonic() - started:5.0f} s] {message}", markup=False),
    )
    click.echo(
        f"{result.namespace}/{result.name} {result.action} generation {result.generation}: {result.status} {result.url}"
    )
