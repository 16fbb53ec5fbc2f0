"""Hostile and careless inputs over the `distml` subcommands: count clean errors, tracebacks and leftovers.

Each case runs one command in-process (click's CliRunner) in a fresh work folder and is judged:

* clean: it ended as the case expects (a one-line ``error:`` and exit 1 or a usage error, exit 2,
  for input that must be refused; exit 0 for input that is fine) and broke no rule below;
* traceback: it ended in an exception other than SystemExit (the README promises one line);
* accepted: input that must be refused was taken silently (exit 0);
* leftover: it left a hidden staging folder, replaced or removed a file it was not given to write,
  ran code stored in a model, or printed a password or a raw terminal escape.

    .venv/bin/python benchmarks/hostile_inputs.py [--category NAME] [--verbose]

Prints one table row per category: cases, clean, tracebacks, accepted, leftovers. Run it before and
after a change to the CLI (``git stash`` the change to see before). Cases that would allocate
gigabytes on old code (``synth --size 20000``) are left out; their bounds have unit tests.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
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
    c.append(Case("security", "average: HDF5 model.keras with a Lambda", lambda r: [
        "average", str(model_folder(r, "good")), str(lambda_hdf5_folder(r)), "--out", str(r / "avg")], check=no_marker))
    c.append(Case("security", "upload: password in --host", lambda r: [
        "upload", "end_to_end", "--host", f"http://alice:s3cret@127.0.0.1:{closed_port()}"], check=no_password))
    c.append(Case("security", "submit: password in a non-http --host", lambda r: [
        "submit", "end_to_end", "--host", "ftp://alice:s3cret@example"], check=no_password))
    c.append(Case("security", "data info: escape sequence in the name", lambda r: [
        "data", "info", str(dataset(r, "x\x1b]0;pwned\x07\x1b[2J"))], refuse=False, check=no_raw_escape))
    # nothing lost
    c.append(Case("nothing lost", "synth into an existing dataset", lambda r: (
        main(["data", "synth", "digits", "--images", "5", "--out", str(r / "ds")], standalone_mode=False),
        BEFORE.__setitem__(r, snapshot(r)),
        ["data", "synth", "digits", "--images", "7", "--seed", "3", "--out", str(r / "ds")])[2], check=unchanged("ds")))
    c.append(Case("nothing lost", "gather --out = a shard being gathered", lambda r: (
        shard(r, "a", GOOD_SHARD), shard(r, "b", GOOD_SHARD), BEFORE.__setitem__(r, snapshot(r)),
        ["gather", str(r / "a"), str(r / "b"), "--out", str(r / "b")])[3], check=unchanged("a", "b")))
    c.append(Case("nothing lost", "gather --out = another shard", lambda r: (
        shard(r, "a", GOOD_SHARD), shard(r, "b", GOOD_SHARD), BEFORE.__setitem__(r, snapshot(r)),
        ["gather", str(r / "a"), "--out", str(r / "b")])[3], check=unchanged("a", "b")))
    c.append(Case("nothing lost", "synth --out under a file", lambda r: (
        (r / "file").write_text("x"), ["data", "synth", "digits", "--images", "5", "--out", str(r / "file" / "o")])[1]))
    c.append(Case("nothing lost", "synth --out name too long", lambda r: [
        "data", "synth", "digits", "--images", "5", "--out", str(r / ("n" * 300))]))
    # bad input
    for label, info in [("not JSON", "{oops"), ("a list", "[1]"), ("architecture a list", {
        "architecture": ["mlp"], "task": "classification", "input_shape": [8, 8, 1], "classes": list("0123456789")}),
        ("input_shape strings", {"architecture": "mlp", "task": "classification", "input_shape": ["8", 8, 1],
                                 "classes": list("0123456789")})]:
        c.append(Case("bad input", f"average: model.json {label}", lambda r, info=info: [
            "average", str(model_folder(r, "g")), str(model_folder(r, "b", info)), "--out", str(r / "avg")]))
    c.append(Case("bad input", "average: model.keras not a model", lambda r: (
        (model_folder(r, "b") / "model.keras").write_bytes(b"PK\x03\x04garbage"),
        ["average", str(model_folder(r, "g")), str(r / "b"), "--out", str(r / "avg")])[1]))
    for label, metrics in [("not JSON", "{oops"), ("a list", "[]"), ("images a string", {**GOOD_SHARD, "images": "4"}),
                           ("images negative", {**GOOD_SHARD, "images": -4, "iou_sum": -2.0}),
                           ("iou_sum NaN", {**GOOD_SHARD, "iou_sum": float("nan")})]:
        c.append(Case("bad input", f"gather: metrics.json {label}", lambda r, m=metrics: [
            "gather", str(shard(r, "a", GOOD_SHARD)), str(shard(r, "b", m)), "--out", str(r / "out")]))
    c.append(Case("bad input", "synth --seed -1", lambda r: [
        "data", "synth", "digits", "--images", "5", "--seed", "-1", "--out", str(r / "o")]))
    c.append(Case("bad input", "load --seed -1", lambda r: [
        "data", "load", "synthetic:digits", "--images", "5", "--seed", "-1", "--out", str(r / "o")]))
    c.append(Case("bad input", "split: rich markup in the name", lambda r: [
        "data", "split", str(dataset(r, "[/]oops")), "--parts", "2", "--out", str(r / "p")], refuse=False))
    c.append(Case("bad input", "info: rich markup in the name", lambda r: [
        "data", "info", str(dataset(r, "[bold]x[/bold][/]"))], refuse=False))
    # unbounded work / expensive before cheap
    c.append(Case("bounds", "train --learning-rate nan", lambda r: [
        "train", "--model", "mlp", "--data", "sklearn:digits", "--learning-rate", "nan", "--out", str(r / "m")]))
    c.append(Case("bounds", "train --timeout inf", lambda r: [
        "train", "--model", "mlp", "--data", "sklearn:digits", "--timeout", "inf", "--epochs", "1",
        "--workers", "1", "--out", str(r / "m")]))
    c.append(Case("bounds", "train --out a non-empty folder", lambda r: (
        (r / "m").mkdir(), (r / "m" / "keep.txt").write_text("mine"), BEFORE.__setitem__(r, snapshot(r)),
        ["train", "--model", "mlp", "--data", "sklearn:digits", "--epochs", "1", "--workers", "1",
         "--out", str(r / "m")])[3], check=unchanged("m")))
    c.append(Case("bounds", "infer --threads 100000", lambda r: [
        "infer", "--model", str(r / "none"), "--dataset", str(dataset(r)), "--threads", "100000",
        "--out", str(r / "o")]))
    return c


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
