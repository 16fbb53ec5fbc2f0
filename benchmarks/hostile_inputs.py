"""Hostile and careless inputs over the `distml` subcommands: count clean errors, tracebacks and leftovers.

Each case runs one command in-process (click's CliRunner) in a fresh work folder and is judged:

* clean: it ended as the case expects (a one-line ``error:`` and exit 1 or a usage error, exit 2,
  for input that must be refused; exit 0 for input that is fine) and broke no rule below;
* traceback: it ended in an exception other than SystemExit (the README promises one line);
* accepted: input that must be refused was taken silently (exit 0), or refused only later for
  another reason, without naming the bad parameter (a case's ``param``): the bad value itself got through;
* leftover: it left a hidden staging folder, replaced or removed a file it was not given to write,
  ran code stored in a model, or printed a password or a raw terminal escape.

    .venv/bin/python benchmarks/hostile_inputs.py [--category NAME] [--verbose]

Prints one table row per category: cases, clean, tracebacks, accepted, leftovers. Run it before and
after a change to the CLI (against old code: ``git worktree add /tmp/old <commit>`` and run this file
with ``PYTHONPATH=/tmp/old/src``). Cases that would allocate gigabytes or run for hours on old code
(``synth --size 20000``, ``synth --images 1000000000``) are left out; their bounds have unit tests.
The "expensive first" cases run a pipeline or train on old code (a minute or two).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from click.testing import CliRunner

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from distml.cli import main


@dataclass
class Case:
    category: str
    name: str
    setup: Callable[[Path], list[str]]  # builds the inputs in the work folder, returns the CLI arguments
    refuse: bool = True  # the command must fail cleanly
    check: Callable[[Path, str], str | None] | None = None  # extra rule: a message when broken
    param: str | None = None  # a refusal must name this parameter (else the bad value got through)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# --- inputs ----------------------------------------------------------------------------------


def dataset(root: Path, name: str = "d", images: int = 6, **extra) -> Path:
    entries = [{"location": f"img/{i}.png", "label": "a"} for i in range(images)]
    path = root / f"{abs(hash(name))}.yml"
    path.write_text(yaml.safe_dump({"name": name, "classes": ["a", "b"], "images": entries, **extra}))
    return path


def shard(root: Path, name: str, metrics) -> Path:
    folder = root / name
    folder.mkdir()
    text = metrics if isinstance(metrics, str) else json.dumps(metrics)
    (folder / "metrics.json").write_text(text)
    return folder


GOOD_SHARD = {"task": "segmentation", "images": 4, "iou_sum": 2.0, "miou": 0.5, "split": "test"}


def model_folder(root: Path, name: str, info: dict | str | None = None) -> Path:
    from distml.training.model_folder import save_model_folder
    from distml.training.models import build_model

    folder = root / name
    save_model_folder(build_model("mlp", (8, 8, 1), 10), folder, architecture="mlp", task="classification",
                      input_shape=[8, 8, 1], classes=[str(c) for c in range(10)], metrics={}, onnx=False)  # fmt: skip
    if info is not None:
        (folder / "model.json").write_text(info if isinstance(info, str) else json.dumps(info))
    return folder


def lambda_hdf5_folder(root: Path) -> Path:
    import tf_keras

    folder = model_folder(root, "hostile")
    marker = root / "MARKER"
    code = eval(f"lambda x: (__import__('pathlib').Path({str(marker)!r}).write_text('ran'), x)[1]")
    inputs = tf_keras.Input((8, 8, 1), name="input")
    hidden = tf_keras.layers.Flatten()(tf_keras.layers.Lambda(code)(inputs))
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(10, activation="softmax")(hidden))
    model.save(str(folder / "model.keras"), save_format="h5")
    marker.unlink()
    return folder


def onnx_model_folder(root: Path, name: str) -> Path:
    from distml.training.model_folder import save_model_folder
    from distml.training.models import build_model

    folder = root / name
    save_model_folder(build_model("mlp", (8, 8, 1), 10), folder, architecture="mlp", task="classification",
                      input_shape=[8, 8, 1], classes=[str(c) for c in range(10)], metrics={"test_accuracy": 0.5},
                      onnx=True)  # fmt: skip
    return folder


def bomb_png(path: Path, side: int = 20000) -> Path:
    """A ~50 KB 1-bit PNG declaring side x side pixels (400 million: over twice PIL's limit), written row by row."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\0" * (1 + side // 8)
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


def bomb_dataset(root: Path) -> Path:
    """A classification part whose one test image is a decompression bomb, beside a digits model's ONNX."""
    (root / "img").mkdir()
    bomb_png(root / "img" / "0.png")
    path = root / "part.yml"
    images = [{"location": "img/0.png", "label": "1"}]
    content = {"name": "bomb", "classes": [str(c) for c in range(10)], "images": images, "split": {"test": [0]}}
    path.write_text(yaml.safe_dump(content))
    return path


def npz(root: Path, **arrays) -> Path:
    import numpy as np

    path = root / "d.npz"
    np.savez(path, **{"x_train": np.zeros((2, 4, 4), np.float32), "x_test": np.zeros((1, 4, 4), np.float32),
                      "y_test": np.array([1]), **arrays})  # fmt: skip
    return path


def npz_declaring_terabytes(root: Path) -> Path:
    import io
    import zipfile

    import numpy as np

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**6, 10**6)})
    path = root / "bomb.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x_train.npy", header.getvalue())
        for name, array in {"y_train": np.zeros(1), "x_test": np.zeros((1, 4, 4)), "y_test": np.zeros(1)}.items():
            buffer = io.BytesIO()
            np.save(buffer, array)
            archive.writestr(f"{name}.npy", buffer.getvalue())
    return path


