"""``load_data``: turn a dataset source into a self-contained folder (a pipeline artifact).

Sources: ``dtd:PATH``, ``npz:PATH``, ``sklearn:digits``, ``synthetic:lesions``,
``synthetic:digits``, and ``keras:mnist``, ``keras:fashion_mnist``, ``keras:imdb`` (these
download; offline they fail at once, naming a local alternative).

The folder always holds ``metadata.json`` (what is inside, see ArtifactInfo) and either a
DTD dataset (``dataset.yml`` and its image files) or ``data.npz`` with the arrays
``x_train``, ``y_train``, ``x_test``, ``y_test`` (Keras's layout). It is built in a
staging folder and renamed into place, so a failed load leaves nothing behind.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import zipfile
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from distml.data.dtd import Dataset, Image, read_dataset, write_dataset
from distml.data.split import part_sizes, split_dataset, write_parts
from distml.data.synth import DATASET_FILE, synth_digits, synth_lesions
from distml.data.trust import check_locations
from distml.errors import DatasetError
from distml.folders import ArtifactInfo, PartInfo, read_data_info, write_data_info
from distml.staging import exclusive_writer, staged_files, staged_folder
from distml.tfkeras import use_tf_keras

ARRAYS_FILE = "data.npz"
SOURCES = (
    "dtd:PATH",
    "npz:PATH",
    "sklearn:digits",
    "synthetic:lesions",
    "synthetic:digits",
    "keras:mnist",
    "keras:fashion_mnist",
    "keras:imdb",
)
#: Where Keras downloads its datasets from; overridable so tests can simulate being offline.
KERAS_ORIGIN_ENV = "DISTML_KERAS_ORIGIN"
_KERAS_ORIGIN = "https://storage.googleapis.com"
_KERAS_CACHE = {"mnist": "mnist.npz", "fashion_mnist": "fashion-mnist", "imdb": "imdb.npz"}
_IMDB_WORDS, _IMDB_LENGTH = 10_000, 200
#: Most classes an npz's labels may imply (its largest label + 1); the model has one output per class.
MAX_CLASSES = 100_000


def load_data(
    source: str,
    out_dir: str | os.PathLike[str],
    *,
    images: int = 100,
    size: int = 64,
    seed: int = 0,
    copy_files: bool = True,
    allow_roots: list[str | os.PathLike[str]] | tuple = (),
) -> ArtifactInfo:
    """Load ``source`` into ``out_dir`` (created; must be absent or empty).

    ``images``, ``size`` and ``seed`` shape the synthetic sources. ``copy_files=False``
    keeps a DTD's images where they are (a shared PVC) and writes absolute paths.
    A DTD's locations must be regular files inside its folder or under ``allow_roots``
    (distml.data.trust).
    """
    scheme, _, rest = source.partition(":")
    out = Path(out_dir)
    with staged_folder(out, what="output folder") as staging:
        if scheme == "dtd" and rest:
            info = _load_dtd(Path(rest), staging, copy_files=copy_files, allow_roots=allow_roots)
        elif scheme == "npz" and rest:
            info = _save_arrays(_read_npz(Path(rest)), staging, source=source, name=Path(rest).stem)
        elif source == "sklearn:digits":
            info = _save_arrays(_digits_arrays(seed), staging, source=source, name="sklearn-digits")
        elif source == "synthetic:lesions":
            synth_lesions(staging, images=images, size=size, seed=seed)
            info = _dtd_info(read_dataset(staging / DATASET_FILE), source)
        elif source == "synthetic:digits":
            synth_digits(staging, images=None if images >= 1797 else images, seed=seed)
            info = _dtd_info(read_dataset(staging / DATASET_FILE), source)
        elif scheme == "keras" and rest in _KERAS_CACHE:
            info = _save_arrays(_keras_arrays(rest), staging, source=source, name=rest)
        else:
            raise DatasetError(f"unknown data source {source!r}", hint=f"Use one of: {', '.join(SOURCES)}.")
        write_data_info(staging, info)
    return info


def load_arrays(folder: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The arrays of an npz data folder (``x_train``, ``y_train``, ``x_test``, ``y_test``)."""
    info = read_data_info(folder)
    if info.format != "npz":
        raise DatasetError(
            f"holds a {info.format} dataset, not arrays", where=str(folder), hint="Use an npz, sklearn or keras source."
        )
    with np.load(Path(folder) / info.file) as data:
        return {key: data[key] for key in data.files}


