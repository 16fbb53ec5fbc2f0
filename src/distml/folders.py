"""The folder contracts: what each artifact folder holds, read and written in one place.

Every step hands the next one a folder (a KFP artifact, or a path on a laptop). This module
names their files and keys, reads them and writes them; the steps call it and never open these
files themselves. Modelled on Google Cloud Pipeline Components' ``types/artifact_types.py``: one
definition per artifact type, apart from the steps that create and consume it.

==================  ========================================================  ==================
folder              files (read and written here in bold)                     written by
==================  ========================================================  ==================
data folder         **metadata.json** (ArtifactInfo), dataset.yml + images    load_data
                    or data.npz
shards folder       shard-000-of-004/ ..., each a data folder                 shard_data
parts folder        **parts.json** (PartsManifest), part-000-<name>.yml ...   split_dataset
Model folder        **model.json** (checked), **metrics.json** (training),    train, select,
                    model/1/, model.keras, model.onnx, ...                    average
shard folder        **metrics.json** (one shard's counts, checked), PNGs      infer_shard
gathered folder     **metrics.json** (with ``shards``), report.html           gather_metrics
==================  ========================================================  ==================

One policy for reading (``JsonFile.read``): a missing file is "not a <kind of folder> (no
<file>)" naming the folder; a file that cannot be read, is not JSON, or is not a JSON object
names the file; both say how to get a proper folder. Every JSON file is written through one
atomic writer (``write_json``: distml.staging.staged_file), so a reader never sees half a file.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from distml.errors import DatasetError, DistmlError
from distml.staging import write_text_atomic

METADATA_FILE = "metadata.json"
MANIFEST_FILE = "parts.json"
METRICS_FILE = "metrics.json"
MODEL_INFO_FILE = "model.json"
REPORT_FILE = "report.html"
#: model.json key: why there is no model-eddl.onnx (what EDDL cannot import), or null when there is one.
EDDL_REFUSED_KEY = "eddl_onnx_refused"
#: Largest side and channel count model.json may declare: bounds what a forged file makes us allocate.
MAX_INPUT_SIDE = 8192
MAX_CLASSES = 100_000


@dataclass(frozen=True)
class JsonFile:
    """A JSON file of a folder contract: its name, the folder that holds it, and what to do when it is bad."""

    name: str
    folder_kind: str
    remedy: str
    error: type[DistmlError] = DistmlError

    def path(self, folder: str | os.PathLike[str]) -> Path:
        return Path(folder) / self.name

    def exists(self, folder: str | os.PathLike[str]) -> bool:
        return self.path(folder).is_file()

    def read(self, folder: str | os.PathLike[str]) -> dict[str, Any]:
        """The file's JSON object, or this contract's error naming the folder (missing) or the file (malformed)."""
        path = self.path(folder)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as err:
            raise self.error(f"not a {self.folder_kind} (no {self.name})", where=str(folder), hint=self.remedy) from err
        except (OSError, UnicodeDecodeError) as err:
            reason = err.strerror if isinstance(err, OSError) else "not UTF-8 text"
            raise self.error(f"cannot read {self.name}: {reason}", where=str(path), hint=self.remedy) from err
        try:
            content = json.loads(text)
        except ValueError as err:
            raise self.error(f"cannot read {self.name} as JSON ({err})", where=str(path), hint=self.remedy) from err
        if not isinstance(content, dict):
            raise self.error(
                f"must be a JSON object, not {type(content).__name__}",
                where=f"{path}: (top level)",
                hint=self.remedy,
            )
        return content

    def write(self, folder: str | os.PathLike[str], content: dict[str, Any]) -> Path:
        return write_json(self.path(folder), content)


def write_json(path: str | os.PathLike[str], content: Any) -> Path:
    """``content`` as indented JSON, written atomically (the one writer of every JSON file of a contract)."""
    return write_text_atomic(path, json.dumps(content, indent=2) + "\n")


def entry_inside(folder: str | os.PathLike[str], entry: object, *, where: str) -> Path:
    """``folder / entry`` for a file entry of metadata.json or parts.json, refused if it leaves the folder."""
    base = Path(folder)
    refusal = None
    if not isinstance(entry, str) or not entry or os.path.isabs(entry):
        refusal = f"file entry {entry!r} is not a path inside the folder"
    else:
        real_base, real = os.path.realpath(base), os.path.realpath(base / entry)
        if real == real_base or not is_inside(real, [real_base]):
            refusal = f"file entry {entry!r} points outside its folder"
    if refusal:
        raise DatasetError(
            refusal,
            where=where,
            hint="Entries name files beside the manifest; this folder was not written by distml or was altered.",
        )
    return base / str(entry)


def is_inside(path: str, roots: list[str]) -> bool:
    """``path`` is one of ``roots`` or below one (by name: resolve symlinks first where that matters)."""
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


# --------------------------------------------------------------------------- data folder

DATA_METADATA = JsonFile(
    METADATA_FILE,
    "loaded-data folder",
    "Create it with `distml data load SOURCE --out DIR` or the load_data component.",
    DatasetError,
)


@dataclass
class ArtifactInfo:
    """The content of ``metadata.json``: what a loaded-data folder holds."""

    format: str  # "dtd" or "npz"
    file: str  # dataset.yml or data.npz, relative to the folder
    source: str
    name: str
    task: str  # "classification" or "segmentation"
    classes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    #: Folders outside this one that the dataset's locations may point into (allowed at load time;
    #: relative ones relative to this folder: distml.data.trust).
    roots: list[str] = field(default_factory=list)


def read_data_info(folder: str | os.PathLike[str]) -> ArtifactInfo:
    """A data folder's metadata.json (its ``file`` must lie inside the folder)."""
    content = DATA_METADATA.read(folder)
    path = DATA_METADATA.path(folder)
    try:
        info = ArtifactInfo(**content)
    except TypeError as err:
        raise DatasetError(
            f"not the metadata of a loaded-data folder ({err})", where=str(path), hint=DATA_METADATA.remedy
        ) from err
    checked_roots(content, DATA_METADATA, folder)
    entry_inside(folder, info.file, where=f"{path}: file")
    return info


