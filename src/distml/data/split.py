"""The split engine: cut a DTD dataset into N part files, by DeepHealth's rules, done right.

DeepHealth's rules: every part gets floor(total / N) images and the last part the rest;
every part keeps the dataset's training/validation/test proportions. Where DeepHealth's
own engine (``dhealth/split-yaml``) falls short, this one does not:

* it assigns splits by position inside each part, so an image of the training list can
  land in a part's test list; here every image stays in its original split;
* it can write more parts than asked when images are few; here exactly N, or an error;
* it can emit indices out of range; here indices are re-numbered 0..n-1 within each part;
* it drops ``classes`` of classification datasets; here classes, features, values and
  list labels are kept.

How the counts are chosen: all parts but the last have the same size s, so each gets the
same proportional share s*c_k/T of split k (c_k images in split k, T in all). Each part
takes floor(share) of every split and the r images left are handed out as one extra image
of r different splits; the extras of split k across the N-1 parts are its share of the
fractional parts (largest remainder), dealt out round-robin. So every split of every part
but the last is within one image of its share, and no split runs out before the last part.

Images in no split (a partial ``split`` section) form one more group and are spread the
same way; a dataset without ``split`` is cut by position, and its parts have no split.
Within a part, images are ordered split by split, each in the order the split lists them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from distml.data.dtd import Dataset, dumps_dataset_and_scan
from distml.data.trust import check_locations, recorded_roots
from distml.errors import DatasetError
from distml.folders import (
    MANIFEST_FILE,
    PARTS_MANIFEST,
    PartInfo,
    PartsManifest,
    read_parts_manifest,
    write_parts_manifest,
)
from distml.staging import exclusive_writer, staged_files


def part_sizes(total: int, parts: int) -> list[int]:
    """floor(total/parts) for every part, the remainder on the last (DeepHealth's rule)."""
    _check_parts(total, parts)
    size = total // parts
    return [size] * (parts - 1) + [total - size * (parts - 1)]


def _check_parts(total: int, parts: int) -> None:
    if parts < 1:
        raise DatasetError(f"cannot split into {parts} parts", hint="Ask for 1 part or more.")
    if parts > total:
        raise DatasetError(
            f"cannot split {total} images into {parts} parts (a part would be empty)",
            hint=f"Ask for at most {total} parts.",
        )


def group_quotas(group_sizes: list[int], parts: int) -> list[list[int]]:
    """How many images of each group (split) each part gets: quotas[part][group]."""
    total = sum(group_sizes)
    sizes = part_sizes(total, parts)
    size = sizes[0]
    groups = len(group_sizes)
    floors = [size * c // total for c in group_sizes]
    remainders = [size * c % total for c in group_sizes]  # fractional share x total
    extras_per_part = size - sum(floors)
    # Share out extras_per_part * (parts - 1) extra images among groups by their fractions.
    ideal = [r * (parts - 1) for r in remainders]  # x total
    extras = [x // total for x in ideal]
    leftover = extras_per_part * (parts - 1) - sum(extras)
    by_fraction = sorted(range(groups), key=lambda k: (-(ideal[k] % total), k))
    for k in by_fraction[:leftover]:
        extras[k] += 1
    # Deal them out column by column so no part gets two extras of one group.
    dealt = [k for k in range(groups) for _ in range(extras[k])]
    quotas = [list(floors) for _ in range(parts - 1)]
    for position, k in enumerate(dealt):
        quotas[position % (parts - 1)][k] += 1
    last = [c - sum(q[k] for q in quotas) for k, c in enumerate(group_sizes)]
    quotas.append(last)
    return quotas


def split_dataset(dataset: Dataset, parts: int) -> list[Dataset]:
    """Cut ``dataset`` into ``parts`` datasets (same root: write them with write_parts)."""
    total = len(dataset.images)
    _check_parts(total, parts)
    group_names, group_members = _groups(dataset)
    quotas = group_quotas([len(m) for m in group_members], parts)
    cursors = [0] * len(group_members)
    result = []
    width = len(str(parts))
    for p, quota in enumerate(quotas):
        images = []
        split: dict[str, list[int]] = {}
        for k, count in enumerate(quota):
            members = group_members[k][cursors[k] : cursors[k] + count]
            cursors[k] += count
            name = group_names[k]
            if name is not None:
                split[name] = list(range(len(images), len(images) + count))
            images.extend(dataset.images[i] for i in members)
        result.append(
            Dataset(
                name=f"{dataset.name}-part-{p:0{width}d}-of-{parts}",
                description=f"Part {p + 1} of {parts} of {dataset.name}"
                + (f": {dataset.description}" if dataset.description else ""),
                classes=list(dataset.classes),
                features=list(dataset.features),
                images=images,
                split=split if dataset.split is not None else None,
                root=dataset.root,
            )
        )
    return result


def _groups(dataset: Dataset) -> tuple[list[str | None], list[list[int]]]:
    """The split lists in file order, then the images in no split (group None)."""
    if dataset.split is None:
        return [None], [list(range(len(dataset.images)))]
    names: list[str | None] = list(dataset.split)
    members = [list(indices) for indices in dataset.split.values()]
    listed = set().union(*members) if members else set()
    if len(listed) < len(dataset.images):
        names.append(None)
        members.append([i for i in range(len(dataset.images)) if i not in listed])
    return names, members


def part_filename(dataset_name: str, index: int) -> str:
    """``part-000-<name>.yml``: the file-name contract of ``distml data split``."""
    return f"part-{index:03d}-{_file_safe(dataset_name)}.yml"


def _file_safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "dataset"


def write_parts(
    dataset: Dataset,
    parts: list[Dataset],
    out_dir: str | os.PathLike[str],
    *,
    allow_roots: list[str | os.PathLike[str]] | tuple = (),
) -> list[PartInfo]:
    """Write the parts and ``parts.json`` into ``out_dir``, all or nothing.

    Locations must stay inside the dataset's folder or ``allow_roots`` (checked by name:
    distml.data.trust). Only files this command wrote may be replaced: the part files listed
    in ``parts.json`` by an earlier split of the same dataset (those this run does not
    overwrite are removed, so the folder never mixes two runs). Any other existing file of
    the same name, another dataset's parts.json, or the input itself is refused. Files are
    written in a temporary folder inside ``out_dir`` and moved into place when all are written;
    ``out_dir`` is locked meanwhile (distml.staging.exclusive_writer).
    """
    out = Path(out_dir)
    filenames = [part_filename(dataset.name, p) for p in range(len(parts))]
    out.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_writer(out):  # two splits into one folder at once: the second fails, nothing mixed
        previous = _previous_parts(out, dataset.name)
        _refuse_foreign_targets(dataset, out, filenames, previous)
        roots = [os.path.relpath(os.path.abspath(dataset.root), os.path.abspath(out))]
        roots += [os.path.abspath(r) for r in allow_roots]
        if dataset.source is not None:
            roots += [r for r in recorded_roots(dataset.source) if r not in roots]
        with staged_files(out, last=MANIFEST_FILE) as staging:
            infos = []
            all_plain = True
            for p, (part, filename) in enumerate(zip(parts, filenames, strict=True)):
                # Paths are rewritten for the folder the part ends up in, not the staging one.
                text, plain = dumps_dataset_and_scan(part, relocate_to=out)
                all_plain = all_plain and plain
                (staging / filename).write_text(text, encoding="utf-8")
                infos.append(PartInfo(p, filename, len(part.images), part.split_sizes()))
            if not all_plain:  # some path is absolute, a URL or holds `..`: check them all, by name
                check_locations(dataset, allow_roots=allow_roots)
            # The roots: the folders the parts' locations were checked against, for the readers (trust.py).
            write_parts_manifest(staging, PartsManifest(dataset=dataset.name, parts=infos, roots=roots))
            for path in previous - {out / name for name in filenames}:
                path.unlink(missing_ok=True)
    return infos


def _previous_parts(out: Path, name: str) -> set[Path]:
    """The part files an earlier split of dataset ``name`` wrote here (its parts.json), if any."""
    if not PARTS_MANIFEST.exists(out):
        return set()
    manifest = read_parts_manifest(out)
    if manifest.dataset != name:
        raise DatasetError(
            f"holds the parts of another dataset ({manifest.dataset!r}, see {MANIFEST_FILE})",
            where=str(out),
            hint="Split into another folder, or remove those parts first (cleanup_parts).",
        )
    return {out / info.file for info in manifest.parts}


def _refuse_foreign_targets(dataset: Dataset, out: Path, filenames: list[str], previous: set[Path]) -> None:
    """Replace only what an earlier split wrote, and never the input file."""
    targets = {out / name for name in filenames} | previous | {out / MANIFEST_FILE}
    if dataset.source is not None and dataset.source.exists():
        source = dataset.source.resolve()
        if any(target.exists() and target.resolve() == source for target in targets):
            raise DatasetError(
                f"the input {dataset.source} would be replaced or removed by this split",
                where=str(out),
                hint="Split into another folder.",
            )
    for name in filenames:
        target = out / name
        if (target.exists() or target.is_symlink()) and target not in previous:
            raise DatasetError(
                f"{name} exists and was not written by a split of {dataset.name!r} here",
                where=str(out),
                hint="Split into another folder, or move that file away.",
            )
