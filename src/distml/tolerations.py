"""One Kubernetes toleration type for every pod distml places: TFJob workers, InferenceService
predictors and (through the pipelines' parameters) KFP task pods.

Kubernetes' own fields pass through unchanged (``key``, ``operator``, ``value``, ``effect``,
``tolerationSeconds``): nothing is defaulted here, so a list means on a TFJob's or an
InferenceService's pods exactly what ``kfp.kubernetes.add_toleration_json`` makes it mean on a
task's pod. A missing ``operator`` is Kubernetes' ``Equal``, which with no ``value`` matches only
a taint whose value is empty; write ``"operator": "Exists"`` to tolerate a key whatever its value.

The checks are Kubernetes' own (``validateTolerations`` in kubernetes/kubernetes
pkg/apis/core/validation/validation.go, release-1.33), so a bad list fails before a job or a
service is created rather than at the API server: operator ``Exists`` or ``Equal``; ``Exists``
takes no value; an empty key needs ``Exists``; ``tolerationSeconds`` only with ``NoExecute``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from distml.errors import DistmlError

OPERATORS = ("Exists", "Equal")
EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
FIELDS = ("key", "operator", "value", "effect", "tolerationSeconds")
# Label keys and values (k8s.io/apimachinery pkg/util/validation/validation.go: IsQualifiedName, IsValidLabelValue).
_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_PREFIX = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_QUALIFIED_NAME = re.compile(rf"^({_PREFIX}/)?{_NAME}$")
_LABEL_VALUE = re.compile(rf"^({_NAME})?$")
CLI_FORM = "KEY[=VALUE]:EFFECT"


@dataclass(frozen=True)
class Toleration:
    """A pod toleration with Kubernetes' field names and meaning (``None``: the field is absent)."""

    key: str | None = None
    operator: str | None = None
    value: str | None = None
    effect: str | None = None
    toleration_seconds: int | None = None

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise DistmlError for what the API server would refuse, naming the field."""
        where = f"toleration {self.to_dict()}"
        if self.operator is not None and self.operator not in OPERATORS:
            raise DistmlError(f"operator {self.operator!r} is not Exists or Equal", where=where)
        if self.key and (len(self.key) > 253 + 1 + 63 or not _QUALIFIED_NAME.match(self.key)):
            raise DistmlError(f"key {self.key!r} is not a label key", where=where, hint="e.g. nvidia.com/gpu")
        if not self.key and self.operator != "Exists":
            raise DistmlError("an empty key needs operator Exists (it then matches every taint)", where=where)
        if self.operator == "Exists" and self.value:
            raise DistmlError("operator Exists takes no value", where=where, hint="Drop the value, or use Equal.")
        if self.operator != "Exists" and self.value and not _LABEL_VALUE.match(self.value):
            raise DistmlError(f"value {self.value!r} is not a label value", where=where)
        if self.effect and self.effect not in EFFECTS:
            raise DistmlError(f"effect {self.effect!r} unknown", where=where, hint=f"Use one of {', '.join(EFFECTS)}.")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise DistmlError("tolerationSeconds needs effect NoExecute", where=where)

    @classmethod
    def from_dict(cls, fields: Mapping[str, Any]) -> Toleration:
        """A toleration from Kubernetes' JSON fields (what pipelines and components take)."""
        if not isinstance(fields, Mapping):
            raise DistmlError(f"a toleration must be an object with Kubernetes' fields, not {fields!r}")
        unknown = sorted(set(fields) - set(FIELDS))
        if unknown:
            raise DistmlError(
                f"toleration {dict(fields)} has unknown field(s) {', '.join(unknown)}",
                hint=f"Kubernetes' fields are {', '.join(FIELDS)}.",
            )
        seconds = fields.get("tolerationSeconds")
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int | float)):
            raise DistmlError(f"tolerationSeconds {seconds!r} is not a number", where=f"toleration {dict(fields)}")
        text = {name: fields.get(name) for name in ("key", "operator", "value", "effect")}
        for name, value in text.items():
            if value is not None and not isinstance(value, str):
                raise DistmlError(f"{name} {value!r} is not a string", where=f"toleration {dict(fields)}")
        return cls(**text, toleration_seconds=None if seconds is None else int(seconds))

    @classmethod
    def parse(cls, text: str) -> Toleration:
        """The command line's ``KEY[=VALUE]:EFFECT``: ``KEY=VALUE`` is operator Equal, a bare ``KEY`` Exists."""
        match = re.fullmatch(r"([^=:]+)(?:=([^:]*))?:(\w+)", text)
        if not match or match.group(3) not in EFFECTS:
            raise DistmlError(
                f"bad toleration {text!r}",
                hint=f"Write {CLI_FORM} with EFFECT one of {', '.join(EFFECTS)} (e.g. nvidia.com/gpu:NoSchedule).",
            )
        key, value, effect = match.groups()
        if value is None:
            return cls(key=key, operator="Exists", effect=effect)
        return cls(key=key, operator="Equal", value=value, effect=effect)

    def to_dict(self) -> dict[str, Any]:
        """Kubernetes' JSON form, absent fields left out (what add_toleration_json gives a task's pod)."""
        values = {
            "key": self.key,
            "operator": self.operator,
            "value": self.value,
            "effect": self.effect,
            "tolerationSeconds": self.toleration_seconds,
        }
        return {name: value for name, value in values.items() if value is not None}

    def to_k8s(self) -> Any:
        """The ``kubernetes.client.V1Toleration`` of the same fields."""
        from kubernetes.client import V1Toleration

        return V1Toleration(
            key=self.key,
            operator=self.operator,
            value=self.value,
            effect=self.effect,
            toleration_seconds=self.toleration_seconds,
        )


def tolerations_from_dicts(
    items: Iterable[Mapping[str, Any]] | None, *, where: str = "tolerations"
) -> list[Toleration]:
    """A JSON list of tolerations (a pipeline or component input), each checked; the index names a bad one."""
    if items is None:
        return []
    if isinstance(items, Mapping | str):
        raise DistmlError(f"{where} must be a list of toleration objects, not {items!r}")
    result = []
    for index, item in enumerate(items):
        try:
            result.append(Toleration.from_dict(item))
        except DistmlError as err:
            raise DistmlError(err.what, where=f"{where}[{index}]", hint=err.hint) from err
    return result
