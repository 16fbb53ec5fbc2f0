"""`distml data split` of a 1,000,000-image DTD into 64 parts, against the yaml_rs floor.

The floor is what the library we parse with does for the same job, with no validation and no
split rules: ``yaml_rs.loads`` of the file, then ``yaml_rs.dumps`` of 64 parts (the images cut by
position, each part with a split section) written to disk. Ours is the whole command
(``distml data split``: read and validate, split, write the parts and parts.json), run in
process with click's ``main``. Target (issue 15): ours <= 1.3x the floor, peak <= 750 MiB.

Every measurement runs in a fresh process (peak memory is ru_maxrss, its own), and the two are
interleaved round after round, so both see the same load on a shared machine; the ratios are
per round. Run by hand:

    .venv/bin/python benchmarks/split.py [--images 1000000] [--parts 64] [--rounds 3] [--before DIR]

``--before DIR`` times a checkout of an older commit too (``git worktree add DIR COMMIT``), in the
same rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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
t0 = time.perf_counter()
from distml.cli import main
source, parts, out = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    main(["data", "split", source, "--parts", parts, "--out", out], standalone_mode=False)
finally:
    t1 = time.perf_counter()
print(json.dumps({"seconds": t1 - t0, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

FLOOR = """
import json, resource, sys, time
t0 = time.perf_counter()
import yaml_rs
source, parts, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(source, encoding="utf-8") as f:
    document = yaml_rs.loads(f.read(), parse_datetime=False)
t1 = time.perf_counter()
images = document["images"]
size = len(images) // parts
for p in range(parts):
    chunk = images[p * size:] if p == parts - 1 else images[p * size:(p + 1) * size]
    n, a, b = len(chunk), len(chunk) * 7 // 10, len(chunk) * 8 // 10
    part = {"name": f"p{p}", "description": "d", "classes": [], "images": chunk,
            "split": {"training": list(range(a)), "validation": list(range(a, b)), "test": list(range(b, n))}}
    with open(f"{out}/part-{p:03d}.yml", "w", encoding="utf-8") as f:
        f.write(yaml_rs.dumps(part))
t2 = time.perf_counter()
print(json.dumps({"seconds": t2 - t0, "load": t1 - t0, "dump": t2 - t1,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(script: str, source: Path, parts: int, src: Path | None = None) -> dict:
    """One run of ``script`` in a fresh process (``src``: import distml from that source folder)."""
    env = {**os.environ, "PYTHONPATH": str(src)} if src else None
    with tempfile.TemporaryDirectory() as workdir:
        out = Path(workdir) / "parts"
        out.mkdir()
        done = subprocess.run(
            [sys.executable, "-c", script, str(source), str(parts), str(out)], capture_output=True, text=True, env=env
        )
    if done.returncode:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--parts", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--before", type=Path, default=None, help="Also time the split of this checkout's src/ (an older commit)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        source = Path(workdir) / "big.yml"
        started = time.perf_counter()
        make_dataset(source, args.images)
        print(f"dataset: {args.images} images, {source.stat().st_size / 1e6:.0f} MB of YAML "
              f"(made in {time.perf_counter() - started:.1f} s); {args.parts} parts")  # fmt: skip
        ratios: list[float] = []
        before_ratios: list[float] = []
        for r in range(args.rounds):
            floor = measure(FLOOR, source, args.parts)
            ours = measure(OURS, source, args.parts)
            ratios.append(ours["seconds"] / floor["seconds"])
            line = (f"round {r + 1}: distml split {ours['seconds']:.2f} s, {ours['peak_mib']:.0f} MiB | yaml_rs floor "
                    f"{floor['seconds']:.2f} s (load {floor['load']:.2f}, dump {floor['dump']:.2f}), "
                    f"{floor['peak_mib']:.0f} MiB | ratio {ratios[-1]:.2f}")  # fmt: skip
            if args.before:
                before = measure(OURS, source, args.parts, args.before / "src")
                before_ratios.append(before["seconds"] / floor["seconds"])
                line += (
                    f" | before {before['seconds']:.2f} s, {before['peak_mib']:.0f} MiB, ratio {before_ratios[-1]:.2f}"
                )
            print(line)
        for name, values in (("distml/floor", ratios), ("before/floor", before_ratios)):
            if values:
                print(f"ratio {name}: median {statistics.median(values):.2f}, min {min(values):.2f}, "
                      f"max {max(values):.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