def _dtd_info(dataset: Dataset, source: str, *, roots: list[str] | None = None) -> ArtifactInfo:
    return ArtifactInfo(
        format="dtd",
        file=DATASET_FILE,
        source=source,
        name=dataset.name,
        task="segmentation" if dataset.is_segmentation else "classification",
        classes=list(dataset.classes),
        counts={"images": len(dataset.images), **dataset.split_sizes()},
        roots=roots or [],
    )


def _load_dtd(path: Path, staging: Path, *, copy_files: bool, allow_roots) -> ArtifactInfo:
    dataset = read_dataset(path)
    # The source is untrusted: only its folder and the roots the user named, never roots it records.
    check_locations(dataset, allow_roots=allow_roots, read=True, recorded=False, where=str(path))
    source = f"dtd:{path}"
    roots = [os.path.realpath(r) for r in allow_roots]
    if not copy_files:
        dataset.images = [_absolute(image, dataset) for image in dataset.images]
        dataset.root = staging
        write_dataset(dataset, staging / DATASET_FILE)
        return _dtd_info(dataset, source, roots=[os.path.realpath(path.parent), *roots])
    copied: dict[str, str] = {}

    def copy(location: str) -> str:
        if location not in copied:
            # check_locations has resolved symlinks and found a regular file: copy that file.
            src = Path(os.path.realpath(dataset.resolve(location)))
            relative = Path(location)
            inside = not relative.is_absolute() and ".." not in relative.parts
            target = relative if inside else Path("external") / f"{len(copied):06d}_{src.name}"
            (staging / target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, staging / target)
            copied[location] = target.as_posix()
        return copied[location]

    dataset.images = [_map_locations(image, dataset, copy) for image in dataset.images]
    dataset.root = staging
    write_dataset(dataset, staging / DATASET_FILE)
    return _dtd_info(dataset, source)


def _map_locations(image: Image, dataset: Dataset, fn) -> Image:
    """``image`` with every plane and its ground-truth path passed through ``fn``."""
    location = [fn(plane) for plane in image.location] if isinstance(image.location, list) else fn(image.location)
    label = fn(image.label) if dataset.label_path(image) is not None else image.label
    return Image(location, label, image.values)


def _absolute(image: Image, dataset: Dataset) -> Image:
    return _map_locations(image, dataset, lambda location: os.path.realpath(dataset.resolve(location)))


def _declared_bytes(path: Path) -> int:
    """What the arrays of an .npz would take in memory, from their headers, before any is decompressed.

    A tiny compressed file can declare gigabytes of zeros; reading the headers costs nothing.
    """
    total = 0
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if not member.endswith(".npy"):
                continue
            with archive.open(member) as stream:
                version = np.lib.format.read_magic(stream)
                read_header = (
                    np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                )
                shape, _, dtype = read_header(stream)
            total += math.prod(shape) * dtype.itemsize
    return total


