"""The DeepHealth Toolkit Dataset format: parsing, validation errors, writing, round trips."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from distml.data.dtd import Dataset, Image, check_files, dumps_dataset, read_dataset, write_dataset
from distml.errors import DatasetError


def write(tmp_path: Path, text: str, name: str = "data.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_reads_every_image_form_and_keeps_split_order(tmp_path):
    path = write(
        tmp_path,
        """\
        name: skin
        description: three forms of image entries
        classes: [benign, malignant]
        features: [age, sex]
        images:
          - plain.png
          - location: a.png
            label: malignant
          - location: b.png
            label: 0
            values: {age: 41, sex: F}
          - location: c.png
            label: [benign, 1]
        split:
          test: [3]
          training: [0, 2]
          validation: [1]
        """,
    )
    dataset = read_dataset(path)
    assert dataset.name == "skin"
    assert dataset.classes == ["benign", "malignant"]
    assert [image.location for image in dataset.images] == ["plain.png", "a.png", "b.png", "c.png"]
    assert dataset.images[1].label == "malignant"
    assert dataset.images[2].values == {"age": 41, "sex": "F"}
    assert dataset.images[3].label == ["benign", 1]
    assert list(dataset.split) == ["test", "training", "validation"]
    assert dataset.resolve("a.png") == tmp_path / "a.png"
    assert not dataset.is_segmentation
    assert dataset.class_index("malignant") == 1


@pytest.mark.parametrize(
    ("body", "where", "what"),
    [
        ("images: [a.png, b.png]\nsplit: {training: [0, 2]}\n", "split.training[1]", "index 2 out of range"),
        ("images: [a.png, b.png]\nsplit: {training: [0], test: [0]}\n", "split.test[0]", "listed twice"),
        ("images: [a.png, b.png]\nsplit: {training: [1, 1]}\n", "split.training[1]", "listed twice"),
        ("images: [a.png]\nsplit: {training: [x]}\n", "split.training[0]", "not an image index"),
        ("images: [a.png, b.png]\nsplit: {training: [0, true]}\n", "split.training[1]", "True is not an image index"),
        ("classes: [cat]\nimages:\n  - {location: a.png, label: 3}\n", "images[0].label", "out of range"),
        ('classes: [cat]\nimages:\n  - {location: a.png, label: "-1"}\n', "images[0].label", "index -1 out of range"),
        ("images:\n  - {location: a.png, label: 2}\n", "images[0].label", "no `classes`"),
        ("classes: [a]\nimages:\n  - {location: x.png, label: [a, gt.png]}\n", "images[0].label", "ground-truth path"),
        ("images:\n  - {location: a.png, label: null}\n", "images[0].label", "empty label"),
        ("images:\n  - {location: a.png, label: 1.5}\n", "images[0].label", "1.5 is not a label"),
        ("images:\n  - {location: a.png, values: 3}\n", "images[0].values", "not a list or mapping"),
        ("features: [f]\nimages:\n  - {location: a.png, values: {g: 1}}\n", "images[0].values", "unknown feature"),
        ("images:\n  - {label: a.png}\n", "images[0].location", "`location`"),
        ("images:\n  - {location: 7}\n", "images[0].location", "7 is not a location"),
        ("images:\n  - {location: a.png, labels: b.png}\n", "images[0]", "unknown key 'labels' (did you mean"),
        ("images: [a.png]\nsplit: {test: }\n", "split.test", "must be a list"),
        ("name: x\n", "", "field `images` is missing"),
        ("images: [a.png]\nsplits: {}\n", "", "unknown key 'splits' (did you mean `split`?)"),
    ],
)
def test_invalid_content_names_the_file_and_field(tmp_path, body, where, what):
    path = write(tmp_path, body)
    with pytest.raises(DatasetError) as caught:
        read_dataset(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {where}".rstrip())
    assert what in message


def test_malformed_yaml_reports_the_line(tmp_path):
    path = write(tmp_path, "name: x\nimages: [a.png, b.png\nsplit: {}\n")
    with pytest.raises(DatasetError, match=r"malformed YAML: .*line 3"):
        read_dataset(path)


def test_missing_file_says_how_to_make_one(tmp_path):
    with pytest.raises(DatasetError, match="file not found.*distml data synth"):
        read_dataset(tmp_path / "absent.yml")


def test_check_files_finds_missing_images_and_masks(tmp_path):
    (tmp_path / "a.png").write_bytes(b"png")
    path = write(tmp_path, "images:\n  - {location: a.png, label: masks/a.png}\n  - b.png\n")
    dataset = read_dataset(path)
    with pytest.raises(DatasetError, match=r"images\[0\]\.label masks/a.png does not exist and 1 more"):
        check_files(dataset)


def test_written_files_read_back_identically_with_pyyaml_and_ours(tmp_path):
    dataset = Dataset(
        name="2001-01-01",  # date-like: must stay a string
        description='quotes " and \\ and\nnewlines',
        classes=["yes", "null", "1.5"],
        features=["age"],
        images=[
            Image("img/0.png", "yes", {"age": 3}),
            Image("img/1.png", 2),
            Image("img/2.png", ["null", 0]),
            Image("img/ü 3.png"),
        ],
        split={"training": [0, 3], "test": [2], "validation": []},
        root=tmp_path,
    )
    path = write_dataset(dataset, tmp_path / "out.yml")
    assert read_dataset(path) == dataset
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert document["name"] == "2001-01-01"
    assert document["classes"] == ["yes", "null", "1.5"]
    assert document["images"][0] == {"location": "img/0.png", "label": "yes", "values": {"age": 3}}
    assert document["images"][3] == "img/ü 3.png"
    assert document["split"] == {"training": [0, 3], "test": [2], "validation": []}


def test_writing_elsewhere_rewrites_relative_paths_only(tmp_path):
    source = write(
        tmp_path,
        "images:\n  - {location: img/a.png, label: gt/a.png}\n  - /abs/b.png\n",
        name="src.yml",
    )
    dataset = read_dataset(source)
    moved = read_dataset(write_dataset(dataset, tmp_path / "deeper" / "copy.yml"))
    assert moved.images[0] == Image("../img/a.png", "../gt/a.png")
    assert moved.images[1].location == "/abs/b.png"
    assert moved.resolve(moved.images[0].location).resolve() == (tmp_path / "img/a.png").resolve()


def test_a_failed_write_leaves_no_file(tmp_path):
    dataset = Dataset(name="x", images=[Image("a.png", None, {"bad": float("nan")})], root=tmp_path)
    with pytest.raises(ValueError):
        write_dataset(dataset, tmp_path / "x.yml")
    assert list(tmp_path.iterdir()) == []


names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    classes=st.lists(names, min_size=1, max_size=4, unique=True),
    locations=st.lists(names, min_size=1, max_size=8),
    data=st.data(),
)
def test_parse_write_parse_is_identity(tmp_path_factory, classes, locations, data):
    labels = [
        data.draw(st.one_of(st.none(), st.sampled_from(classes), st.integers(0, len(classes) - 1))) for _ in locations
    ]
    order = data.draw(st.permutations(range(len(locations))))
    cut = data.draw(st.integers(0, len(locations)))
    dataset = Dataset(
        name=data.draw(names),
        classes=classes,
        images=[Image(location, label) for location, label in zip(locations, labels, strict=True)],
        split={"training": list(order[:cut]), "test": list(order[cut:])},
    )
    folder = tmp_path_factory.mktemp("roundtrip")
    path = folder / "d.yml"
    path.write_text(dumps_dataset(dataset), encoding="utf-8")
    assert read_dataset(path) == dataset
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["classes"] == classes
