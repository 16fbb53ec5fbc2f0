"""Scaling of local distributed training: the same global work on 1 and 2 worker processes.

Same data, epochs and global batch size (per-worker batch = global / workers), so both
runs do the same number of optimizer steps on the same examples. Reports training
examples/s (epochs after the first, which includes graph building) and the scaling
efficiency (throughput with N workers / (N x throughput with 1)). CPU only: on this
2-core machine the workers share the cores, so this measures overhead, not speedup.

    .venv/bin/python benchmarks/train_scaling.py --model cnn --epochs 4 --global-batch 64
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from distml.data.sources import load_data
from distml.training.launch import train
from distml.training.worker import WorkerConfig


def throughput(metrics: dict) -> float:
    steady = metrics["epochs"][1:] or metrics["epochs"]
    examples = metrics["steps_per_epoch"] * metrics["global_batch_size"] * len(steady)
    return examples / sum(epoch["seconds"] for epoch in steady)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--data", default="sklearn:digits")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--global-batch", type=int, default=64)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        data = Path(scratch) / "data"
        load_data(args.data, data)
        rates = {}
        for workers in args.workers:
            config = WorkerConfig(
                args.model,
                data,
                Path(scratch) / f"model-{workers}",
                epochs=args.epochs,
                batch_size=args.global_batch // workers,
            )
            metrics = train(config, workers, launcher="local")
            rates[workers] = throughput(metrics)
            print(
                json.dumps(
                    {
                        "workers": workers,
                        "model": args.model,
                        "global_batch": metrics["global_batch_size"],
                        "examples_per_s": round(rates[workers], 1),
                        "test_accuracy": round(metrics["test_accuracy"], 4),
                        "efficiency": round(rates[workers] / (workers * rates[args.workers[0]] / args.workers[0]), 3),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