def _available_memory() -> int | None:
    """Bytes of memory available now (Linux' MemAvailable), or None where it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        declared = _declared_bytes(path)
    except FileNotFoundError:
        raise DatasetError("file not found", where=str(path)) from None
    except (ValueError, OSError, zipfile.BadZipFile) as err:
        raise DatasetError(f"not a readable .npz archive ({err})", where=str(path)) from None
    available = _available_memory()
    if available is not None and declared > available:
        raise DatasetError(
            f"its arrays would take {declared / 2**30:.1f} GiB of memory, more than the {available / 2**30:.1f} GiB "
            "available (checked from the array headers, before reading)",
            where=str(path),
            hint="Use a machine with more memory, or save a smaller dataset.",
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise DatasetError("file not found", where=str(path)) from None
    except (ValueError, OSError) as err:
        raise DatasetError(f"not a readable .npz archive ({err})", where=str(path)) from None
    if {"x", "y"} <= arrays.keys() and "x_train" not in arrays:
        raise DatasetError(
            "has x and y but no train/test split",
            where=str(path),
            hint="Save x_train, y_train, x_test, y_test (Keras's layout).",
        )
    missing = [key for key in ("x_train", "y_train", "x_test", "y_test") if key not in arrays]
    if missing:
        raise DatasetError(
            f"missing array(s) {', '.join(missing)} (found {', '.join(arrays) or 'none'})",
            where=str(path),
            hint="Save x_train, y_train, x_test, y_test (Keras's layout).",
        )
    for part in ("train", "test"):
        if len(arrays[f"x_{part}"]) != len(arrays[f"y_{part}"]):
            raise DatasetError(f"x_{part} and y_{part} have different lengths", where=str(path))
    return arrays


def _save_arrays(arrays: dict[str, np.ndarray], staging: Path, *, source: str, name: str) -> ArtifactInfo:
    classes: list[int] = []
    if arrays["y_train"].ndim == 1:
        labels = _class_indices(np.concatenate([arrays["y_train"], arrays["y_test"]]), source)
        if labels.size and labels.min() < 0:
            raise DatasetError(
                f"class labels must be 0-based indices, found {int(labels.min())}",
                where=source,
                hint="Map the labels to 0..K-1 before saving the arrays.",
            )
        # Labels index the model's outputs: classes 0..max over both splits, even those absent from training.
        # Bounded first: one label of 10^8 once built a list of 10^8 class names (11 GB).
        if labels.size and labels.max() >= MAX_CLASSES:
            raise DatasetError(
                f"class label {int(labels.max())} means {int(labels.max()) + 1} classes (0..{int(labels.max())}); "
                f"at most {MAX_CLASSES} are allowed",
                where=source,
                hint="Map the labels to 0..K-1 (K classes) before saving the arrays.",
            )
        classes = list(range(int(labels.max()) + 1)) if labels.size else []
    np.savez(staging / ARRAYS_FILE, **arrays)
    return ArtifactInfo(
        format="npz",
        file=ARRAYS_FILE,
        source=source,
        name=name,
        task="classification",
        classes=[str(c) for c in classes],
        counts={"train": len(arrays["x_train"]), "test": len(arrays["x_test"])},
    )


def _class_indices(labels: np.ndarray, source: str) -> np.ndarray:
    """Labels as int64 class indices; fractional, NaN or infinite labels are refused, not truncated."""
    if labels.dtype.kind in "iub":
        return labels.astype(np.int64)
    if labels.dtype.kind == "f" and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels)):
        return labels.astype(np.int64)
    raise DatasetError(
        f"class labels must be whole numbers, found {labels.dtype} values such as {labels[:3].tolist()}",
        where=source,
        hint="Save integer class indices 0..K-1 (or one-hot rows).",
    )


def _digits_arrays(seed: int) -> dict[str, np.ndarray]:
    """Digits as 8x8x1 floats in [0, 1], a stratified 80/20 train/test split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., np.newaxis]
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def _keras_arrays(name: str) -> dict[str, np.ndarray]:
    """A Keras dataset: from Keras's cache, else downloaded, else a clear offline error."""
    cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets" / _KERAS_CACHE[name]
    if not cache.exists():
        _require_network(name)
    use_tf_keras()
    try:
        from tf_keras import datasets
    except ImportError:
        raise DatasetError(
            f"keras:{name} needs TensorFlow", hint="Install the tf extra: pip install 'kfp-distml[tf]'."
        ) from None
    if name == "imdb":
        (x_train, y_train), (x_test, y_test) = datasets.imdb.load_data(num_words=_IMDB_WORDS)
        return {
            "x_train": _pad(x_train),
            "y_train": y_train.astype(np.int64),
            "x_test": _pad(x_test),
            "y_test": y_test.astype(np.int64),
        }
    module = datasets.mnist if name == "mnist" else datasets.fashion_mnist
    (x_train, y_train), (x_test, y_test) = module.load_data()
    return {
        "x_train": (x_train / 255.0).astype(np.float32)[..., np.newaxis],
        "y_train": y_train.astype(np.int64),
        "x_test": (x_test / 255.0).astype(np.float32)[..., np.newaxis],
        "y_test": y_test.astype(np.int64),
    }


