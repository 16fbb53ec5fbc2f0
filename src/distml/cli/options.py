"""Parsers for command-line options shared by several commands (train, deploy): node selectors, tolerations.

Each raises ``click.BadParameter`` (a usage error, exit 2) naming the value and the expected form.
``*_callback`` variants plug into ``click.option(..., multiple=True, callback=...)``. The rule for
every command: a bad option value (or argument) is a usage error, exit 2; a bad input file, or a
refusal from a cluster, exits 1. ``option_errors`` holds a library check of option values to it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from distml.errors import DistmlError

#: Seeds numpy's and TensorFlow's generators both take (numpy refuses negative ones).
SEED = click.IntRange(0, 2**32 - 1)


def finite_callback(_ctx: click.Context, _param: click.Parameter, value: float | None) -> float | None:
    """Refuse NaN and infinity, which ``click.FloatRange`` lets through (NaN compares false to every bound)."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number")
    return value


@contextlib.contextmanager
def option_errors(param_hint: str | None = None) -> Iterator[None]:
    """A DistmlError raised inside was about option values only (the block reads no file): exit 2, as click's own."""
    try:
        yield
    except DistmlError as err:
        message = str(err)
        if err.where and err.where.startswith("--"):  # the error names the option itself: click says it
            param_hint, message = param_hint or f"'{err.where}'", str(DistmlError(err.what, hint=err.hint))
        context = click.get_current_context(silent=True)
        raise click.BadParameter(message, ctx=context, param_hint=param_hint) from err


def source_callback(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """A data source spec that names no source (``bogus:x``) is a usage error; a missing file is found later (exit 1).

    Reads the forms from ``distml.data.sources.SOURCES``: ``dtd:PATH`` and ``npz:PATH`` take a path,
    the others are whole names. A folder (``distml train``'s loaded-data folder) passes as it is.
    """
    from distml.data.sources import SOURCES

    if value is None or Path(value).is_dir():
        return value
    scheme, _, rest = value.partition(":")
    with_path = {form.removesuffix(":PATH") for form in SOURCES if form.endswith(":PATH")}
    if value in SOURCES or (scheme in with_path and rest):
        return value
    raise click.BadParameter(f"unknown data source {value!r}; use one of: {', '.join(SOURCES)}")


def service_name_callback(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """An InferenceService (and served model) name: a DNS-1035 label of at most 45 characters."""
    from distml.errors import DistmlError
    from distml.parameters import check_service_name

    if value is not None:
        try:
            check_service_name("name", value)
        except DistmlError as err:
            raise click.BadParameter(str(err)) from None
    return value


def namespace_callback(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """A Kubernetes namespace (a DNS-1123 label); empty or absent: the default namespace."""
    from distml.errors import DistmlError
    from distml.parameters import check_dns_label

    if value:
        try:
            check_dns_label("namespace", value)
        except DistmlError as err:
            raise click.BadParameter(str(err)) from None
    return value


def non_empty_callback(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """Refuse an empty (or blank) value where a name is needed; absent stays absent."""
    if value is not None and not value.strip():
        raise click.BadParameter("must not be empty")
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


def parse_toleration(value: str) -> Any:
    """``KEY[=VALUE]:EFFECT`` -> ``distml.tolerations.Toleration`` (KEY=VALUE: operator Equal; bare KEY: Exists).

    The one parsing rule for every command; the result carries its operator explicitly, so the
    TFJob's and the InferenceService's pods get the same fields.
    """
    from distml.tolerations import Toleration

    try:
        return Toleration.parse(value)
    except DistmlError as err:
        raise click.BadParameter(str(err)) from err


def node_selector_callback(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    return parse_node_selector(values)


def tolerations_callback(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> list[Any]:
    return [parse_toleration(value) for value in values]


#: ``--allow-root DIR`` (repeatable): a folder outside a dataset's own that its locations may point into.
allow_root_option = click.option(
    "--allow-root",
    "allow_roots",
    multiple=True,
    type=click.Path(file_okay=False, exists=True),
    help="A folder outside the dataset's own whose files its locations may name (repeatable; "
    "symlinks are resolved first). Default: only the dataset's folder.",
)
