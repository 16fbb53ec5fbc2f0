"""`distml demo` (end_to_end on KFP's local runner): the run's wall time and its train stage, round by round.

Each round runs the demo of this checkout and, with ``--before DIR``, of an older checkout's
src/ (``git worktree add DIR COMMIT``), one after the other, so both see the same load on a
shared machine; the ratios are per round. Target (issue 15): end_to_end <= 30 s on 2 cores.

    .venv/bin/python benchmarks/demo_stages.py [--rounds 2] [--before DIR] [demo options, e.g. --epochs 10]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

_RUN = re.compile(r"end_to_end SUCCEEDED in ([0-9.]+) s")
_TASK = re.compile(r"\]\s+([a-z-]+): SUCCEEDED in ([0-9.]+)s")


def demo(extra: list[str], src: Path | None) -> dict[str, float]:
    """One demo run in a fresh folder: {"run": seconds, "<task>": longest seconds of that task}."""
    env = {**os.environ, "PYTHONPATH": str(src)} if src else None
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run(
            [str(Path(sys.executable).parent / "distml"), "demo", "--out", out, *extra],
            capture_output=True,
            text=True,
            env=env,
        )
    text = done.stdout + done.stderr
    run = _RUN.search(text)
    if done.returncode or run is None:
        raise SystemExit(text[-3000:])
    result = {"run": float(run.group(1))}
    for task, seconds in _TASK.findall(text):
        result[task] = max(result.get(task, 0.0), float(seconds))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--before", type=Path, default=None, help="Also run the demo of this checkout's src/")
    args, extra = parser.parse_known_args()
    versions = {"distml": None}
    if args.before:
        versions["before"] = args.before / "src"
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in versions}
    for r in range(args.rounds):
        for name, src in versions.items():
            result = demo(extra, src)
            runs[name].append(result)
            print(f"round {r + 1} {name:<7}: run {result['run']:.1f} s, train {result.get('train', 0):.1f} s, "
                  f"deploy {result.get('deploy-kserve', 0):.1f} s", flush=True)  # fmt: skip
    for name, results in runs.items():
        print(f"{name:<7}: run median {statistics.median(r['run'] for r in results):.1f} s, train median "
              f"{statistics.median(r.get('train', 0) for r in results):.1f} s")  # fmt: skip
    if args.before:
        ratios = [new["run"] / old["run"] for new, old in zip(runs["distml"], runs["before"], strict=True)]
        print(f"run distml/before per round: {', '.join(f'{x:.2f}' for x in ratios)}")


if __name__ == "__main__":
    main()
