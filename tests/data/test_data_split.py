"""The split engine: DeepHealth's rules, and where we do better than DeepHealth's own engine."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distml.data.dtd import Dataset, Image, read_dataset, write_dataset
from distml.data.split import group_quotas, part_sizes, split_dataset, write_parts
from distml.errors import DatasetError
from distml.folders import read_parts_manifest


def make_dataset(root: Path, counts: dict[str, int], *, unassigned: int = 0, classes=("a", "b")) -> Dataset:
    """Images interleaved across splits, so a positional split would mix them up."""
    total = sum(counts.values()) + unassigned
    images = [Image(f"img/{i:05d}.png", i % len(classes)) for i in range(total)]
    split: dict[str, list[int]] = {name: [] for name in counts}
    remaining = dict(counts)
    i = 0
    while any(remaining.values()):
        for name in counts:
            if remaining[name]:
                split[name].append(i)
                remaining[name] -= 1
                i += 1
    return Dataset(name="toy", classes=list(classes), images=images, split=split, root=root)


def test_part_sizes_follow_deephealth_rule():
    assert part_sizes(2750, 4) == [687, 687, 687, 689]
    assert part_sizes(10, 10) == [1] * 10
    assert part_sizes(7, 1) == [7]


@pytest.mark.parametrize("parts", [0, -1, 11])
def test_impossible_part_counts_are_refused(tmp_path, parts):
    dataset = make_dataset(tmp_path, {"training": 7, "test": 3})
    with pytest.raises(DatasetError, match="part"):
        split_dataset(dataset, parts)


@settings(max_examples=200, deadline=None)
@given(
    counts=st.lists(st.integers(0, 60), min_size=1, max_size=4).filter(lambda c: sum(c) > 0),
    unassigned=st.integers(0, 5),
    data=st.data(),
)
def test_split_rules_hold_for_any_sizes(counts, unassigned, data):
    names = ["training", "validation", "test", "extra"][: len(counts)]
    dataset = make_dataset(Path("."), dict(zip(names, counts, strict=True)), unassigned=unassigned)
    total = len(dataset.images)
    n = data.draw(st.integers(1, total))
    parts = split_dataset(dataset, n)

    # Exactly N parts, floor(total/N) each, the rest on the last one.
    assert len(parts) == n
    assert [len(p.images) for p in parts] == part_sizes(total, n)
    # Every image in exactly one part, in its original split; indices renumbered and in range.
    original_split = {dataset.images[i].location: name for name, idx in dataset.split.items() for i in idx}
    seen = []
    for part in parts:
        assert part.classes == dataset.classes
        listed = []
        for name, indices in part.split.items():
            assert all(0 <= i < len(part.images) for i in indices)
            listed += indices
            for i in indices:
                assert original_split[part.images[i].location] == name
        assert len(listed) == len(set(listed))
        unlisted = set(range(len(part.images))) - set(listed)
        assert all(part.images[i].location not in original_split for i in unlisted)
        seen += [image.location for image in part.images]
    assert sorted(seen) == sorted(image.location for image in dataset.images)
    # Proportions: every part but the last within one image of its share, per split.
    for part in parts[:-1]:
        for name, count in zip(names, counts, strict=True):
            share = Fraction(len(part.images) * count, total)
            assert abs(len(part.split[name]) - share) < 1


def test_quotas_of_the_issue_example():
    quotas = group_quotas([1925, 275, 550], 4)  # 2,750 images, 70/10/20
    assert [sum(q) for q in quotas] == [687, 687, 687, 689]
    assert [sum(q[k] for q in quotas) for k in range(3)] == [1925, 275, 550]


def test_better_than_deephealth_engine(tmp_path):
    """DeepHealth's engine re-splits by position, writes extra parts, and drops classes: we don't."""
    dataset = make_dataset(tmp_path, {"training": 3, "validation": 1, "test": 1})
    infos = write_parts(dataset, split_dataset(dataset, 3), tmp_path / "parts")
    assert len(infos) == 3
    assert sorted(p.name for p in (tmp_path / "parts").glob("part-*.yml")) == [i.file for i in infos]
    test_image = dataset.images[dataset.split["test"][0]].location
    found_in = []
    for info in infos:
        part = read_dataset(tmp_path / "parts" / info.file)
        assert part.classes == ["a", "b"]
        for name, indices in part.split.items():
            found_in += [name for i in indices if Path(part.images[i].location).name == Path(test_image).name]
    assert found_in == ["test"]  # in exactly one part, and still in its test split


def test_parts_are_valid_from_their_folder_and_byte_identical(tmp_path):
    dataset = make_dataset(tmp_path / "data", {"training": 14, "validation": 2, "test": 4})
    source = write_dataset(dataset, tmp_path / "data" / "set.yml")
    for image in dataset.images:
        (tmp_path / "data" / image.location).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / image.location).write_bytes(b"x")
    loaded = read_dataset(source)
    out1, out2 = tmp_path / "out1" / "nested", tmp_path / "out2"
    write_parts(loaded, split_dataset(loaded, 3), out1)
    write_parts(loaded, split_dataset(loaded, 3), out2)
    for info in read_parts_manifest(out1).parts:
        part = read_dataset(out1 / info.file)
        assert part.name == f"toy-part-{info.index}-of-3"
        for image in part.images:
            assert part.resolve(image.location).is_file()
        text1 = (out1 / info.file).read_text()
        text2 = (out2 / info.file).read_text()
        # Same input, same output: the texts differ only by the relative path to the images.
        assert text1.replace("../../data/", "") == text2.replace("../data/", "")
    again = tmp_path / "out1" / "nested"
    before = {p.name: p.read_bytes() for p in again.iterdir()}
    write_parts(loaded, split_dataset(loaded, 3), again)
    assert {p.name: p.read_bytes() for p in again.iterdir()} == before


def test_rerun_with_fewer_parts_removes_stale_parts(tmp_path):
    dataset = make_dataset(tmp_path, {"training": 8, "test": 2})
    write_parts(dataset, split_dataset(dataset, 4), tmp_path / "p")
    write_parts(dataset, split_dataset(dataset, 2), tmp_path / "p")
    assert sorted(p.name for p in (tmp_path / "p").glob("part-*")) == ["part-000-toy.yml", "part-001-toy.yml"]
    assert json.loads((tmp_path / "p" / "parts.json").read_text())["dataset"] == "toy"


def test_dataset_without_split_is_cut_by_position(tmp_path):
    dataset = Dataset(name="nosplit", images=[Image(f"{i}.png") for i in range(7)], root=tmp_path)
    parts = split_dataset(dataset, 3)
    assert [[im.location for im in p.images] for p in parts] == [
        ["0.png", "1.png"],
        ["2.png", "3.png"],
        ["4.png", "5.png", "6.png"],
    ]
    assert all(p.split is None for p in parts)
