"""Parsers for command-line options shared by several commands (train, deploy): node selectors, tolerations.

Each raises ``click.BadParameter`` (a usage error, exit 2) naming the value and the expected form.
``*_callback`` variants plug into ``click.option(..., multiple=True, callback=...)``.
"""

from __future__ import annotations

from typing import Any

import click

TOLERATION_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


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


def parse_toleration(value: str) -> Any:
    """``KEY[=VALUE]:EFFECT`` -> ``kubernetes.client.V1Toleration`` (operator Equal with a value, else Exists)."""
    from distml.serving.isvc import make_toleration

    spec, sep, effect = value.rpartition(":")
    if not sep or not spec:
        raise click.BadParameter(f"{value!r} is not KEY[=VALUE]:EFFECT (e.g. nvidia.com/gpu=present:NoSchedule)")
    if effect not in TOLERATION_EFFECTS:
        raise click.BadParameter(f"toleration effect {effect!r} is not one of {', '.join(TOLERATION_EFFECTS)}")
    key, has_value, toleration_value = spec.partition("=")
    if not key:
        raise click.BadParameter(f"{value!r} has no key")
    return make_toleration(key, effect, toleration_value if has_value else None)


def node_selector_callback(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    return parse_node_selector(values)


def tolerations_callback(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> list[Any]:
    return [parse_toleration(value) for value in values]