RUNNING: dict[Path, subprocess.Popen] = {}


def concurrent_load(root: Path) -> list[str]:
    """A real `distml data load` writing root/out in the background; the case's command writes there too."""
    command = [sys.executable, "-c", "from distml.cli import main; main()", "data", "load", "synthetic:lesions",
               "--size", "32", "--images", "4000", "--out", str(root / "out")]  # fmt: skip
    RUNNING[root] = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not list(root.glob(".out.*")) and RUNNING[root].poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return ["data", "load", "synthetic:lesions", "--size", "32", "--images", "20", "--out", str(root / "out")]


def one_whole_result(root: Path, _output: str) -> str | None:
    """After both writers: one dataset, whole (the background one's 4000 images or the case's 20)."""
    RUNNING.pop(root).communicate(timeout=600)
    dataset = root / "out" / "dataset.yml"
    if not dataset.exists():
        return "no dataset.yml in the output"
    images = len(yaml.safe_load(dataset.read_text())["images"])
    files = sum(1 for p in (root / "out").rglob("*.png"))
    return None if images in (4000, 20) and files == 2 * images else f"mixed output: {images} images, {files} files"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- rules -----------------------------------------------------------------------------------


def no_marker(root: Path, _output: str) -> str | None:
    return "code stored in the model ran" if (root / "MARKER").exists() else None


def no_password(_root: Path, output: str) -> str | None:
    return "printed the password" if "s3cret" in output else None


def no_raw_escape(_root: Path, output: str) -> str | None:
    return "printed a raw terminal escape" if "\x1b" in output or "\x07" in output else None


def unchanged(*names: str) -> Callable[[Path, str], str | None]:
    """The files under ``names`` (relative to the work folder) must be as they were before the command."""

    def rule(root: Path, _output: str) -> str | None:
        before = BEFORE.get(root, {})
        for key, content in before.items():
            if key.split("/")[0] in names and snapshot(root).get(key) != content:
                return f"{key} was replaced or removed"
        return None

    return rule


BEFORE: dict[Path, dict[str, bytes]] = {}


