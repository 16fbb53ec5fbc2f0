"""The load_data and split_dataset components: on KFP's local runner, and as component YAML.

No ``from __future__ import annotations`` here: KFP reads the components' annotations.
"""

import json

import pytest


@pytest.mark.slow
def test_components_run_on_the_kfp_local_runner(local_runner):
    from kfp import dsl

    from distml.components.load_data import load_data as load_component
    from distml.components.split_dataset import split_dataset

    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def count_images(parts: dsl.Input[dsl.Dataset], dataset: dsl.Input[dsl.Dataset], part: str) -> int:
        from distml.data.dtd import check_files, read_dataset

        loaded = read_dataset(f"{parts.path}/{part}")
        check_files(loaded)  # the part's relative paths reach the dataset artifact's images
        return len(loaded.images)

    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def total(counts: list) -> int:
        return int(sum(counts))

    @dsl.pipeline
    def fan_out(num_parts: int = 3) -> int:
        loaded = load_component(source="synthetic:lesions", images=11, size=8)
        split = split_dataset(dataset=loaded.outputs["dataset"], num_parts=num_parts)
        with dsl.ParallelFor(split.outputs["Output"]) as part:
            counted = count_images(parts=split.outputs["parts"], dataset=loaded.outputs["dataset"], part=part)
        return total(counts=dsl.Collected(counted.output)).output

    assert fan_out(num_parts=3).output == 11
    manifests = list(local_runner.rglob("parts.json"))
    assert len(manifests) == 1
    assert [p["images"] for p in json.loads(manifests[0].read_text())["parts"]] == [3, 3, 5]


def test_component_yaml_is_current_and_loads_back(tmp_path):
    from kfp import components

    from distml.components import YAML_DIR, all_components, write_component_yaml

    fresh = write_component_yaml(tmp_path)
    for path in fresh:
        committed = YAML_DIR / path.name
        assert committed.exists(), f"{committed} missing: run `distml compile`"
        assert committed.read_text() == path.read_text(), f"{committed} is stale: run `distml compile`"
        loaded = components.load_component_from_file(str(committed))
        assert loaded.name == path.stem.replace("_", "-")
    assert {p.stem for p in fresh} == set(all_components())
