"""The select_model component on KFP's local runner, fed by a ParallelFor through dsl.Collected.

No ``from __future__ import annotations`` here: KFP reads the components' annotations.
The producer writes stand-in Model folders (metrics.json, model.json): selection only reads those.
"""

import json

import pytest


@pytest.mark.slow
def test_select_model_picks_the_best_of_a_parallel_for(local_runner):
    from kfp import dsl

    from distml.components.select_model import select_model

    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def fake_model(accuracy: float, model: dsl.Output[dsl.Model]):
        import json
        from pathlib import Path

        folder = Path(model.path)
        folder.mkdir(parents=True)
        (folder / "model.json").write_text(json.dumps({"architecture": "mlp", "task": "classification"}))
        (folder / "metrics.json").write_text(json.dumps({"test_accuracy": accuracy, "test_loss": 1 - accuracy}))

    @dsl.pipeline
    def pick(accuracies: list = [0.7, 0.9, 0.8, 0.9]) -> str:  # noqa: B006
        with dsl.ParallelFor(accuracies) as accuracy:
            trained = fake_model(accuracy=accuracy)
        return select_model(models=dsl.Collected(trained.outputs["model"]), metric="test_loss", lowest=True).outputs[
            "Output"
        ]

    chosen = pick().output
    best = next(p for p in local_runner.rglob("best") if (p / "metrics.json").exists())
    # Two models tie at 0.9: the first of the ParallelFor's list wins.
    assert json.loads((best / "metrics.json").read_text())["test_accuracy"] == 0.9
    comparison = next(local_runner.rglob("comparison")).read_text()
    assert f"| 1 | {chosen} |" in comparison and comparison.count("\n| ") == 5
    rows = [line.split(" | ")[1] for line in comparison.splitlines()[4:]]
    assert rows[0] == chosen == "for-loop-1-iteration-1/fake-model/model" and len(set(rows)) == 4
    report = next(local_runner.rglob("report")).read_text()
    assert report.startswith("<!DOCTYPE html>") and chosen in report


def test_a_nan_metric_stays_out_of_the_kfp_metrics_but_in_the_tables(tmp_path):
    """KFP stores Metrics as JSON, which has no NaN: a diverged model is shown in the tables only."""
    import math

    from kfp import dsl

    from distml.components.select_model import select_model

    models = []
    for name, loss in (("good", 0.2), ("diverged", math.nan)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "model.json").write_text(json.dumps({"architecture": "mlp", "task": "classification"}))
        (folder / "metrics.json").write_text(json.dumps({"test_loss": loss}))
        models.append(dsl.Model(uri=str(folder)))
    outputs = {
        name: kind(uri=str(tmp_path / name))
        for name, kind in (
            ("best", dsl.Model),
            ("comparison", dsl.Markdown),
            ("report", dsl.HTML),
            ("metrics", dsl.Metrics),
        )
    }
    chosen = select_model.python_func(models=models, metric="test_loss", lowest=True, **outputs)
    assert chosen.endswith("good")
    assert list(outputs["metrics"].metadata) == [f"test_loss {chosen}"]
    assert "diverged" in (tmp_path / "comparison").read_text()
    json.dumps(outputs["metrics"].metadata, allow_nan=False)
