"""Every input and output of the compiled components and pipelines carries a description.

KFP 2.17 reads them from Google-style docstrings (kfp/dsl/component_factory.py,
extract_component_interface): ``Args:`` describes inputs; ``Returns:`` is re-read as an
``Args:`` section and describes outputs, both output artifacts and return values (``Output``
or a NamedTuple's fields). The UI's run form shows the pipeline's input descriptions.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import distml.components
import distml.pipelines

COMPONENT_YAMLS = sorted(distml.components.YAML_DIR.glob("*.yaml"))
PIPELINE_YAMLS = [distml.pipelines.COMPILED_DIR / f"{name}.yaml" for name in distml.pipelines.PIPELINE_NAMES]


def _undescribed(definition: dict, where: str) -> list[str]:
    """``where.inputs.NAME`` / ``where.outputs.NAME`` for every input or output without a description."""
    missing = []
    for side, key in (("inputs", "inputDefinitions"), ("outputs", "outputDefinitions")):
        for kind in ("parameters", "artifacts"):
            for name, spec in (definition.get(key) or {}).get(kind, {}).items():
                if not (spec.get("description") or "").strip():
                    missing.append(f"{where}.{side}.{name}")
    return missing


def _pipeline_spec(path: Path) -> dict:
    return next(yaml.safe_load_all(path.read_text(encoding="utf-8")))


def _container_components(spec: dict) -> dict[str, dict]:
    """The components that run our code: not KFP's own DAGs (conditions, loops) or its importer."""
    executors = spec["deploymentSpec"]["executors"]
    return {
        name: component
        for name, component in spec["components"].items()
        if "dag" not in component and "container" in executors[component["executorLabel"]]
    }


def test_every_component_yaml_is_there():
    assert [path.stem for path in COMPONENT_YAMLS] == sorted(distml.components.all_components())


@pytest.mark.parametrize("path", COMPONENT_YAMLS, ids=lambda path: path.stem)
def test_every_input_and_output_of_a_component_yaml_has_a_description(path):
    spec = _pipeline_spec(path)
    missing = _undescribed(spec["root"], "root")
    for name, component in _container_components(spec).items():
        missing += _undescribed(component, name)
    assert not missing, f"{path.name}: no description for {', '.join(missing)}"


@pytest.mark.parametrize("path", PIPELINE_YAMLS, ids=lambda path: path.stem)
def test_every_input_of_a_pipeline_and_of_its_components_has_a_description(path):
    spec = _pipeline_spec(path)
    assert spec["root"]["inputDefinitions"]["parameters"], "a pipeline with no inputs: nothing to check"
    missing = _undescribed(spec["root"], "root")
    components = _container_components(spec)
    assert components, "no component of ours found in the pipeline"
    for name, component in components.items():
        missing += _undescribed(component, name)
    assert not missing, f"{path.name}: no description for {', '.join(missing)}"
    assert spec["pipelineInfo"].get("description"), f"{path.name} has no description"
