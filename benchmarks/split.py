"""Split a 1,000,000-image DTD into 64 parts: parse, split and write time, peak memory.

Target (issue 3): at most 8 s in all and 1 GiB on 2 cores. Compared with the same work
done with PyYAML's C loader and dumper. Run by hand:

    .venv/bin/python benchmarks/split.py [--images 1000000] [--parts 64] [--skip-pyyaml]

Each measurement runs in a fresh process so peak memory (ru_maxrss) is its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_dataset(path: Path, images: int) -> None:
    """A skin-lesion-like segmentation DTD: image and mask paths, 70/10/20 interleaved split."""
    with path.open("w", encoding="utf-8") as out:
        out.write('name: "isic-like"\ndescription: "benchmark"\nclasses: []\nimages:\n')
        for i in range(images):
            out.write(f'  - location: "images/ISIC_{i:07d}.jpg"\n    label: "ground_truth/ISIC_{i:07d}.png"\n')
        split = {"training": [], "validation": [], "test": []}
        for i in range(images):
            split["training" if i % 10 < 7 else "validation" if i % 10 == 7 else "test"].append(i)
        out.write("split:\n")
        for name, indices in split.items():
            out.write(f"  {name}: [{', '.join(map(str, indices))}]\n")


OURS = """
import json, resource, sys, time
from distml.data.dtd import read_dataset
from distml.data.split import split_dataset, write_parts
source, parts, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t0 = time.perf_counter(); dataset = read_dataset(source)
t1 = time.perf_counter(); pieces = split_dataset(dataset, parts)
t2 = time.perf_counter(); write_parts(dataset, pieces, out)
t3 = time.perf_counter()
print(json.dumps({"parse": t1 - t0, "split": t2 - t1, "write": t3 - t2, "total": t3 - t0,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

PYYAML = """
import json, resource, sys, time, yaml
source, parts, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t0 = time.perf_counter()
with open(source) as f:
    document = yaml.load(f, Loader=yaml.CSafeLoader)
t1 = time.perf_counter()
images, n = document["images"], len(document["images"])
size = n // parts
t2 = time.perf_counter()
for p in range(parts):
    chunk = images[p * size:] if p == parts - 1 else images[p * size:(p + 1) * size]
    with open(f"{out}/part-{p:03d}.yml", "w") as f:
        yaml.dump({"name": f"p{p}", "images": chunk}, f, Dumper=yaml.CSafeDumper)
t3 = time.perf_counter()
print(json.dumps({"parse": t1 - t0, "split": t2 - t1, "write": t3 - t2, "total": t3 - t0,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(script: str, source: Path, parts: int) -> dict:
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run(
            [sys.executable, "-c", script, str(source), str(parts), out], capture_output=True, text=True, check=True
        )
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--parts", type=int, default=64)
    parser.add_argument("--skip-pyyaml", action="store_true", help="PyYAML takes minutes on 1M images")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        source = Path(workdir) / "big.yml"
        started = time.perf_counter()
        make_dataset(source, args.images)
        size_mb = source.stat().st_size / 1e6
        made = time.perf_counter() - started
        print(f"dataset: {args.images} images, {size_mb:.0f} MB of YAML (made in {made:.1f} s)")
        ours = measure(OURS, source, args.parts)
        print("distml (yaml_rs parse, own emitter): " + ", ".join(f"{k} {v:.2f}" for k, v in ours.items()))
        if not args.skip_pyyaml:
            theirs = measure(PYYAML, source, args.parts)
            print("PyYAML C loader/dumper (images only): " + ", ".join(f"{k} {v:.2f}" for k, v in theirs.items()))
            print(f"speed-up: {theirs['total'] / ours['total']:.1f}x")


if __name__ == "__main__":
    main()