def write_data_info(folder: str | os.PathLike[str], info: ArtifactInfo) -> Path:
    return DATA_METADATA.write(folder, asdict(info))


def checked_roots(content: dict[str, Any], contract: JsonFile, folder: str | os.PathLike[str]) -> list[str]:
    """The ``roots`` of a metadata.json or parts.json as written: a list of folder paths."""
    roots = content.get("roots", [])
    if not isinstance(roots, list) or not all(isinstance(r, str) and r for r in roots):
        raise DatasetError(
            "`roots` must be a list of folder paths", where=f"{contract.path(folder)}: roots", hint=contract.remedy
        )
    return roots


# --------------------------------------------------------------------------- parts folder

PARTS_MANIFEST = JsonFile(
    MANIFEST_FILE,
    "parts folder",
    "Split a dataset into it with `distml data split` or the split_dataset component.",
    DatasetError,
)


@dataclass(frozen=True)
class PartInfo:
    """What a written part holds: its file and how many images of each split."""

    index: int
    file: str
    images: int
    splits: dict[str, int]


@dataclass(frozen=True)
class PartsManifest:
    """parts.json: the dataset split, its parts in order, and the roots their locations were checked against
    (relative ones relative to the parts folder: distml.data.trust)."""

    dataset: str
    parts: list[PartInfo]
    roots: list[str]


def read_parts_manifest(folder: str | os.PathLike[str]) -> PartsManifest:
    """A parts folder's parts.json; part entries that leave the folder are refused. ``roots`` as written."""
    content = PARTS_MANIFEST.read(folder)
    path = PARTS_MANIFEST.path(folder)
    entries = content.get("parts")
    if not isinstance(entries, list):
        raise DatasetError("`parts` must be a list of parts", where=f"{path}: parts", hint=PARTS_MANIFEST.remedy)
    parts = []
    for k, entry in enumerate(entries):
        try:
            info = PartInfo(**entry)
        except TypeError as err:
            raise DatasetError(f"parts[{k}] is not a part entry", where=str(path), hint=PARTS_MANIFEST.remedy) from err
        entry_inside(folder, info.file, where=f"{path}: parts[{k}].file")
        parts.append(info)
    dataset = content.get("dataset")
    if not isinstance(dataset, str):
        raise DatasetError(
            f"`dataset` is {dataset!r}, not the name of the split dataset",
            where=f"{path}: dataset",
            hint=PARTS_MANIFEST.remedy,
        )
    return PartsManifest(dataset=dataset, parts=parts, roots=checked_roots(content, PARTS_MANIFEST, folder))


def write_parts_manifest(folder: str | os.PathLike[str], manifest: PartsManifest) -> Path:
    return PARTS_MANIFEST.write(folder, asdict(manifest))


# --------------------------------------------------------------------------- Model folder

_MODEL_REMEDY = "Use the output folder of training, selection or averaging (`distml train`, `select`, `average`)."
MODEL_INFO = JsonFile(MODEL_INFO_FILE, "model folder", _MODEL_REMEDY)
MODEL_METRICS = JsonFile(METRICS_FILE, "model folder", _MODEL_REMEDY)


