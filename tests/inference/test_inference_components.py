"""infer_shard, gather_metrics and cleanup_parts in a small pipeline on KFP's local runner.

load_data (synthetic lesions) -> split_dataset -> ParallelFor infer_shard -> gather_metrics
(dsl.Collected) -> cleanup_parts (after the gather, once), with a Model folder made here.
No ``from __future__ import annotations``: KFP reads the annotations.
"""

import json

import pytest
from tiny_models import LESION_SIZE

from distml.inference.shard import run_inference

pytestmark = pytest.mark.slow


def sharded_inference_pipeline(model_uri: str):
    from kfp import dsl

    from distml.components.cleanup_parts import cleanup_parts
    from distml.components.gather_metrics import gather_metrics
    from distml.components.infer_shard import infer_shard
    from distml.components.load_data import load_data
    from distml.components.split_dataset import split_dataset

    @dsl.pipeline
    def sharded_inference(num_parts: int = 3, split: str = "test") -> float:
        model = dsl.importer(artifact_uri=model_uri, artifact_class=dsl.Model, reimport=False)
        loaded = load_data(source="synthetic:lesions", images=30, size=LESION_SIZE, seed=4)
        parts = split_dataset(dataset=loaded.outputs["dataset"], num_parts=num_parts)
        with dsl.ParallelFor(parts.outputs["Output"]) as part:
            shard = infer_shard(
                model=model.output,
                parts=parts.outputs["parts"],
                dataset=loaded.outputs["dataset"],
                part=part,
                split=split,
                batch_size=4,
            )
        gathered = gather_metrics(shards=dsl.Collected(shard.outputs["shard"]))
        cleanup_parts(parts=parts.outputs["parts"]).after(gathered)
        return gathered.outputs["Output"]

    return sharded_inference


def test_pipeline_gathers_shards_to_the_unsplit_metrics_and_cleans_the_parts(lesion_model, local_runner, tmp_path):
    _, model_folder = lesion_model
    miou = sharded_inference_pipeline(str(model_folder))(num_parts=3).output

    [dataset_file] = local_runner.rglob("dataset.yml")
    unsplit = run_inference("onnxruntime", model_folder, dataset_file, tmp_path / "unsplit", batch_size=5)
    assert miou == pytest.approx(unsplit["miou"], abs=1e-6)
    [summary] = [p for p in local_runner.rglob("metrics.json") if p.parent.name == "summary"]
    gathered = json.loads(summary.read_text())
    assert gathered["images"] == unsplit["images"] and len(gathered["shards"]) == 3
    [report] = [p for p in local_runner.rglob("report") if p.is_file()]
    assert report.read_text().count("data:image/png;base64") == 16  # 4 sample rows x image/gt/output/overlay
    assert not list(local_runner.rglob("part-*.yml")) and not list(local_runner.rglob("parts.json"))


def test_parts_stay_for_a_retry_when_the_shards_fail(lesion_model, local_runner):
    """No clean-up after a failed shard: the parts are what a retry of the run reads (docs/inference.md)."""
    _, model_folder = lesion_model
    with pytest.raises(RuntimeError, match="infer-shard"):
        sharded_inference_pipeline(str(model_folder))(num_parts=2, split="holdout")
    assert list(local_runner.rglob("dataset.yml")), "the load step ran"
    assert len(list(local_runner.rglob("part-*.yml"))) == 2 and list(local_runner.rglob("parts.json"))
    assert not [p for p in local_runner.rglob("metrics.json") if p.parent.name == "shard"]
