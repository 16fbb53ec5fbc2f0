"""The DeepHealth Toolkit Dataset format (DTD): parse, validate and write its YAML files.

A DTD file means what ECVL 1.0.3 reads in it (deephealthproject/ecvl v1.0.3,
``modules/dataset/src/dataset_parser.cpp``; docs/dataset-format.md lists every rule with its
line there and where we are stricter on purpose):

* ``images`` entries are a path, a list of paths (the planes of one image, :124-133), or a
  mapping with ``location`` (a path or a list of planes, :135-144), ``label`` and ``values``;
* a label (``Dataset::FindLabel``, :30-52) is read as an integer first (yaml-cpp's
  ``as<int>``: ``"3"`` quoted is index 3, ``0x1f`` is 31), else a class name, else the path of
  a ground-truth image, with or without ``classes``; a list applies that to each item;
* ``values`` is a list (position = feature) or a mapping (feature name -> value) (:161-178);
* relative paths resolve against the folder of the YAML file (:181-188), absolute ones stay;
* ``split`` maps split names to 0-based image indices (:289-303).

Reading uses ``yaml_rs`` (Rust): ~3 s for a 1M-image file where PyYAML's C loader needs
~95 s; an ``images`` block in the plain shape big files have is read by
``distml.data.dtd_block`` instead (the same document, without a dict per image).
Writing uses the small emitter below rather than a YAML library, for two reasons measured
here: yaml_rs's emitter leaves date-like strings unquoted (they read back as dates), and a
DTD has a fixed shape, so quoting every string and writing index lists in flow style gives
files that yaml-cpp (ECVL) and PyYAML read back exactly, fast.
"""

from __future__ import annotations

import gc
import json
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml_rs

from distml.data.dtd_block import split_images_block
from distml.errors import DatasetError
from distml.staging import write_text_atomic

#: The split names of DeepHealth's pipelines, in their usual order.
STANDARD_SPLITS = ("training", "validation", "test")

#: A location: one path, or the paths of the planes of one image (stacked by ECVL).
Location = str | list[str]
Label = int | str | list[int | str] | None
_IMAGE_KEYS = ("location", "label", "values")
_TOP_KEYS = ("name", "description", "classes", "features", "images", "split")

# yaml-cpp converts a scalar to int with a C++ stream whose base comes from the prefix
# (include/yaml-cpp/node/convert.h: `stream.unsetf(std::ios::dec)`, then `stream >> std::noskipws
# >> rhs` and only white space after): 0x.. hex, 0.. octal, else decimal, an optional sign,
# 32-bit range. Each case was checked against pyecvl 1.3.0 (tests/data/test_data_ecvl.py).
_CXX_INT = re.compile(r"([+-]?)(?:0[xX]([0-9a-fA-F]+)|(0[0-7]*)|([1-9][0-9]*))[ \t\n\v\f\r]*\Z")
_INT_FIRST = frozenset("+-0123456789")
_URL = re.compile(r"https?://.*")  # Dataset::url_regex_, dataset_parser.cpp:28


def ecvl_int(text: str) -> int | None:
    """The integer ECVL reads from a scalar's text, or None when it reads a string.

    FindLabel tries ``as<int>()`` before anything else (dataset_parser.cpp:34-38), so a
    quoted ``"3"`` is class index 3 even when a class is named "3".
    """
    match = _CXX_INT.match(text)
    if match is None:
        return None
    sign, hexadecimal, octal, decimal = match.groups()
    if hexadecimal is not None:
        value = int(hexadecimal, 16)
    elif octal is not None:
        value = int(octal, 8)
    else:
        value = int(decimal)
    value = -value if sign == "-" else value
    return value if -(2**31) <= value < 2**31 else None


def is_url(location: str) -> bool:
    """ECVL downloads http(s) locations with curl instead of reading a file (dataset_parser.cpp:62-74)."""
    return _URL.fullmatch(location) is not None


