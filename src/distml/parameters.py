"""Bounds of the numbers and names every entry point takes, checked before any expensive step.

One table for the CLI, the components and the pipelines, so `distml train --epochs 0`, the train
component's ``epochs=0`` and a pipeline run with ``epochs=0`` are refused with the same words, and
a pipeline run that cannot succeed fails in its first second (the ``check_parameters`` step, and
`distml run`/`demo`/`submit` before they start anything) instead of after training.

Bounds are generous for real use and there to stop runaway work from a typo: 10^5 workers or
epochs, a 10^5-pixel image side, 10^9 synthetic images.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from distml.data.sources import SOURCES
from distml.errors import DistmlError
from distml.inference.backends import BACKEND_NAMES
from distml.serving.deploy_step import TARGETS
from distml.serving.isvc import DNS_LABEL, FORMATS
from distml.training.launchers import launcher_names
from distml.training.models import ARCHITECTURES

MAX_WORKERS = 256
MAX_EPOCHS = 100_000
MAX_BATCH_SIZE = 65_536
MAX_LEARNING_RATE = 10.0
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 4, 2048
MAX_SYNTHETIC_IMAGES = 1_000_000
MIN_SYNTHETIC_SIZE, MAX_SYNTHETIC_SIZE = 8, 2048
MAX_PARTS = 10_000
MAX_GPUS = 64
MAX_REPLICAS = 1000
MAX_TIMEOUT_SECONDS = 30 * 24 * 3600
MAX_SEED = 2**32 - 1
LAUNCHERS = launcher_names()  # distml.training.launchers.LAUNCHER_MODULES
#: An InferenceService name: KServe derives Knative service and host names from it, so a DNS-1035 label, short
#: (the rule ServingSpec.check applies).
SERVICE_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,43}[a-z0-9])?$")


def _refuse(name: str, value: Any, rule: str, hint: str | None = None) -> DistmlError:
    return DistmlError(f"{name} = {value!r} {rule}", hint=hint)


def check_int(name: str, value: Any, low: int, high: int) -> int:
    """``value`` is a whole number in ``low..high`` (a bool is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _refuse(name, value, "is not a whole number")
    if not low <= value <= high:
        raise _refuse(name, value, f"is outside {low}..{high}")
    return value


def check_float(name: str, value: Any, *, above: float, high: float) -> float:
    """``value`` is a finite number with ``above < value <= high`` (NaN and infinity refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _refuse(name, value, "is not a number")
    if not math.isfinite(value):
        raise _refuse(name, value, "is not a finite number")
    if not above < value <= high:
        raise _refuse(name, value, f"is outside ({above}, {high}]")
    return float(value)


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise _refuse(name, value, "is not known", hint=f"Use one of: {', '.join(choices)}.")
    return value


def check_text(name: str, value: Any) -> str:
    """A name that must not be empty (or only spaces)."""
    if not isinstance(value, str) or not value.strip():
        raise _refuse(name, value, "is empty")
    return value


def check_dns_label(name: str, value: Any, *, empty_ok: bool = False) -> str:
    """A Kubernetes object name (namespace, claim...): lowercase letters, digits and '-', at most 63."""
    if empty_ok and value == "":
        return value
    if not isinstance(value, str) or not DNS_LABEL.match(value):
        raise _refuse(name, value, "is not a DNS-1123 label", hint="Use at most 63 lowercase letters, digits and '-'.")
    return value


def check_service_name(name: str, value: Any) -> str:
    if not isinstance(value, str) or not SERVICE_NAME.match(value):
        raise _refuse(
            name,
            value,
            "is not a DNS-1035 label of at most 45 characters",
            hint="Use lowercase letters, digits and '-', starting with a letter (KServe derives host names from it).",
        )
    return value


def check_source(name: str, value: Any) -> str:
    scheme, _, rest = str(value).partition(":")
    known = {form for form in SOURCES if not form.endswith(":PATH")}
    if not (value in known or (scheme in ("dtd", "npz") and rest)):
        raise _refuse(name, value, "is not a data source", hint=f"Use one of: {', '.join(SOURCES)}.")
    return value


def check_training(
    *,
    workers: int,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    image_size: int | None = None,
    model: str | None = None,
) -> None:
    """What every trainer (CLI, component, pipeline) refuses before loading data or starting a worker."""
    check_int("workers", workers, 1, MAX_WORKERS)
    check_int("epochs", epochs, 1, MAX_EPOCHS)
    check_int("batch_size", batch_size, 1, MAX_BATCH_SIZE)
    check_float("learning_rate", learning_rate, above=0.0, high=MAX_LEARNING_RATE)
    if model is not None:
        check_choice("model", model, ARCHITECTURES)
    if image_size:  # None or 0: keep the images' own size
        check_int("image_size", image_size, MIN_IMAGE_SIZE, MAX_IMAGE_SIZE)
        if model == "unet-small" and image_size % 4:
            raise _refuse("image_size", image_size, "is not a multiple of 4, which unet-small's two poolings need")


def _gpu_count(name: str, value: Any) -> None:
    """A GPU count given as a string (KFP reads accelerator counts only as strings)."""
    if not isinstance(value, str) or not value.isdigit():
        raise _refuse(name, value, 'is not a whole number as a string, e.g. "1"')
    check_int(name, int(value), 0, MAX_GPUS)


def _tolerations(name: str, value: Any) -> None:
    from distml.tolerations import tolerations_from_dicts

    tolerations_from_dicts(value, where=name)


def _node_selector(name: str, value: Any) -> None:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and k and isinstance(v, str) for k, v in value.items()
    ):
        raise _refuse(name, value, "is not a map of label names to values", hint='e.g. {"pool": "gpu"}')


def _list_of(check: Callable[[str, Any], Any]) -> Callable[[str, Any], None]:
    def check_list(name: str, value: Any) -> None:
        if not isinstance(value, list) or not value:
            raise _refuse(name, value, "is not a non-empty list")
        for index, item in enumerate(value):
            check(f"{name}[{index}]", item)

    return check_list


def _int(low: int, high: int) -> Callable[[str, Any], Any]:
    return lambda name, value: check_int(name, value, low, high)


def _choice(*choices: str) -> Callable[[str, Any], Any]:
    return lambda name, value: check_choice(name, value, choices)


#: Checks by pipeline parameter name; a parameter of no pipeline here is passed through unchecked.
PIPELINE_RULES: dict[str, Callable[[str, Any], Any]] = {
    "source": check_source,
    "images": _int(1, MAX_SYNTHETIC_IMAGES),
    "image_size": _int(MIN_SYNTHETIC_SIZE, MAX_SYNTHETIC_SIZE),
    "learning_rates": _list_of(lambda n, v: check_float(n, v, above=0.0, high=MAX_LEARNING_RATE)),
    "models": _list_of(lambda n, v: check_choice(n, v, ARCHITECTURES)),
    "model_name": _choice(*ARCHITECTURES),
    "workers": _int(1, MAX_WORKERS),
    "workers_per_shard": _int(1, MAX_WORKERS),
    "epochs": _int(1, MAX_EPOCHS),
    "quick_model_epochs": _int(1, MAX_EPOCHS),
    "batch_size": _int(1, MAX_BATCH_SIZE),
    "num_parts": _int(1, MAX_PARTS),
    "num_shards": _int(1, MAX_WORKERS),
    "backend": _choice(*BACKEND_NAMES),
    "launcher": _choice(*LAUNCHERS),
    "deploy_target": _choice(*TARGETS),
    "model_format": _choice(*FORMATS),
    "split": check_text,
    "metric": check_text,
    "image": check_text,
    "accelerator": check_text,
    "namespace": lambda name, value: check_dns_label(name, value, empty_ok=True),
    "service_name": check_service_name,
    "gpus_per_worker": _int(0, MAX_GPUS),
    "serving_gpus": _int(0, MAX_GPUS),
    "gpus": _gpu_count,
    "min_replicas": _int(0, MAX_REPLICAS),
    "max_replicas": _int(1, MAX_REPLICAS),
    "node_selector": _node_selector,
    "serving_node_selector": _node_selector,
    "tolerations": _tolerations,
    "serving_tolerations": _tolerations,
}


def check_pipeline_parameters(pipeline: str, values: Mapping[str, Any]) -> None:
    """Refuse, naming the parameter, a run of ``pipeline`` whose parameters cannot succeed.

    ``values`` are the run's parameters with the pipeline's defaults filled in. Besides each
    parameter's own rule: a synthetic dataset of N images cannot be split into more than N parts,
    min_replicas <= max_replicas, and a kserve deploy's serving settings are checked as the deploy
    step will check them (distml.serving.isvc.ServingSpec.check).
    """
    for name, value in values.items():
        rule = PIPELINE_RULES.get(name)
        if rule is not None:
            try:
                rule(name, value)
            except DistmlError as err:
                where = f"pipeline {pipeline}: {err.where}" if err.where else f"pipeline {pipeline}"
                raise DistmlError(err.what, where=where, hint=err.hint) from None
    source, images, parts = values.get("source", ""), values.get("images"), values.get("num_parts")
    if str(source).startswith("synthetic:") and images is not None and parts is not None and parts > images:
        raise DistmlError(
            f"num_parts = {parts} > images = {images}: a part would be empty",
            where=f"pipeline {pipeline}",
            hint=f"Ask for at most {images} parts, or for more images.",
        )
    if values.get("min_replicas", 0) > values.get("max_replicas", MAX_REPLICAS):
        raise DistmlError(
            f"min_replicas = {values['min_replicas']} > max_replicas = {values['max_replicas']}",
            where=f"pipeline {pipeline}",
        )
    if values.get("deploy_target") == "kserve" and "service_name" in values:
        _check_serving(pipeline, values)


def _check_serving(pipeline: str, values: Mapping[str, Any]) -> None:
    """The InferenceService the deploy step would build, checked now (storage_uri empty: the artifact's, later)."""
    from distml.serving.isvc import ServingSpec
    from distml.tolerations import tolerations_from_dicts

    spec = ServingSpec(
        name=values["service_name"],
        storage_uri=values.get("storage_uri") or "pvc://checked-at-deploy",
        model_format=values.get("model_format", "tensorflow"),
        runtime_version=values.get("serving_runtime_version") or None,
        gpus=values.get("serving_gpus", 0),
        tolerations=tolerations_from_dicts(values.get("serving_tolerations", [])),
        min_replicas=values.get("min_replicas", 1),
        max_replicas=values.get("max_replicas", 1),
        service_account=values.get("serving_service_account") or None,
    )
    try:
        spec.check()
    except DistmlError as err:
        raise DistmlError(f"serving parameters: {err.what}", where=f"pipeline {pipeline}", hint=err.hint) from None


def check_parameters_step(pipeline: str, given: list[str], **values: Any) -> None:
    """The check_parameters component's body: of its inputs, those named in ``given`` (the pipeline's parameters)."""
    check_pipeline_parameters(pipeline, {name: values[name] for name in given})
