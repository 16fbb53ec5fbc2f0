"""DeepHealth's inference path end to end: ``distributed_inference`` on KFP's local runner with
``backend=ecvl`` gathers the MIoU that ``backend=onnxruntime`` gathers, on a model the pipeline trained.

Run through the command line (``distml run ... --local``), as the README's demo does, each run in its
own process like a user's."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_models import IOU_TOLERANCE

from distml.inference.backends import backend_classes

pytestmark = [pytest.mark.slow, pytest.mark.ecvl]

SETTINGS = ["images=60", "image_size=64", "num_parts=3", "quick_model_epochs=10"]


def run_pipeline(out: Path, *params: str) -> dict:
    distml = Path(sys.executable).with_name("distml")
    command = [str(distml), "run", "distributed_inference", "--local", "--out", str(out)]
    for param in [*SETTINGS, *params]:
        command += ["--param", param]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=out,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    (run_dir,) = [p for p in out.iterdir() if p.is_dir() and p.name.startswith("distributed_inference-")
                  and not (p / "seen").exists()]
    (run_dir / "seen").touch()
    return json.loads((run_dir / "run.json").read_text())


def outputs_of(run: dict, task: str) -> list[dict]:
    return [outputs for path, outputs in sorted(run["task_outputs"].items()) if path.split("/")[-1].startswith(task)]


def per_image(run: dict) -> dict[str, float]:
    rows = {}
    for outputs in outputs_of(run, "infer-shard"):
        metrics = json.loads((Path(outputs["shard"]) / "metrics.json").read_text())
        rows.update({row["image"]: row["iou"] for row in metrics["per_image"]})
    return rows


def test_ecvl_and_onnxruntime_gather_the_same_miou_on_a_model_the_pipeline_trained(tmp_path):
    reason = backend_classes()["ecvl"].unavailable_reason()
    if reason:
        pytest.skip(reason)
    trained = run_pipeline(tmp_path, "backend=onnxruntime")
    (model,) = [outputs["model"] for outputs in outputs_of(trained, "train")]
    assert (Path(model) / "model-eddl.onnx").is_file()
    on_ecvl = run_pipeline(tmp_path, "backend=ecvl", f"model_uri={model}")
    assert not outputs_of(on_ecvl, "train")  # the ecvl run used the trained model, not a new one

    (ort_miou,) = [o["Output"] for o in outputs_of(trained, "gather-metrics")]
    (ecvl_miou,) = [o["Output"] for o in outputs_of(on_ecvl, "gather-metrics")]
    assert ecvl_miou == pytest.approx(ort_miou, abs=IOU_TOLERANCE)
    assert ort_miou > 0.3  # a model that finds the lesions, so equal MIoUs are not two empty masks

    shards = [json.loads((Path(o["shard"]) / "metrics.json").read_text()) for o in outputs_of(on_ecvl, "infer-shard")]
    assert len(shards) == 3 and {s["backend"] for s in shards} == {"ecvl"}
    assert {Path(s["model"]).name for s in shards} == {"model-eddl.onnx"}
    ort_rows, ecvl_rows = per_image(trained), per_image(on_ecvl)
    assert ecvl_rows.keys() == ort_rows.keys() and len(ecvl_rows) >= 10
    assert all(abs(ecvl_rows[image] - ort_rows[image]) <= IOU_TOLERANCE for image in ort_rows)