def _pad(sequences) -> np.ndarray:
    """IMDB reviews as word indices, cut or zero-padded at the front to a fixed length."""
    out = np.zeros((len(sequences), _IMDB_LENGTH), dtype=np.int32)
    for i, sequence in enumerate(sequences):
        tail = sequence[-_IMDB_LENGTH:]
        out[i, _IMDB_LENGTH - len(tail) :] = tail
    return out


def _require_network(name: str) -> None:
    """Fail in seconds, not at a hung download, when the Keras origin cannot be reached."""
    origin = urlparse(os.environ.get(KERAS_ORIGIN_ENV, _KERAS_ORIGIN))
    port = origin.port or (443 if origin.scheme == "https" else 80)
    try:
        with socket.create_connection((origin.hostname, port), timeout=3):
            return
    except OSError as err:
        raise DatasetError(
            f"keras:{name} must be downloaded from {origin.hostname} and it cannot be reached ({err})",
            hint="Offline, use sklearn:digits, synthetic:lesions, or npz:PATH with a local copy of the data.",
        ) from None


def shard_arrays(folder: str | os.PathLike[str], shards: int, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Split an npz data folder into per-worker shard files (the "copier" step).

    The training rows are cut by DeepHealth's rule (floor(n/N) each, the rest on the last
    shard); the test rows, used for evaluation, go whole into every shard. Files:
    ``shard-000-of-004.npz``... All or nothing (distml.staging.staged_files).
    """
    pieces = _shards(load_arrays(folder), shards)
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_writer(out), staged_files(out) as staging:  # a second shard run into this folder fails at once
        for name, shard in pieces:
            np.savez(staging / f"{name}.npz", **shard)
    return [out / f"{name}.npz" for name, _ in pieces]


def _shards(arrays: dict[str, np.ndarray], shards: int) -> list[tuple[str, dict[str, np.ndarray]]]:
    """(``shard-000-of-004``, its arrays) per shard: a slice of the training rows, all test rows."""
    pieces = []
    start = 0
    for s, size in enumerate(part_sizes(len(arrays["x_train"]), shards)):
        shard = {key: value[start : start + size] if key.endswith("_train") else value for key, value in arrays.items()}
        start += size
        pieces.append((f"shard-{s:03d}-of-{shards:03d}", shard))
    return pieces


def split_data_folder(folder: str | os.PathLike[str], parts: int, out_dir: str | os.PathLike[str]) -> list[PartInfo]:
    """Split the DTD dataset of a loaded-data folder into ``parts`` part files in ``out_dir`` (the split_dataset step).

    The parts allow the image roots the folder recorded (metadata.json ``roots``), as its
    dataset does; an npz folder is refused, since arrays are cut by shard_data_folders instead.
    """
    info = read_data_info(folder)
    if info.format != "dtd":
        raise DatasetError(
            f"holds a {info.format} dataset, not a DTD one: only a DTD dataset is split into part files",
            where=str(folder),
            hint="Load a dtd: or synthetic: source; cut arrays for training with shard_data.",
        )
    dataset = read_dataset(Path(folder) / info.file)
    return write_parts(dataset, split_dataset(dataset, parts), out_dir)


def shard_data_folders(folder: str | os.PathLike[str], shards: int, out_dir: str | os.PathLike[str]) -> list[str]:
    """Like shard_arrays, but each shard is a loaded-data folder ``shard-000-of-004/`` of its own.

    So a trainer takes a shard exactly as it takes any data folder. ``out_dir`` (absent or empty)
    is written all at once (distml.staging.staged_folder). Returns the folder names.
    """
    info = read_data_info(folder)
    pieces = _shards(load_arrays(folder), shards)
    with staged_folder(out_dir, what="shards folder") as staging:
        for name, shard in pieces:
            (staging / name).mkdir()
            np.savez(staging / name / ARRAYS_FILE, **shard)
            counts = {"train": len(shard["x_train"]), "test": len(shard["x_test"])}
            write_data_info(staging / name, replace(info, name=f"{info.name}-{name}", counts=counts))
    return [name for name, _ in pieces]
