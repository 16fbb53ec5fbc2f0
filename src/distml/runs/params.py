"""Pipeline parameters: ``--param KEY=VALUE`` parsed to the declared types, arguments checked before a run."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from kfp.dsl.graph_component import GraphComponent

from distml.errors import DistmlError
from distml.tolerations import tolerations_from_dicts


def _kind(type_name: str) -> str:
    """The Python kind of a declared KFP input type ('Integer', 'typing.List[int]', ...)."""
    simple = {"Integer": "int", "Float": "float", "Boolean": "bool", "String": "str"}
    if type_name in simple:
        return simple[type_name]
    if type_name == "List" or type_name.startswith("typing.List") or type_name.startswith("list"):
        return "list"
    if type_name == "Dict" or type_name.startswith("typing.Dict") or type_name.startswith("dict"):
        return "dict"
    return "artifact"


def parameter_kinds(pipeline: GraphComponent) -> dict[str, str]:
    """Each pipeline parameter with its Python kind: int, float, bool, str, list, dict or artifact."""
    return {name: _kind(str(spec.type)) for name, spec in (pipeline.component_spec.inputs or {}).items()}


def convert_param(pipeline: GraphComponent, key: str, text: str) -> Any:
    """TEXT converted to the declared type of parameter KEY (lists and dicts as JSON)."""
    kinds = parameter_kinds(pipeline)
    where = f"--param {key}"
    if key not in kinds:
        known = ", ".join(sorted(kinds)) or "none"
        raise DistmlError(f"{pipeline.name} has no parameter {key!r}", where=where, hint=f"Parameters: {known}")
    kind = kinds[key]
    if kind == "artifact":
        raise DistmlError(f"{key!r} is an artifact input, not a parameter", where=where)
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "bool":
            lowered = text.strip().lower()
            if lowered in {"true", "1", "yes"}:
                return True
            if lowered in {"false", "0", "no"}:
                return False
            raise ValueError(text)
        if kind in {"list", "dict"}:
            value = json.loads(text)
            if not isinstance(value, list if kind == "list" else dict):
                raise ValueError(text)
            return value
    except ValueError:
        example = {"int": "3", "float": "0.5", "bool": "true", "list": "[1, 2]", "dict": '{"a": 1}'}[kind]
        raise DistmlError(  # from None: the ValueError only repeats TEXT
            f"{text!r} is not a valid {kind}", where=where, hint=f"Give a {kind}, e.g. {key}={example}"
        ) from None
    return text


def parse_params(pipeline: GraphComponent, items: Iterable[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings as pipeline arguments of their declared types."""
    arguments: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise DistmlError(f"{item!r} is not KEY=VALUE", where="--param", hint="Write e.g. --param epochs=3")
        arguments[key.strip()] = convert_param(pipeline, key.strip(), text)
    return arguments


def check_arguments(pipeline: GraphComponent, arguments: Mapping[str, Any]) -> None:
    """Unknown names, missing required parameters and bad tolerations, caught before anything runs.

    A ``*tolerations`` list reaches KFP task pods unchecked (kfp.kubernetes passes it to the pod as
    it is), so it is checked here by the rules the train and deploy steps apply (distml.tolerations).
    """
    specs = pipeline.component_spec.inputs or {}  # None for a pipeline without parameters
    unknown = sorted(set(arguments) - set(specs))
    if unknown:
        raise DistmlError(
            f"{pipeline.name} has no parameter {', '.join(unknown)}", hint=f"Parameters: {', '.join(sorted(specs))}"
        )
    missing = sorted(name for name, spec in specs.items() if not spec.optional and name not in arguments)
    if missing:
        raise DistmlError(f"{pipeline.name} needs {', '.join(missing)}", hint="Give them with --param KEY=VALUE")
    for name, value in arguments.items():
        if name.endswith("tolerations"):
            tolerations_from_dicts(value, where=name)
