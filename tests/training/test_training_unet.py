"""unet-small learns the synthetic lesions in a demo-sized run, and its ONNX export scores the same."""

from __future__ import annotations

import json

import pytest

from distml.data.sources import load_data
from distml.training.local import run_local_workers
from distml.training.spec import worker_args
from distml.training.worker import WorkerConfig


@pytest.mark.slow
def test_unet_small_learns_lesions_and_onnx_gives_the_same_miou(tmp_path):
    """60 images at 32x32, 8 epochs of batch 8 (40 steps): about 20 s on 2 cores, mIoU ~0.85 seen.

    Trivial masks score far below the 0.6 asserted: all background 0, all foreground about 0.13.
    """
    from distml.inference.shard import run_inference

    data = tmp_path / "lesions"
    load_data("synthetic:lesions", data, images=60, size=32, seed=3)
    out = tmp_path / "model"
    config = WorkerConfig("unet-small", data, out, epochs=8, batch_size=8, image_size=32, onnx=True)
    lines: list[str] = []
    run_local_workers(worker_args(config), 1, log_dir=tmp_path / "logs", progress=lines.append, timeout=120)

    metrics = json.loads((out / "metrics.json").read_text())
    assert "worker-0 start examples=42 global_batch=8 steps_per_epoch=5 epochs=8" in lines
    assert metrics["epochs"][-1]["loss"] < metrics["epochs"][0]["loss"]
    assert metrics["test_miou"] >= 0.6, metrics

    shard = run_inference("onnxruntime", out, data / "dataset.yml", tmp_path / "shard")
    assert shard["images"] == 12  # the 20% test split
    assert shard["miou"] == pytest.approx(metrics["test_miou"], abs=1e-3)