def cases() -> list[Case]:
    c: list[Case] = []
    # security
    c.append(
        Case(
            "security",
            "average: HDF5 model.keras with a Lambda",
            lambda r: ["average", str(model_folder(r, "good")), str(lambda_hdf5_folder(r)), "--out", str(r / "avg")],
            check=no_marker,
        )
    )
    c.append(
        Case(
            "security",
            "upload: password in --host",
            lambda r: ["upload", "end_to_end", "--host", f"http://alice:s3cret@127.0.0.1:{closed_port()}"],
            check=no_password,
        )
    )
    c.append(
        Case(
            "security",
            "submit: password in a non-http --host",
            lambda r: ["submit", "end_to_end", "--host", "ftp://alice:s3cret@example"],
            check=no_password,
        )
    )
    c.append(
        Case(
            "security",
            "data info: escape sequence in the name",
            lambda r: ["data", "info", str(dataset(r, "x\x1b]0;pwned\x07\x1b[2J"))],
            refuse=False,
            check=no_raw_escape,
        )
    )
    # nothing lost
    c.append(
        Case(
            "nothing lost",
            "synth into an existing dataset",
            lambda r: (
                main(["data", "synth", "digits", "--images", "5", "--out", str(r / "ds")], standalone_mode=False),
                BEFORE.__setitem__(r, snapshot(r)),
                ["data", "synth", "digits", "--images", "7", "--seed", "3", "--out", str(r / "ds")],
            )[2],
            check=unchanged("ds"),
        )
    )
    c.append(
        Case(
            "nothing lost",
            "gather --out = a shard being gathered",
            lambda r: (
                shard(r, "a", GOOD_SHARD),
                shard(r, "b", GOOD_SHARD),
                BEFORE.__setitem__(r, snapshot(r)),
                ["gather", str(r / "a"), str(r / "b"), "--out", str(r / "b")],
            )[3],
            check=unchanged("a", "b"),
        )
    )
    c.append(
        Case(
            "nothing lost",
            "gather --out = another shard",
            lambda r: (
                shard(r, "a", GOOD_SHARD),
                shard(r, "b", GOOD_SHARD),
                BEFORE.__setitem__(r, snapshot(r)),
                ["gather", str(r / "a"), "--out", str(r / "b")],
            )[3],
            check=unchanged("a", "b"),
        )
    )
    c.append(
        Case(
            "nothing lost",
            "synth --out under a file",
            lambda r: (
                (r / "file").write_text("x"),
                ["data", "synth", "digits", "--images", "5", "--out", str(r / "file" / "o")],
            )[1],
        )
    )
    c.append(
        Case(
            "nothing lost",
            "synth --out name too long",
            lambda r: ["data", "synth", "digits", "--images", "5", "--out", str(r / ("n" * 300))],
        )
    )
    # bad input
    for label, info in [
        ("not JSON", "{oops"),
        ("a list", "[1]"),
        (
            "architecture a list",
            {
                "architecture": ["mlp"],
                "task": "classification",
                "input_shape": [8, 8, 1],
                "classes": list("0123456789"),
            },
        ),
        (
            "input_shape strings",
            {
                "architecture": "mlp",
                "task": "classification",
                "input_shape": ["8", 8, 1],
                "classes": list("0123456789"),
            },
        ),
    ]:
        c.append(
            Case(
                "bad input",
                f"average: model.json {label}",
                lambda r, info=info: [
                    "average",
                    str(model_folder(r, "g")),
                    str(model_folder(r, "b", info)),
                    "--out",
                    str(r / "avg"),
                ],
            )
        )
    c.append(
        Case(
            "bad input",
            "average: model.keras not a model",
            lambda r: (
                (model_folder(r, "b") / "model.keras").write_bytes(b"PK\x03\x04garbage"),
                ["average", str(model_folder(r, "g")), str(r / "b"), "--out", str(r / "avg")],
            )[1],
        )
    )
    for label, metrics in [
        ("not JSON", "{oops"),
        ("a list", "[]"),
        ("images a string", {**GOOD_SHARD, "images": "4"}),
        ("images negative", {**GOOD_SHARD, "images": -4, "iou_sum": -2.0}),
        ("iou_sum NaN", {**GOOD_SHARD, "iou_sum": float("nan")}),
    ]:
        c.append(
            Case(
                "bad input",
                f"gather: metrics.json {label}",
                lambda r, m=metrics: [
                    "gather",
                    str(shard(r, "a", GOOD_SHARD)),
                    str(shard(r, "b", m)),
                    "--out",
                    str(r / "out"),
                ],
            )
        )
    c.append(
        Case(
            "bad input",
            "synth --seed -1",
            lambda r: ["data", "synth", "digits", "--images", "5", "--seed", "-1", "--out", str(r / "o")],
        )
    )
    c.append(
        Case(
            "bad input",
            "load --seed -1",
            lambda r: ["data", "load", "synthetic:digits", "--images", "5", "--seed", "-1", "--out", str(r / "o")],
        )
    )
    c.append(
        Case(
            "bad input",
            "split: rich markup in the name",
            lambda r: ["data", "split", str(dataset(r, "[/]oops")), "--parts", "2", "--out", str(r / "p")],
            refuse=False,
        )
    )
    c.append(
        Case(
            "bad input",
            "info: rich markup in the name",
            lambda r: ["data", "info", str(dataset(r, "[bold]x[/bold][/]"))],
            refuse=False,
        )
    )
    # unbounded work / expensive before cheap
    c.append(
        Case(
            "bounds",
            "train --learning-rate nan",
            lambda r: [
                "train",
                "--model",
                "mlp",
                "--data",
                "sklearn:digits",
                "--learning-rate",
                "nan",
                "--out",
                str(r / "m"),
            ],
        )
    )
    c.append(
        Case(
            "bounds",
            "train --timeout inf",
            lambda r: [
                "train",
                "--model",
                "mlp",
                "--data",
                "sklearn:digits",
                "--timeout",
                "inf",
                "--epochs",
                "1",
                "--workers",
                "1",
                "--out",
                str(r / "m"),
            ],
        )
    )
    c.append(
        Case(
            "bounds",
            "train --out a non-empty folder",
            lambda r: (
                (r / "m").mkdir(),
                (r / "m" / "keep.txt").write_text("mine"),
                BEFORE.__setitem__(r, snapshot(r)),
                [
                    "train",
                    "--model",
                    "mlp",
                    "--data",
                    "sklearn:digits",
                    "--epochs",
                    "1",
                    "--workers",
                    "1",
                    "--out",
                    str(r / "m"),
                ],
            )[3],
            check=unchanged("m"),
        )
    )
    c.append(
        Case(
            "bounds",
            "infer --threads 100000",
            lambda r: [
                "infer",
                "--model",
                str(r / "none"),
                "--dataset",
                str(dataset(r)),
                "--threads",
                "100000",
                "--out",
                str(r / "o"),
            ],
        )
    )
    # hostile files (items 9, 10): corrupt models, decompression bombs, npz files that allocate from tiny input
    c.append(
        Case(
            "hostile files",
            "serve: model.onnx corrupt",
            lambda r: (
                (onnx_model_folder(r, "m") / "model.onnx").write_bytes(b"garbage"),
                ["serve", "--model", str(r / "m"), "--name", "m", "--port", str(closed_port())],
            )[1],
        )
    )
    c.append(
        Case(
            "hostile files",
            "select: the chosen model.onnx corrupt",
            lambda r: (
                (onnx_model_folder(r, "m") / "model.onnx").write_bytes(b"garbage"),
                ["select", str(r / "m"), "--out", str(r / "s")],
            )[1],
        )
    )
    c.append(Case("hostile files", "infer --backend ecvl: model.onnx corrupt", lambda r: (
        (r / "bad.onnx").write_bytes(b"garbage"),
        ["infer", "--backend", "ecvl", "--model", str(r / "bad.onnx"), "--dataset", str(bomb_dataset(r)),
         "--out", str(r / "o")])[1]))  # fmt: skip
    c.append(
        Case(
            "hostile files",
            "infer: a decompression-bomb image",
            lambda r: [
                "infer",
                "--model",
                str(onnx_model_folder(r, "m")),
                "--dataset",
                str(bomb_dataset(r)),
                "--out",
                str(r / "o"),
            ],
        )
    )
    c.append(
        Case(
            "hostile files",
            "load npz: one label of 5*10^6",
            lambda r: [
                "data",
                "load",
                f"npz:{npz(r, y_train=__import__('numpy').array([0, 5_000_000]))}",
                "--out",
                str(r / "o"),
            ],
        )
    )
    c.append(
        Case(
            "hostile files",
            "load npz: fractional labels",
            lambda r: [
                "data",
                "load",
                f"npz:{npz(r, y_train=__import__('numpy').array([0.5, 1.5]))}",
                "--out",
                str(r / "o"),
            ],
        )
    )
    c.append(
        Case(
            "hostile files",
            "load npz: a 2 KB file declaring 4 TB",
            lambda r: ["data", "load", f"npz:{npz_declaring_terabytes(r)}", "--out", str(r / "o")],
        )
    )
    # concurrent writers of one --out (item 9): the second fails cleanly or one wins whole, never a mix
    c.append(Case("concurrent", "data load while another data load writes --out", concurrent_load,
                  check=one_whole_result))  # fmt: skip
    # expensive work before cheap checks (item 11): refused at once, naming the parameter
    c.append(
        Case(
            "expensive first",
            "demo --parts 100 --images 10",
            lambda r: ["demo", "--parts", "100", "--images", "10", "--epochs", "1", "--out", str(r / "d")],
            param="--parts",
        )
    )
    c.append(Case("expensive first", "run distributed_inference num_parts=0", lambda r: [
        "run", "distributed_inference", "--local", "--param", "num_parts=0", "--param", "quick_model_epochs=1",
        "--param", "images=20", "--out", str(r / "runs")], param="num_parts"))  # fmt: skip
    c.append(Case("expensive first", "submit end_to_end service_name=Bad_Name", lambda r: [
        "submit", "end_to_end", "--host", f"http://127.0.0.1:{closed_port()}", "--param", "service_name=Bad_Name"],
        param="service_name"))  # fmt: skip
    c.append(Case("expensive first", "submit train_select_deploy min_replicas=3 > max_replicas=1", lambda r: [
        "submit", "train_select_deploy", "--host", f"http://127.0.0.1:{closed_port()}", "--param", "min_replicas=3"],
        param="min_replicas"))  # fmt: skip
    c.append(
        Case(
            "expensive first",
            "submit end_to_end gpus=two",
            lambda r: ["submit", "end_to_end", "--host", f"http://127.0.0.1:{closed_port()}", "--param", "gpus=two"],
            param="gpus",
        )
    )
    c.append(
        Case(
            "expensive first",
            "train unet-small --image-size 30",
            lambda r: [*K8S_TRAIN, "--model", "unet-small", "--image-size", "30", "--out", str(r / "m")],
            param="image_size",
        )
    )
    # bad values accepted silently (item 12)
    for option, value in [("--workers", "100000"), ("--epochs", "1000000000"), ("--batch-size", "1000000000"),
                          ("--learning-rate", "1e6"), ("--image-size", "100000"), ("--gpus-per-worker", "100000"),
                          ("--namespace", "Team_A")]:  # fmt: skip
        c.append(
            Case(
                "silent",
                f"train {option} {value}",
                lambda r, o=option, v=value: [*K8S_TRAIN, "--model", "mlp", o, v, "--out", str(r / "m")],
                param=option,
            )
        )
    for option, value, param in [("--namespace", "Team_A", "namespace"), ("--cpu", "lots", "cpu"),
                                 ("--memory", "-2Gi", "memory")]:  # fmt: skip
        c.append(
            Case(
                "silent",
                f"deploy {option} {value}",
                lambda r, o=option, v=value: [
                    "deploy",
                    "--dry-run",
                    "--name",
                    "ok",
                    "--storage-uri",
                    "pvc://models/m",
                    o,
                    v,
                ],
                param=param,
            )
        )
    c.append(
        Case("silent", "serve --name ''", lambda r: ["serve", "--model", str(r / "none"), "--name", ""], param="--name")
    )
    c.append(
        Case(
            "silent",
            "serve --host '' (every interface)",
            lambda r: ["serve", "--model", str(r / "none"), "--name", "m", "--host", ""],
            param="--host",
        )
    )
    c.append(
        Case(
            "silent",
            "deploy --target local --name Bad_Name",
            lambda r: ["deploy", "--target", "local", "--model", str(r / "none"), "--name", "Bad_Name"],
            param="--name",
        )
    )
    for option, value in [("--timeout", "nan"), ("--poll", "inf"), ("--experiment", "")]:
        c.append(
            Case(
                "silent",
                f"submit {option} {value!r}",
                lambda r, o=option, v=value: [
                    "submit",
                    "end_to_end",
                    "--host",
                    f"http://127.0.0.1:{closed_port()}",
                    o,
                    v,
                ],
                param=option,
            )
        )
    c.append(
        Case(
            "silent",
            "upload --version ''",
            lambda r: ["upload", "end_to_end", "--host", f"http://127.0.0.1:{closed_port()}", "--version", ""],
            param="--version",
        )
    )
    c.append(Case("silent", "gather --report-images 10^8", lambda r: [
        "gather", str(shard(r, "a", GOOD_SHARD)), "--report-images", "100000000", "--out", str(r / "o")],
        param="--report-images"))  # fmt: skip
    return c


