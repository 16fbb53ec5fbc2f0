"""`distml infer` throughput of the ecvl backend (ECVL DLDataset + EDDL) against onnxruntime, same part, same model.

Makes synthetic lesions and a unet-small Model folder with random weights (throughput does not depend on
the weights; the folder holds both exports: model.onnx for ONNX Runtime, model-eddl.onnx for EDDL), then
runs `distml infer --backend B --threads T` over one split of the dataset, alternating the backends
repeat after repeat, so load from other work on the machine falls on both alike. Reported per backend:
images/s from the inference seconds each shard reports (data loading + network, not process start-up;
median and best of the repeats), images/s with process start-up (wall clock), and for ecvl the time
to import and build the EDDL network (`import_seconds` in metrics.json).
Run: .venv/bin/python benchmarks/infer_backends.py [--images 500] [--size 64] [--split training]
     [--batch-size 16] [--threads 2] [--repeat 5]     (needs pyecvl/pyeddl: make setup with ../shared/ecvl)
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
BACKENDS = ("onnxruntime", "ecvl")


def make_model_folder(folder: Path, size: int) -> Path:
    from distml.training.model_folder import save_model_folder
    from distml.training.models import build_model

    model = build_model("unet-small", (size, size, 3), 1)
    return save_model_folder(model, folder, architecture="unet-small", task="segmentation",
                             input_shape=[size, size, 3], classes=[], metrics={}, onnx=True)


def infer(backend: str, model: Path, dataset: Path, out: Path, args: argparse.Namespace) -> dict:
    command = [str(Path(sys.executable).parent / "distml"), "infer", "--backend", backend, "--model", str(model)]
    command += ["--dataset", str(dataset), "--out", str(out), "--split", args.split]
    command += ["--batch-size", str(args.batch_size), "--threads", str(args.threads)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    metrics = json.loads((out / "metrics.json").read_text())
    return {"rate": metrics["images_per_second"], "wall_rate": metrics["images"] / wall,
            "images": metrics["images"], "miou": metrics["miou"], "import_seconds": metrics.get("import_seconds")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--split", default="training")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from distml.data.synth import synth_lesions

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dataset = synth_lesions(root / "data", images=args.images, size=args.size, seed=0)
        model = make_model_folder(root / "model", args.size)
        for backend in BACKENDS:  # page cache and first-import costs
            infer(backend, model, dataset, root / f"warm-{backend}", args)
        load_before = os.getloadavg()[0]
        results: dict[str, list[dict]] = {backend: [] for backend in BACKENDS}
        for r in range(args.repeat):
            for backend in BACKENDS if r % 2 == 0 else reversed(BACKENDS):
                results[backend].append(infer(backend, model, dataset, root / f"{backend}-{r}", args))
        load_after = os.getloadavg()[0]
    print(f"load average (1 min) before {load_before:.2f}, after {load_after:.2f}; cores: {os.cpu_count()}")
    first = results[BACKENDS[0]][0]
    print(f"{first['images']} images ({args.split} split of {args.images}) {args.size}x{args.size}, unet-small, "
          f"batch {args.batch_size}, --threads {args.threads}, {args.repeat} interleaved repeats")
    for backend, runs in results.items():
        rates = [run["rate"] for run in runs]
        line = (f"{backend:12s} {statistics.median(rates):8.1f} images/s median, {max(rates):8.1f} best; "
                f"with process start-up {statistics.median(run['wall_rate'] for run in runs):7.1f}; "
                f"MIoU {runs[0]['miou']:.6f}")
        if runs[0]["import_seconds"] is not None:
            imports = [run["import_seconds"] for run in runs]
            line += f"; EDDL network import+build {statistics.median(imports) * 1000:.1f} ms median"
        print(line)


if __name__ == "__main__":
    main()
