"""The DeepHealth Toolkit Dataset format (DTD): parse, validate and write its YAML files.

A DTD file lists images (a path, or a mapping with ``location``, ``label``, ``values``)
and an optional ``split`` (ordered mapping of split name to 0-based image indices).
Relative paths resolve against the folder of the YAML file. A dataset with ``classes``
is a classification dataset (labels are class names, 0-based class indices or lists of
them); one without is a segmentation dataset (labels are ground-truth image paths).

Reading uses ``yaml_rs`` (Rust): ~3 s for a 1M-image file where PyYAML's C loader needs
~95 s. Writing uses the small emitter below rather than a YAML library, for two reasons
measured here: yaml_rs's emitter leaves date-like strings unquoted (they read back as
dates), and a DTD has a fixed shape, so quoting every string and writing index lists in
flow style gives files that yaml-cpp (ECVL) and PyYAML read back exactly, fast.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml_rs

from distml.errors import DatasetError

#: The split names of DeepHealth's pipelines, in their usual order.
STANDARD_SPLITS = ("training", "validation", "test")

Label = int | str | list[int | str] | None
_IMAGE_KEYS = {"location", "label", "values"}
_TOP_KEYS = {"name", "description", "classes", "features", "images", "split"}


@dataclass(slots=True)
class Image:
    """One entry of ``images``: where the image is, its label and its feature values."""

    location: str
    label: Label = None
    values: Any = None


@dataclass
class Dataset:
    """A DTD dataset in memory. ``root`` is the folder relative locations resolve against."""

    name: str
    images: list[Image]
    description: str | None = None
    classes: list[str] = field(default_factory=list)
    features: list[str] = field(default_factory=list)
    split: dict[str, list[int]] | None = None
    root: Path = field(default=Path("."), compare=False)

    @property
    def is_segmentation(self) -> bool:
        """No classes: labels are ground-truth masks (DeepHealth's convention)."""
        return not self.classes

    def split_sizes(self) -> dict[str, int]:
        """Number of images in each split, in the file's order ({} without a split)."""
        return {key: len(indices) for key, indices in (self.split or {}).items()}

    def indices(self, split: str | None) -> list[int]:
        """Image indices of one split, or of all images when ``split`` is None."""
        if split is None:
            return list(range(len(self.images)))
        if not self.split or split not in self.split:
            known = ", ".join(self.split or {}) or "none"
            raise DatasetError(
                f"no split named {split!r} (splits: {known})",
                where=self.name,
                hint="Choose one of the dataset's splits, or none to use every image.",
            )
        return list(self.split[split])

    def resolve(self, location: str) -> Path:
        """Absolute path of a location written in the file."""
        path = Path(location)
        return path if path.is_absolute() else self.root / path

    def class_index(self, label: int | str) -> int:
        """0-based class index of a classification label given by name or index."""
        return label if isinstance(label, int) else self.classes.index(label)


# --------------------------------------------------------------------------- reading


def read_dataset(path: str | os.PathLike[str]) -> Dataset:
    """Parse and validate a DTD YAML file; raise DatasetError naming file and field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(
            "file not found", where=str(path), hint="Check the path, or create a dataset with `distml data synth`."
        ) from None
    except (IsADirectoryError, UnicodeDecodeError, PermissionError) as err:
        raise DatasetError(f"cannot read the file ({err.__class__.__name__})", where=str(path)) from None
    try:
        document = yaml_rs.loads(text, parse_datetime=False)
    except yaml_rs.YAMLDecodeError as err:
        message = " ".join(str(err).split("\n")[0].split())
        raise DatasetError(
            f"malformed YAML: {message}", where=str(path), hint="Fix the YAML syntax at that line."
        ) from None
    del text
    return dataset_from_document(document, root=path.parent, where=str(path))


def dataset_from_document(document: Any, *, root: Path, where: str) -> Dataset:
    """Validate a parsed DTD document and build the Dataset."""
    if not isinstance(document, dict):
        raise DatasetError(
            "a DTD file is a mapping with at least `images`", where=where, hint="See docs/dataset-format.md."
        )
    unknown = set(document) - _TOP_KEYS
    if unknown:
        raise DatasetError(
            f"unknown field(s) {', '.join(sorted(map(str, unknown)))}",
            where=where,
            hint=f"DTD fields are {', '.join(sorted(_TOP_KEYS))}.",
        )
    if "images" not in document:
        raise DatasetError("field `images` is missing", where=where, hint="List the images under `images:`.")
    name = document.get("name") or Path(where).stem
    description = document.get("description")
    _expect(isinstance(name, str), where, "name", "must be a string")
    _expect(description is None or isinstance(description, str), where, "description", "must be a string")
    classes = _string_list(document.get("classes"), where, "classes")
    features = _string_list(document.get("features"), where, "features")
    if len(set(classes)) != len(classes):
        raise DatasetError("a class is listed twice", where=f"{where}: classes", hint="Class names must be unique.")
    images = _parse_images(document["images"], classes, features, where)
    split = _parse_split(document.get("split"), len(images), where)
    return Dataset(
        name=name,
        description=description,
        classes=classes,
        features=features,
        images=images,
        split=split,
        root=root,
    )


def _expect(condition: bool, where: str, fieldname: str, what: str) -> None:
    if not condition:
        raise DatasetError(what, where=f"{where}: {fieldname}")


def _string_list(value: Any, where: str, fieldname: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str | int) for item in value):
        raise DatasetError("must be a list of names", where=f"{where}: {fieldname}")
    return [str(item) for item in value]


def _parse_images(raw: Any, classes: list[str], features: list[str], where: str) -> list[Image]:
    if not isinstance(raw, list):
        raise DatasetError("must be a list of image paths or mappings with `location`", where=f"{where}: images")
    class_set = frozenset(classes)
    n_classes = len(classes)
    feature_set = frozenset(features)
    images: list[Image] = []
    append = images.append
    for i, item in enumerate(raw):
        kind = type(item)
        if kind is str:
            append(Image(item))
            continue
        if kind is not dict:
            raise DatasetError("must be a path string or a mapping with `location`", where=f"{where}: images[{i}]")
        location = item.get("location")
        label = item.get("label")
        values = item.get("values")
        if type(location) is not str or not location or len(item) > 1 + ("label" in item) + ("values" in item):
            _raise_bad_image(item, f"{where}: images[{i}]")
        # Fast paths for the common labels; _check_label explains anything else.
        if label is not None and not (
            (type(label) is str and (not n_classes or label in class_set))
            or (type(label) is int and 0 <= label < n_classes)
        ):
            _check_label(label, class_set, n_classes, f"{where}: images[{i}].label")
        if values is not None and type(values) is dict and feature_set and not feature_set.issuperset(values):
            extra = ", ".join(sorted(map(str, set(values) - feature_set)))
            raise DatasetError(
                f"unknown feature(s) {extra}",
                where=f"{where}: images[{i}].values",
                hint="Add them to `features` or remove them.",
            )
        append(Image(location, label, values))
    return images


def _raise_bad_image(item: dict, where: str) -> None:
    location = item.get("location")
    if not isinstance(location, str) or not location:
        raise DatasetError("`location` (a path) is missing", where=where)
    extra = ", ".join(sorted(map(str, set(item) - _IMAGE_KEYS)))
    raise DatasetError(f"unknown key(s) {extra}", where=where, hint="An image has `location`, `label` and `values`.")


def _check_label(label: Any, class_set: frozenset[str], n_classes: int, where: str) -> None:
    if isinstance(label, list):
        for j, part in enumerate(label):
            _check_label(part, class_set, n_classes, f"{where}[{j}]")
        return
    if isinstance(label, bool) or not isinstance(label, int | str):
        raise DatasetError("a label is a class name, a class index, a ground-truth path or a list", where=where)
    if n_classes == 0:
        if isinstance(label, int):
            raise DatasetError(
                f"class index {label} but the dataset has no `classes`",
                where=where,
                hint="List the classes, or give a ground-truth image path for segmentation.",
            )
        return
    if isinstance(label, int):
        if not 0 <= label < n_classes:
            raise DatasetError(
                f"class index {label} out of range (0..{n_classes - 1})",
                where=where,
                hint="Class indices are 0-based positions in `classes`.",
            )
    elif label not in class_set:
        shown = ", ".join(sorted(class_set)[:10])
        raise DatasetError(
            f"unknown class {label!r} (classes: {shown})",
            where=where,
            hint="Use a name from `classes` or a 0-based class index.",
        )


def _parse_split(raw: Any, n_images: int, where: str) -> dict[str, list[int]] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise DatasetError(
            "must map split names (training, validation, test) to lists of image indices", where=f"{where}: split"
        )
    seen = np.full(n_images, -1, dtype=np.int32)
    names = list(raw)
    split: dict[str, list[int]] = {}
    for k, (key, indices) in enumerate(raw.items()):
        fieldname = f"{where}: split.{key}"
        if indices is None:
            indices = []
        if not isinstance(indices, list):
            raise DatasetError("must be a list of 0-based image indices", where=fieldname)
        array = np.asarray(indices) if indices else np.zeros(0, dtype=np.int64)
        # numpy reads `true` among integers as 1: look for booleans by type.
        if array.dtype.kind not in "iu" or array.ndim != 1 or any(type(x) is bool for x in indices):
            bad = next((j for j, x in enumerate(indices) if isinstance(x, bool) or not isinstance(x, int)), 0)
            raise DatasetError(f"{indices[bad]!r} is not an image index", where=f"{fieldname}[{bad}]")
        out_of_range = np.flatnonzero((array < 0) | (array >= n_images))
        if out_of_range.size:
            j = int(out_of_range[0])
            raise DatasetError(
                f"index {int(array[j])} out of range (the dataset has {n_images} images, indices 0..{n_images - 1})",
                where=f"{fieldname}[{j}]",
            )
        _check_not_listed_twice(array, seen, k, names, fieldname)
        split[str(key)] = array.tolist()
    return split


def _check_not_listed_twice(array: np.ndarray, seen: np.ndarray, k: int, names: list[Any], fieldname: str) -> None:
    previous = seen[array]
    clash = np.flatnonzero(previous >= 0)
    if clash.size:
        j = int(clash[0])
        raise DatasetError(
            f"image {int(array[j])} is listed twice (also in split.{names[previous[j]]})",
            where=f"{fieldname}[{j}]",
            hint="Each image belongs to at most one split.",
        )
    seen[array] = k
    if np.unique(array).size != array.size:
        values, counts = np.unique(array, return_counts=True)
        twice = int(values[counts > 1][0])
        j = int(np.flatnonzero(array == twice)[1])
        raise DatasetError(
            f"image {twice} is listed twice in this split",
            where=f"{fieldname}[{j}]",
            hint="Each image belongs to at most one split.",
        )


def check_files(dataset: Dataset, *, where: str | None = None) -> None:
    """Raise if an image or ground-truth file is missing (only when asked: it reads the disk)."""
    missing: list[str] = []
    for i, image in enumerate(dataset.images):
        for fieldname, location in _paths_of(image, dataset.is_segmentation):
            if not dataset.resolve(location).is_file():
                missing.append(f"images[{i}].{fieldname} {location}")
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise DatasetError(
            f"{missing[0]} does not exist{more}",
            where=where or dataset.name,
            hint=f"Paths are relative to {dataset.root}; fix them or restore the files.",
        )


def _paths_of(image: Image, segmentation: bool) -> Iterable[tuple[str, str]]:
    yield "location", image.location
    if segmentation and isinstance(image.label, str):
        yield "label", image.label
    elif segmentation and isinstance(image.label, list):
        for j, part in enumerate(image.label):
            if isinstance(part, str):
                yield f"label[{j}]", part


# --------------------------------------------------------------------------- writing


def write_dataset(dataset: Dataset, path: str | os.PathLike[str]) -> Path:
    """Write ``dataset`` to ``path`` atomically, rewriting relative paths for its folder.

    Locations relative to ``dataset.root`` are rewritten to stay valid from the folder
    of ``path``; absolute ones are kept. The file appears only once fully written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = dumps_dataset(dataset, relocate_to=path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def dumps_dataset(dataset: Dataset, *, relocate_to: Path | None = None) -> str:
    """The DTD YAML text of ``dataset`` (see the module docstring for why not a YAML library)."""
    relocate = _relocator(dataset.root, relocate_to)
    segmentation = dataset.is_segmentation
    lines = [f"name: {_quote(dataset.name)}"]
    if dataset.description is not None:
        lines.append(f"description: {_quote(dataset.description)}")
    lines.append(f"classes: {_flow(dataset.classes)}")
    if dataset.features:
        lines.append(f"features: {_flow(dataset.features)}")
    if dataset.images:
        lines.append("images:")
        for image in dataset.images:
            lines.append(_image_entry(image, relocate, segmentation))
    else:
        lines.append("images: []")
    if dataset.split is not None:
        lines.append("split:" if dataset.split else "split: {}")
        for key, indices in dataset.split.items():
            lines.append(f"  {_quote(key)}: [{', '.join(map(str, indices))}]")
    lines.append("")
    return "\n".join(lines)


def _image_entry(image: Image, relocate, segmentation: bool) -> str:
    location = _quote(relocate(image.location))
    if image.label is None and image.values is None:
        return f"  - {location}"
    entry = f"  - location: {location}"
    if image.label is not None:
        label = image.label
        if segmentation:
            label = (
                [relocate(x) if isinstance(x, str) else x for x in label]
                if isinstance(label, list)
                else (relocate(label) if isinstance(label, str) else label)
            )
        entry += f"\n    label: {_scalar_or_flow(label)}"
    if image.values is not None:
        entry += f"\n    values: {_json(image.values)}"
    return entry


def _relocator(root: Path, target: Path | None):
    """A function rewriting relative paths written for ``root`` so they hold from ``target``."""
    if target is None:
        return _identity
    prefix = os.path.relpath(os.path.abspath(root), os.path.abspath(target)).replace(os.sep, "/")
    if prefix == ".":
        return _identity
    prefix += "/"

    def relocate(location: str) -> str:
        return location if location.startswith("/") else prefix + location

    return relocate


def _identity(location: str) -> str:
    return location


def _quote(text: str) -> str:
    """A YAML double-quoted scalar; the fast path covers ordinary names and paths."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return _NOT_YAML_PRINTABLE.sub(_escape, json.dumps(text, ensure_ascii=False))


# Characters YAML does not allow unescaped, or reads as line breaks (JSON escapes only those below 0x20).
_NOT_YAML_PRINTABLE = re.compile("[\x7f-\x9f\u2028\u2029\ufffe\uffff]")


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _scalar_or_flow(value: Any) -> str:
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, list):
        return _flow(value)
    return _json(value)


def _flow(items: list[Any]) -> str:
    return "[" + ", ".join(_scalar_or_flow(item) for item in items) + "]"


def _json(value: Any) -> str:
    """JSON is valid YAML flow syntax for yaml-cpp and PyYAML alike."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False)
