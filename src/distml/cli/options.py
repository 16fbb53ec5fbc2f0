"""Parsers for command-line options shared by several commands (train, deploy): node selectors, tolerations.

Each raises ``click.BadParameter`` (a usage error, exit 2) naming the value and the expected form.
``*_callback`` variants plug into ``click.option(..., multiple=True, callback=...)``.
"""

from __future__ import annotations

import math
from typing import Any

import click

#: Seeds numpy's and TensorFlow's generators both take (numpy refuses negative ones).
SEED = click.IntRange(0, 2**32 - 1)


def finite_callback(_ctx: click.Context, _param: click.Parameter, value: float | None) -> float | None:
    """Refuse NaN and infinity, which ``click.FloatRange`` lets through (NaN compares false to every bound)."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number")
    return value


def parse_node_selector(values: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``("KEY=VALUE", ...)`` -> ``{KEY: VALUE}``; a key given twice is an error."""
    selector: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE (e.g. cloud.google.com/gke-accelerator=nvidia-l4)")
        if key.strip() in selector:
            raise click.BadParameter(f"node selector key {key.strip()!r} given twice")
        selector[key.strip()] = value.strip()
    return selector


def parse_toleration_spec(value: str) -> Any:
    """``KEY[=VALUE]:EFFECT`` -> ``distml.training.spec.Toleration`` (the one parsing rule for every command)."""
    from distml.errors import DistmlError
    from distml.training.spec import Toleration

    try:
        return Toleration.parse(value)
    except DistmlError as err:
        raise click.BadParameter(str(err)) from None


def parse_toleration(value: str) -> Any:
    """``KEY[=VALUE]:EFFECT`` -> ``kubernetes.client.V1Toleration`` (operator Equal with a value, else Exists)."""
    from distml.serving.isvc import make_toleration

    parsed = parse_toleration_spec(value)
    return make_toleration(parsed.key, parsed.effect, parsed.value)


def node_selector_callback(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    return parse_node_selector(values)


def tolerations_callback(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> list[Any]:
    return [parse_toleration(value) for value in values]