def read_model_info(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """A Model folder's model.json, checked field by field, or an error naming the folder and field."""
    info = MODEL_INFO.read(folder)
    _check_model_info(info, str(MODEL_INFO.path(folder)))
    return info


def write_model_info(folder: str | os.PathLike[str], info: dict[str, Any]) -> Path:
    return MODEL_INFO.write(folder, info)


def read_model_metrics(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """A Model folder's metrics.json: training's metrics (workers, global_batch_size, epochs, test_*)."""
    return MODEL_METRICS.read(folder)


def write_model_metrics(folder: str | os.PathLike[str], metrics: dict[str, Any]) -> Path:
    return MODEL_METRICS.write(folder, metrics)


def _check_model_info(info: dict[str, Any], where: str) -> None:
    """model.json names one of our architectures with a task, input shape and classes it can build."""
    from distml.training.models import ARCHITECTURES, task_of

    def refuse(field: str, what: str) -> DistmlError:
        return DistmlError(what, where=f"{where}: {field}", hint="Re-export the model with distml.")

    architecture = info.get("architecture")
    if architecture not in ARCHITECTURES:
        raise refuse("architecture", f"{architecture!r} is not one of {', '.join(ARCHITECTURES)}")
    if info.get("task") != task_of(architecture):
        raise refuse("task", f"{info.get('task')!r}; {architecture} is a {task_of(architecture)} model")
    shape = info.get("input_shape")
    if (
        not isinstance(shape, list)
        or len(shape) != 3
        or not all(type(n) is int and 1 <= n <= MAX_INPUT_SIDE for n in shape)
        or math.prod(shape) > MAX_INPUT_SIDE * MAX_INPUT_SIDE
    ):
        raise refuse("input_shape", f"{shape!r} is not [height, width, channels] of 1 to {MAX_INPUT_SIDE} each")
    classes = info.get("classes")
    fewest = 1 if info["task"] == "classification" else 0  # a segmenter's one mask channel has no class list
    if not isinstance(classes, list) or not fewest <= len(classes) <= MAX_CLASSES:
        raise refuse("classes", f"must be a list of {fewest} to {MAX_CLASSES} class names")
    if not all(isinstance(name, str) for name in classes):
        raise refuse("classes", "must hold strings only")


# --------------------------------------------------------------------------- shard folder

SHARD_METRICS = JsonFile(
    METRICS_FILE,
    "finished shard folder",
    "Re-run the inference of this part (`distml infer`, infer_shard), or leave the folder out.",
)


def read_shard_metrics(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """A shard folder's metrics.json, its counts checked: what gathering adds up."""
    metrics = SHARD_METRICS.read(folder)
    _check_counts(metrics, str(SHARD_METRICS.path(folder)))
    return metrics


def write_shard_metrics(folder: str | os.PathLike[str], metrics: dict[str, Any]) -> Path:
    return SHARD_METRICS.write(folder, metrics)


def _check_counts(metrics: dict[str, Any], where: str) -> None:
    """Counts are non-negative whole numbers, sums finite and within their counts."""
    hint = "Re-run the inference of this part: this file was not written by `distml infer`."
    for key in ("images", "correct"):
        value = metrics.get(key, 0)
        if type(value) is not int or value < 0:
            raise DistmlError(f"{key} is {value!r}, not a count", where=f"{where}: {key}", hint=hint)
    iou_sum = metrics.get("iou_sum", 0.0)
    is_number = isinstance(iou_sum, int | float) and not isinstance(iou_sum, bool)
    if not is_number or not 0 <= iou_sum <= metrics.get("images", 0):  # NaN fails the comparison too
        raise DistmlError(f"iou_sum is {iou_sum!r}, not 0 to images", where=f"{where}: iou_sum", hint=hint)
    matrix = metrics.get("confusion_matrix", [])
    if not isinstance(matrix, list) or not all(
        isinstance(row, list) and all(type(n) is int and n >= 0 for n in row) for row in matrix
    ):
        raise DistmlError("confusion_matrix must be rows of counts", where=f"{where}: confusion_matrix", hint=hint)


# --------------------------------------------------------------------------- gathered folder

GATHERED_METRICS = JsonFile(
    METRICS_FILE,
    "gathered folder",
    "Gather the shards with `distml gather` or the gather_metrics component.",
)


def read_gathered_metrics(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """A gathered folder's metrics.json: the whole split's metrics and ``shards``, one entry per shard."""
    metrics = GATHERED_METRICS.read(folder)
    if not isinstance(metrics.get("shards"), list):
        raise DistmlError(
            "has no `shards` list: a shard's or a model's metrics, not gathered ones",
            where=f"{GATHERED_METRICS.path(folder)}: shards",
            hint=GATHERED_METRICS.remedy,
        )
    return metrics


def write_gathered_metrics(folder: str | os.PathLike[str], metrics: dict[str, Any]) -> Path:
    return GATHERED_METRICS.write(folder, metrics)


def is_gathered_folder(folder: str | os.PathLike[str]) -> bool:
    """An earlier gather's result: only metrics.json and report.html, the metrics listing its shards.

    A shard folder (metrics.json without ``shards``) is never taken for one, so it is never replaced.
    """
    if not set(os.listdir(folder)) <= {METRICS_FILE, REPORT_FILE}:
        return False
    try:
        read_gathered_metrics(folder)
    except DistmlError:
        return False
    return True