@dataclass(slots=True)
class Image:
    """One entry of ``images``: where the image is (a path or its planes), its label and feature values.

    ``label`` is None (no label), a class index, a class name, a list of them (multi-label),
    or, when it is a string that names no class, the path of the ground-truth image.
    """

    location: Location
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
    #: The file this dataset was read from (None when built in memory); writers never replace it.
    source: Path | None = field(default=None, compare=False)

    @property
    def is_segmentation(self) -> bool:
        """No classes: ECVL's segmentation task (dataset_parser.cpp:305)."""
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

    def resolve(self, location: Location) -> Path:
        """Absolute path of a single-plane location written in the file."""
        if isinstance(location, list):
            raise DatasetError(
                f"a multi-plane image ({len(location)} planes: {location[0]}, ...) where one file was expected",
                where=self.name,
                hint="Training and inference read one file per image; list one location per image.",
            )
        path = Path(location)
        return path if path.is_absolute() else self.root / path

    def class_index(self, label: int | str) -> int:
        """0-based class index of a classification label given by name or index."""
        if isinstance(label, int):
            return label
        if label not in self.classes:
            raise DatasetError(
                f"label {label!r} is a ground-truth path, not a class",
                where=self.name,
                hint=f"Use a class name ({', '.join(self.classes[:5])}, ...) or a 0-based class index.",
            )
        return self.classes.index(label)

    def label_path(self, image: Image) -> str | None:
        """The ground-truth image path of ``image`` (a string label that names no class), or None."""
        label = image.label
        return label if isinstance(label, str) and label not in self.classes else None

    def label_indices(self, image: Image) -> list[int] | None:
        """The class indices of ``image``'s label, as ECVL's ``Sample::label_`` holds them, or None."""
        label = image.label
        if label is None or self.label_path(image) is not None:
            return None
        items = label if isinstance(label, list) else [label]
        return [self.class_index(item) for item in items]

    def paths_of(self, image: Image) -> Iterable[tuple[str, str]]:
        """(field, path) of every file an image refers to: its planes and its ground-truth image."""
        if isinstance(image.location, list):
            for j, plane in enumerate(image.location):
                yield f"location[{j}]", plane
        else:
            yield "location", image.location
        path = self.label_path(image)
        if path is not None:
            yield "label", path


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
    with _collector_paused():
        try:
            document = split_images_block(text) or yaml_rs.loads(text, parse_datetime=False)
        except yaml_rs.YAMLDecodeError as err:
            message = " ".join(str(err).split("\n")[0].split())
            raise DatasetError(
                f"malformed YAML: {message}", where=str(path), hint="Fix the YAML syntax at that line."
            ) from None
        del text
        dataset = dataset_from_document(document, root=path.parent, where=str(path))
    dataset.source = path
    return dataset


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No garbage collection while a million objects are built, none of which is garbage.

    Each allocation past the threshold starts a collection that walks the young objects, and
    the older generations' ones ever more often: about 1 s of a 1M-image read (issue 15). The
    objects built are frozen (moved out of the collector's generations) so the next collections
    do not walk them either; the collector's state is restored on the way out.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def dataset_from_document(document: Any, *, root: Path, where: str) -> Dataset:
    """Validate a parsed DTD document and build the Dataset."""
    if not isinstance(document, dict):
        raise DatasetError(
            "a DTD file is a mapping with at least `images`", where=where, hint="See docs/dataset-format.md."
        )
    # ECVL reads only the keys it knows and ignores the rest (dataset_parser.cpp:271-289); a key
    # that is a known one misspelt (`splits`, `Images`) would silently drop data, so it is refused.
    _refuse_misspelt_keys(document, _TOP_KEYS, where)
    if "images" not in document:
        raise DatasetError("field `images` is missing", where=where, hint="List the images under `images:`.")
    name = document.get("name") or Path(where).stem
    description = document.get("description")
    _expect(isinstance(name, str), where, "name", "must be a string")
    _expect(description is None or isinstance(description, str), where, "description", "must be a string")
    classes = _string_list(document.get("classes"), where, "classes")
    features = _string_list(document.get("features"), where, "features")
    if len(set(classes)) != len(classes):
        raise DatasetError(
            "a class is listed twice",
            where=f"{where}: classes",
            hint="Class names must be unique (ECVL maps a name to its first position only).",
        )
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


def _refuse_misspelt_keys(mapping: dict, known: tuple[str, ...], where: str) -> None:
    stems = {key.rstrip("s"): key for key in known}
    for key in mapping:
        if key in known:
            continue
        meant = stems.get(str(key).lower().rstrip("s"))
        if meant is not None:
            raise DatasetError(
                f"unknown key {key!r} (did you mean `{meant}`?)",
                where=where,
                hint="ECVL ignores unknown keys, so a misspelt one would silently drop its content.",
            )


def _expect(condition: bool, where: str, fieldname: str, what: str) -> None:
    if not condition:
        raise DatasetError(what, where=f"{where}: {fieldname}")


def _string_list(value: Any, where: str, fieldname: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(type(item) in (str, int) for item in value):
        raise DatasetError(
            "must be a list of names",
            where=f"{where}: {fieldname}",
            hint="Quote names that YAML would read as numbers, booleans or null.",
        )
    return [str(item) for item in value]


def _parse_images(raw: Any, classes: list[str], features: list[str], where: str) -> list[Image]:
    if not isinstance(raw, list):
        raise DatasetError(
            "must be a list of image paths or mappings with `location`", where=f"{where}: images"
        )
    class_set = frozenset(classes)
    # Class names that ECVL reads as an index (FindLabel tries as<int> first) never take the fast path.
    plain_classes = frozenset(name for name in classes if ecvl_int(name) is None)
    n_classes = len(classes)
    feature_set = frozenset(features)
    images: list[Image] = []
    append = images.append
    for i, item in enumerate(raw):
        kind = type(item)
        if kind is str and item:
            append(Image(item))
            continue
        if kind is dict:
            location = item.get("location")
            label = item.get("label")
            values = item.get("values")
            has_label = "label" in item
            has_values = "values" in item
            if len(item) > 1 + has_label + has_values:
                _refuse_misspelt_keys(item, _IMAGE_KEYS, f"{where}: images[{i}]")
        elif kind is tuple:  # (location,) or (location, label): distml.data.dtd_block's entries
            location = item[0]
            has_label = len(item) == 2
            label = item[1] if has_label else None
            values = None
            has_values = False
        else:
            append(Image(_location(item, f"{where}: images[{i}]")))
            continue
        if type(location) is not str or not location:
            location = _location(location, f"{where}: images[{i}].location")
        # Fast paths for the common labels: a class name, an index in range, a ground-truth
        # path (a string that is no class and cannot read as an integer).
        if label is None:
            if has_label:
                label = _label(None, class_set, n_classes, f"{where}: images[{i}].label")
        elif not (
            (
                type(label) is str
                and (label in plain_classes or (label[:1] not in _INT_FIRST and label not in class_set))
            )
            or (type(label) is int and 0 <= label < n_classes)
        ):
            label = _label(label, class_set, n_classes, f"{where}: images[{i}].label")
        if values is not None or has_values:
            _check_values(values, feature_set, f"{where}: images[{i}].values")
        append(Image(location, label, values))
    return images


def _location(raw: Any, where: str) -> Location:
    """A path, or a non-empty list of paths (planes); anything else is refused."""
    if isinstance(raw, str) and raw:
        return raw
    if isinstance(raw, list) and raw and all(isinstance(plane, str) and plane for plane in raw):
        return list(raw)
    if raw is None:
        raise DatasetError("`location` (a path) is missing", where=where)
    raise DatasetError(
        f"{raw!r} is not a location",
        where=where,
        hint="A location is a path, or a list of paths for the planes of one image; quote paths "
        "that YAML would read as numbers or booleans.",
    )


def _label(raw: Any, class_set: frozenset[str], n_classes: int, where: str) -> Label:
    """ECVL's reading of a label (Dataset::FindLabel), normalised: indices, class names or one path."""
    if isinstance(raw, list):
        items = [_label_item(item, class_set, n_classes, f"{where}[{j}]") for j, item in enumerate(raw)]
        paths = [item for item in items if isinstance(item, str) and item not in class_set]
        if not paths:
            return items
        if len(items) == 1:
            return paths[0]
        raise DatasetError(
            f"a list label with a ground-truth path ({paths[0]!r}) among other entries",
            where=where,
            hint="ECVL keeps only the last path of such a list and drops the classes before it "
            "(dataset_parser.cpp:30-52); give one path, or class names and indices only.",
        )
    return _label_item(raw, class_set, n_classes, where)


def _label_item(raw: Any, class_set: frozenset[str], n_classes: int, where: str) -> int | str:
    if raw is None:
        raise DatasetError(
            "an empty label",
            where=where,
            hint="ECVL reads it as the ground-truth path 'null'; remove the key or give a label.",
        )
    if type(raw) is str:
        index = ecvl_int(raw)
        if index is None:
            if not raw:
                raise DatasetError("an empty ground-truth path", where=where)
            return raw  # a class name, or else a ground-truth path (FindLabel, :40-50)
        raw = index
    if type(raw) is not int:
        raise DatasetError(
            f"{raw!r} is not a label",
            where=where,
            hint="A label is a class name, a 0-based class index, a ground-truth path or a list of "
            "classes; quote a name that YAML reads as a number or boolean (ECVL uses its text).",
        )
    if n_classes == 0:
        raise DatasetError(
            f"class index {raw} but the dataset has no `classes`",
            where=where,
            hint="List the classes, or give a ground-truth image path for segmentation "
            "(quote nothing that reads as an integer: ECVL takes it as an index).",
        )
    if not 0 <= raw < n_classes:
        raise DatasetError(
            f"class index {raw} out of range (0..{n_classes - 1})",
            where=where,
            hint="Class indices are 0-based positions in `classes`.",
        )
    return raw


def _check_values(values: Any, feature_set: frozenset[str], where: str) -> None:
    """``values``: a list by feature position or a mapping by feature name, of scalars (:161-178)."""
    if isinstance(values, list):
        items = values
    elif isinstance(values, dict):
        unknown = set(values) - feature_set
        if unknown:
            raise DatasetError(
                f"unknown feature(s) {', '.join(sorted(map(str, unknown)))}",
                where=where,
                hint="Add them to `features` or remove them (ECVL would file every unknown name under "
                "feature 0).",
            )
        items = list(values.values())
    else:
        raise DatasetError(
            f"{values!r} is not a list or mapping of feature values",
            where=where,
            hint="Write values as a list (by feature position) or a mapping (feature name: value).",
        )
    for item in items:
        if isinstance(item, list | dict):
            raise DatasetError(f"{item!r} is not a feature value", where=where, hint="Values are scalars.")


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
        if not isinstance(indices, list):
            raise DatasetError(
                "must be a list of 0-based image indices",
                where=fieldname,
                hint="Write [] for an empty split (ECVL fails on an empty value).",
            )
        array = np.asarray(indices) if indices else np.zeros(0, dtype=np.int64)
        # numpy reads `true` among integers as 1: look for booleans by type.
        if array.dtype.kind not in "iu" or array.ndim != 1 or any(type(x) is bool for x in indices):
            array = np.asarray(_indices_as_ecvl_reads_them(indices, fieldname), dtype=np.int64)
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


def _indices_as_ecvl_reads_them(indices: list, fieldname: str) -> list[int]:
    """Split entries through as<int> like ECVL (dataset_parser.cpp:292): quoted "3" is 3."""
    result = []
    for j, x in enumerate(indices):
        value = x if type(x) is int else ecvl_int(x) if type(x) is str else None
        if value is None:
            raise DatasetError(f"{x!r} is not an image index", where=f"{fieldname}[{j}]")
        result.append(value)
    return result


def _check_not_listed_twice(
    array: np.ndarray, seen: np.ndarray, k: int, names: list[Any], fieldname: str
) -> None:
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
    # A sort and a neighbour compare: np.unique on 1M indices costs 20x more (issue 15).
    ordered = np.sort(array)
    repeated = np.flatnonzero(ordered[1:] == ordered[:-1])
    if repeated.size:
        twice = int(ordered[repeated[0]])  # the smallest index listed twice
        j = int(np.flatnonzero(array == twice)[1])
        raise DatasetError(
            f"image {twice} is listed twice in this split",
            where=f"{fieldname}[{j}]",
            hint="Each image belongs to at most one split.",
        )


def check_files(
    dataset: Dataset, *, where: str | None = None, allow_roots: Iterable[str | os.PathLike[str]] = ()
) -> None:
    """Raise unless every image and ground-truth file is a regular file inside the allowed roots.

    Only when asked: it reads the disk. See distml.data.trust for the rule.
    """
    from distml.data.trust import check_locations

    check_locations(dataset, allow_roots=allow_roots, read=True, where=where)


# --------------------------------------------------------------------------- writing


def write_dataset(dataset: Dataset, path: str | os.PathLike[str]) -> Path:
    """Write ``dataset`` to ``path`` atomically, rewriting relative paths for its folder.

    Locations relative to ``dataset.root`` are rewritten to stay valid from the folder
    of ``path``; absolute ones are kept. The file appears only once fully written.
    """
    path = Path(path)
    return write_text_atomic(path, dumps_dataset(dataset, relocate_to=path.parent))


def dumps_dataset(dataset: Dataset, *, relocate_to: Path | None = None) -> str:
    """The DTD YAML text of ``dataset`` (see the module docstring for why not a YAML library).

    What ECVL reads back is what ``dataset`` means: a class name that ECVL would take for an
    index is written as its index, a ground-truth path that would read as an index or a class
    gets a ``./`` prefix, and the ground-truth path of an image whose locations are all
    absolute is written absolute (ECVL 1.0.3 resolves a relative one only alongside a
    relative location, dataset_parser.cpp:181-188).
    """
    return dumps_dataset_and_scan(dataset, relocate_to=relocate_to)[0]


def dumps_dataset_and_scan(dataset: Dataset, *, relocate_to: Path | None = None) -> tuple[str, bool]:
    """dumps_dataset's text, and whether every path in it is relative and free of ``..``.

    The scan rides along the writing (no second pass over 1M images): when it is True, every
    location stays inside the dataset's folder by name and write_parts has nothing to check.
    """
    plain = [True]
    entry = _entry_writer(dataset, relocate_to, plain)
    lines = [f"name: {_quote(dataset.name)}"]
    if dataset.description is not None:
        lines.append(f"description: {_quote(dataset.description)}")
    lines.append(f"classes: {_flow(dataset.classes)}")
    if dataset.features:
        lines.append(f"features: {_flow(dataset.features)}")
    if dataset.images:
        lines.append("images:")
        lines.extend(map(entry, dataset.images))
    else:
        lines.append("images: []")
    if dataset.split is not None:
        lines.append("split:" if dataset.split else "split: {}")
        for key, indices in dataset.split.items():
            lines.append(f"  {_quote(key)}: [{', '.join(map(str, indices))}]")
    lines.append("")
    return "\n".join(lines), plain[0]


#: Prefixes of the locations written as they are: absolute paths, and URLs (see _is_absolute).
_KEPT = ("/", "http://", "https://")


def _is_absolute(location: str) -> bool:
    """Absolute paths and URLs are kept as written (ECVL resolves neither, dataset_parser.cpp:182)."""
    return location.startswith("/") or (location.startswith(("http://", "https://")) and is_url(location))


def _entry_writer(dataset: Dataset, relocate_to: Path | None, plain: list[bool]):
    """A function writing one ``images`` entry, its relative paths rewritten to hold from ``relocate_to``.

    One closure with everything it needs bound locally: it runs once per image (1M for big datasets).
    ``plain[0]`` becomes False at the first path that is absolute, a URL, or holds ``..``.
    """
    prefix = ""
    if relocate_to is not None:
        prefix = os.path.relpath(os.path.abspath(dataset.root), os.path.abspath(relocate_to)).replace(os.sep, "/")
        prefix = "" if prefix == "." else prefix + "/"
    root = dataset.root
    classes = {name: i for i, name in enumerate(dataset.classes)}
    # Class names that FindLabel would read as an integer are written as their index.
    class_text = {name: (_quote(name) if ecvl_int(name) is None else str(i)) for name, i in classes.items()}
    kept, int_first, quote = _KEPT, _INT_FIRST, _quote

    def relocate(location: str) -> str:
        return location if location.startswith(kept) and _is_absolute(location) else prefix + location

    def path_text(label: str, relative_location: bool) -> str:
        if relative_location or (label.startswith(kept) and _is_absolute(label)):
            written = relocate(label)
        else:
            written = os.path.abspath(os.path.join(root, label)).replace(os.sep, "/")
        if written in classes or (written[:1] in int_first and ecvl_int(written) is not None):
            written = "./" + written
        return quote(written)

    def label_text(label: Label, relative_location: bool) -> str:
        if type(label) is int:
            return str(label)
        if type(label) is str:
            return class_text.get(label) or path_text(label, relative_location)
        if isinstance(label, list):
            for item in label:
                if type(item) is str and item not in classes:
                    raise DatasetError(
                        f"a list label holds the ground-truth path {item!r}",
                        hint="ECVL keeps only the last path of a list label; give one path, or classes only.",
                    )
            return "[" + ", ".join(label_text(item, relative_location) for item in label) + "]"
        raise DatasetError(f"{label!r} is not a label", hint="A label is a class, an index, a path or a list.")

    def entry(image: Image) -> str:
        location = image.location
        label = image.label
        if type(location) is str:
            if location.startswith(kept) or ".." in location:
                plain[0] = False
                relative = not _is_absolute(location)
            else:
                relative = True
            written = quote(prefix + location if relative else location)
        else:
            plain[0] = False
            relative = not all(_is_absolute(plane) for plane in location)
            written = _flow([relocate(plane) for plane in location])
        if label is None and image.values is None:
            return f"  - {written}"
        text = f"  - location: {written}"
        if label is not None:
            if (
                type(label) is str
                and relative
                and not classes
                and label[:1] not in int_first
                and not label.startswith(kept)
                and ".." not in label
            ):
                # The common segmentation case: a relative mask path beside a relative image.
                label_written = quote(prefix + label)
            else:
                if type(label) is str and label not in classes:
                    plain[0] = False
                label_written = label_text(label, relative)
            text += f"\n    label: {label_written}"
        if image.values is not None:
            text += f"\n    values: {_json(image.values)}"
        return text

    return entry


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
