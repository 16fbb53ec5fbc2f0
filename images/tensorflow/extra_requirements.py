"""Requirements of setup.cfg's extras for the GPU image, minus what its base already provides.

The base image's GPU TensorFlow and the ``tf`` extra's tensorflow-cpu install the same
``tensorflow`` module: installing both would overwrite the GPU build, so tensorflow-cpu is
dropped here. ``--onnxruntime onnxruntime-gpu`` swaps the ONNX backend to its CUDA build
(same version range). Run at image build time: ``python3 extra_requirements.py setup.cfg tf onnx cluster``.
"""

from __future__ import annotations

import argparse
import configparser
import re
from pathlib import Path

PROVIDED_BY_BASE = {"tensorflow-cpu", "tensorflow"}


def extra_requirements(setup_cfg: Path, extras: list[str], onnxruntime: str = "onnxruntime") -> list[str]:
    """The requirement lines of EXTRAS, in order, without duplicates or what the base provides."""
    config = configparser.ConfigParser()
    config.read(setup_cfg)
    declared = config["options.extras_require"]
    requirements: list[str] = []
    for extra in extras:
        for line in declared[extra].splitlines():
            requirement = line.strip()
            name = re.split(r"[<>=!~ \[;]", requirement, maxsplit=1)[0].lower()
            if not requirement or name in PROVIDED_BY_BASE:
                continue
            if name == "onnxruntime":
                requirement = onnxruntime + requirement[len(name) :]
            if requirement not in requirements:
                requirements.append(requirement)
    return requirements


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("setup_cfg", type=Path)
    parser.add_argument("extras", nargs="+")
    parser.add_argument("--onnxruntime", default="onnxruntime", choices=["onnxruntime", "onnxruntime-gpu"])
    args = parser.parse_args()
    print("\n".join(extra_requirements(args.setup_cfg, args.extras, args.onnxruntime)))


if __name__ == "__main__":
    main()
