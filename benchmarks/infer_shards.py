"""Per-shard inference throughput: 1 part vs 2 parts in parallel processes (ONNX Runtime, CPU).

Makes synthetic lesions and a unet-small model with random weights (throughput does not depend
on the weights), converts it to ONNX, then times `distml infer` on every image:
  * 1 part, 1 thread;  * 2 parts at once in two processes, 1 thread each (a pod per shard);
  * 1 part, all cores (ONNX Runtime's default threading), for reference.
Images/s use the seconds each shard reports (inference, not process start-up); for parallel
runs, images over the longest shard's seconds. Parallel efficiency = 2-part rate / (2 x 1-part rate).
The floor of the 1-part, 1-thread run is bare ``session.run`` on the same batches plus the image
and mask decoding it must do (no validation, metrics or output), interleaved with it round by
round; target (issue 15): distml >= 0.95 of the floor.
Each configuration runs --repeat times and keeps its best rate; the load average is printed,
because other work on the machine takes cores from the parallel run first.
Run: .venv/bin/python benchmarks/infer_shards.py [--images 400] [--size 64] [--batch-size 16] [--repeat 3]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def make_model(folder: Path, size: int) -> Path:
    from distml.inference.convert import keras_to_onnx
    from distml.training.models import build_model

    return keras_to_onnx(build_model("unet-small", (size, size, 3), 1), folder / "unet-small.onnx")


def infer(model: Path, part: Path, out: Path, batch_size: int, threads: int) -> subprocess.Popen:
    command = [str(Path(sys.executable).parent / "distml"), "infer", "--model", str(model), "--dataset", str(part)]
    command += ["--out", str(out), "--split", "all", "--batch-size", str(batch_size), "--threads", str(threads)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


FLOOR = """
import json, sys, time
import numpy as np, onnxruntime as ort
from PIL import Image
model, dataset_file, batch_size = sys.argv[1], sys.argv[2], int(sys.argv[3])
from distml.data.dtd import read_dataset
dataset = read_dataset(dataset_file)
options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
name = session.get_inputs()[0].name
start = time.perf_counter()
for first in range(0, len(dataset.images), batch_size):
    chunk = dataset.images[first:first + batch_size]
    images = np.stack([np.asarray(Image.open(dataset.resolve(i.location)).convert("RGB"), dtype=np.float32) / 255.0
                       for i in chunk])
    masks = np.stack([np.asarray(Image.open(dataset.resolve(i.label)).convert("L"), dtype=np.float32) / 255.0
                      for i in chunk])
    session.run(None, {name: images})
print(json.dumps({"images": len(dataset.images), "seconds": time.perf_counter() - start}))
"""


def floor(model: Path, dataset_file: Path, batch_size: int) -> dict:
    """Bare session.run on the same batches, 1 thread, plus the image and mask decoding it must do."""
    done = subprocess.run([sys.executable, "-c", FLOOR, str(model), str(dataset_file), str(batch_size)],
                          capture_output=True, text=True, check=True)  # fmt: skip
    result = json.loads(done.stdout)
    return {**result, "rate": result["images"] / result["seconds"]}


def run(model: Path, parts: list[Path], out: Path, batch_size: int, threads: int) -> dict:
    started = time.perf_counter()
    processes = [infer(model, part, out / f"shard-{i}", batch_size, threads) for i, part in enumerate(parts)]
    for process in processes:
        _, err = process.communicate()
        if process.returncode:
            raise SystemExit(err)
    wall = time.perf_counter() - started
    shards = [json.loads((out / f"shard-{i}" / "metrics.json").read_text()) for i in range(len(parts))]
    images = sum(s["images"] for s in shards)
    return {"images": images, "rate": images / max(s["seconds"] for s in shards), "wall_rate": images / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from distml.data.dtd import read_dataset
    from distml.data.split import split_dataset, write_parts
    from distml.data.synth import synth_lesions

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dataset_file = synth_lesions(root / "data", images=args.images, size=args.size, seed=0)
        dataset = read_dataset(dataset_file)
        model = make_model(root, args.size)
        halves = [root / "p2" / i.file for i in write_parts(dataset, split_dataset(dataset, 2), root / "p2")]
        load_before = os.getloadavg()[0]
        run(model, [dataset_file], root / "warm", args.batch_size, 1)  # page cache and first-import costs

        def best(name: str, parts: list[Path], threads: int) -> dict:
            runs = [run(model, parts, root / f"{name}-{r}", args.batch_size, threads) for r in range(args.repeat)]
            return max(runs, key=lambda result: result["rate"])

        ratios, one_runs, floors = [], [], []
        for r in range(args.repeat):  # interleaved with its floor
            one_runs.append(run(model, [dataset_file], root / f"one-{r}", args.batch_size, 1))
            floors.append(floor(model, dataset_file, args.batch_size))
            ratios.append(one_runs[-1]["rate"] / floors[-1]["rate"])
        one = max(one_runs, key=lambda result: result["rate"])
        two = best("two", halves, 1)
        all_cores = best("all", [dataset_file], 0)
        load_after = os.getloadavg()[0]
    print(f"load average (1 min) before {load_before:.2f}, after {load_after:.2f}")
    print(f"cores: {os.cpu_count()}; {args.images} images {args.size}x{args.size}, unet-small, batch {args.batch_size}")
    print(f"1 part,  1 thread : {one['rate']:8.1f} images/s  (with process start-up {one['wall_rate']:.1f})")
    print(f"floor, 1 thread (bare session.run + decoding): best {max(f['rate'] for f in floors):.1f} images/s; "
          f"distml/floor per round: {', '.join(f'{x:.2f}' for x in ratios)} (target >= 0.95)")  # fmt: skip
    print(f"2 parts, 1 thread each, in parallel: {two['rate']:8.1f} images/s  (with start-up {two['wall_rate']:.1f})")
    print(f"1 part,  all cores: {all_cores['rate']:8.1f} images/s")
    print(f"parallel efficiency: {two['rate'] / (2 * one['rate']):.2f} (target >= 0.8)")


if __name__ == "__main__":
    main()