#: `distml train` on the kubernetes launcher as a dry run: prints the TFJob, calls no API, trains nothing.
K8S_TRAIN = ["train", "--launcher", "kubernetes", "--dry-run", "--data", "sklearn:digits"]


def run_case(case: Case, root: Path) -> tuple[str, str]:
    """(verdict, detail) of one case in the empty folder ``root``."""
    try:
        args = case.setup(root)
    except Exception as err:  # the set-up itself, not the command under test
        return "setup failed", repr(err)
    BEFORE.setdefault(root, snapshot(root))
    result = CliRunner().invoke(main, args)
    output = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return "traceback", f"{type(result.exception).__name__}: {result.exception}"
    broken = case.check(root, output) if case.check else None
    hidden = [p.name for p in root.rglob(".*")]
    if broken or hidden:
        return "leftover", broken or f"hidden {hidden}"
    if case.refuse and result.exit_code == 0:
        return "accepted", output.strip().splitlines()[-1:] and output.strip().splitlines()[-1]
    if case.refuse and case.param and case.param not in output:
        return "accepted", f"refused without naming {case.param}: {output.strip()[-160:]}"
    if not case.refuse and result.exit_code != 0:
        return "refused", output.strip()
    if case.refuse and not (result.exit_code == 2 or output.startswith("error: ") or "\nerror: " in output):
        return "traceback", output.strip()[-200:]
    return "clean", output.strip().splitlines()[-1] if output.strip() else ""


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--category")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    table: dict[str, Counter] = {}
    for case in cases():
        if args.category and case.category != args.category:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            verdict, detail = run_case(case, Path(tmp))
        table.setdefault(case.category, Counter())[verdict] += 1
        if args.verbose or verdict != "clean":
            print(f"  [{verdict}] {case.category}: {case.name}: {str(detail)[:160]!r}")
    print("| category | cases | clean | tracebacks | accepted | leftovers | other |")
    print("|---|---|---|---|---|---|---|")
    totals: Counter = Counter()
    for category, counts in table.items():
        totals.update(counts)
        other = sum(counts.values()) - sum(counts[k] for k in ("clean", "traceback", "accepted", "leftover"))
        print(f"| {category} | {sum(counts.values())} | {counts['clean']} | {counts['traceback']} | "
              f"{counts['accepted']} | {counts['leftover']} | {other} |")  # fmt: skip
    other = sum(totals.values()) - sum(totals[k] for k in ("clean", "traceback", "accepted", "leftover"))
    print(f"| all | {sum(totals.values())} | {totals['clean']} | {totals['traceback']} | {totals['accepted']} | "
          f"{totals['leftover']} | {other} |")  # fmt: skip


if __name__ == "__main__":
    main_()
