"""The images block read without yaml_rs (distml.data.dtd_block) means what yaml_rs reads, or is not used."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
import yaml_rs
from hypothesis import given, settings
from hypothesis import strategies as st

from distml.data.dtd import dataset_from_document, read_dataset
from distml.data.dtd_block import split_images_block
from distml.errors import DatasetError


def outcome(document) -> object:
    """The Dataset a document makes, or the error it raises (message and where)."""
    try:
        return dataset_from_document(document, root=Path("."), where="data.yml")
    except DatasetError as err:
        return ("error", str(err))


def assert_same_as_yaml_rs(text: str) -> bool:
    """Whether the block reader took ``text``; when it did, the result is yaml_rs's."""
    document = split_images_block(text)
    if document is None:
        return False
    assert outcome(document) == outcome(yaml_rs.loads(text, parse_datetime=False))
    return True


TAKEN = [
    'images:\n  - location: "images/a.jpg"\n    label: "gt/a.png"\n  - "b.jpg"\nsplit:\n  training: [0]\n  test: [1]\n',
    "name: x\nclasses: [cat, dog]\nimages:\n- location: a/1.png\n  label: cat\n- location: a/2.png\n  label: 1\n",
    # plain scalars that are not strings: resolved by yaml_rs itself (07 is 7, 1e3 a float, null an empty label)
    "classes:\n  - a\n  - b\nimages:\n  - location: x/1.png\n    label: 07\n  - location: x/2.png\n    label: 1e3\n",
    "images:\n  - location: x/1.png\n    label: null\n",
    "images:\n  - location: x/1.png\n    label: true\n",
    "images:\n  - location: 12\n  - 3\n",
    'images:\n  - location: ""\n',
    'images:\n    - location: "a b#c: d"   \n      label: "1/2"\nsplit: {training: [0]}\n',
    "name: dup\nimages:\n  - a/1.png\nsplit:\n  training: [0, 0]\n",
    "description: |\n  text\nimages:\n  - a/1.png\n",
    "images:\n  - location: a/1.png\n    label: 0x1f\n",
]

REFUSED = [
    'images:\n  - location: "a\\tb.jpg"\n',  # an escape
    "images:\n  - location: a.jpg # comment\n",
    "images:\n  - location: &x a/1.png\n  - *x\n",
    "images:\n  - location: a/1.png\n    values: [1]\n",
    "images:\n  - location: a/1.png\n\n  - b/2.png\n",  # a blank line inside
    "images:\n  - location: a/1.png\n    lable: b\n",  # a misspelt key: yaml_rs's path names it
    "images:\n  - location: a/1.png",  # no final line break
    'name: "start\nimages:\n  - a/1.png\nend"\n',  # inside a quoted scalar
    "name: [a,\nimages:\n  - a/1.png\n]\n",  # inside a flow collection
    "images:\n  - a/1.png\nimages:\n  - b/2.png\n",  # twice
    "images:\n  - a/1.png\r\n",
    "--- |\nimages:\n  - a/1.png\n",  # a literal block scalar at the root
    "images:\n  - !!str 1\n",
    "images:\n  - location: a/1.png\n  - [a/1.png, a/2.png]\n",
]


@pytest.mark.parametrize("text", TAKEN)
def test_plain_block_is_read_as_yaml_rs_reads_it(text):
    assert assert_same_as_yaml_rs(text)


@pytest.mark.parametrize("text", REFUSED)
def test_other_shapes_are_left_to_yaml_rs(text):
    assert split_images_block(text) is None


_path_char = st.sampled_from([*"ab_./-0179eE", "é", " ", "#", ":", '"', "\\", "\t", "'"])
_token = st.text(_path_char, min_size=0, max_size=6)
_plain_words = st.sampled_from(["null", "~", "true", "False", "07", "0x1f", "1_0", ".inf", "1e3", "cat", "1/2", "-x"])


@st.composite
def _scalar(draw) -> str:
    kind = draw(st.sampled_from(["quoted", "plain", "word"]))
    if kind == "quoted":
        return '"' + draw(_token) + '"'
    if kind == "plain":
        return draw(_token) or "a"
    return draw(_plain_words)


@st.composite
def _block_text(draw) -> str:
    indent = " " * draw(st.integers(0, 3))
    lines = ["name: h", "classes: [cat, dog]", "images:"]
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            lines.append(f"{indent}- {draw(_scalar())}")
        else:
            lines.append(f"{indent}- location: {draw(_scalar())}")
            if draw(st.booleans()):
                lines.append(f"{indent}  label: {draw(_scalar())}{draw(st.sampled_from(['', '  ']))}")
    lines.append(draw(st.sampled_from(["split:\n  training: [0]", "", "# end"])))
    return "\n".join(lines) + "\n"


@settings(max_examples=400, deadline=None)
@given(_block_text())
def test_random_blocks_read_as_yaml_rs_reads_them_or_are_left_to_it(text):
    try:
        yaml_rs.loads(text, parse_datetime=False)
    except yaml_rs.YAMLDecodeError:
        assert split_images_block(text) is None  # never reads what yaml_rs refuses
        return
    assert_same_as_yaml_rs(text)


def test_read_dataset_restores_the_collector(tmp_path):
    path = tmp_path / "data.yml"
    path.write_text('images:\n  - "a.png"\n', encoding="utf-8")
    assert gc.isenabled()
    read_dataset(path)
    assert gc.isenabled()
    gc.disable()
    try:
        read_dataset(path)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_smallest_index_listed_twice_is_named(tmp_path):
    path = tmp_path / "data.yml"
    path.write_text("images: [a.png, b.png, c.png, d.png]\nsplit:\n  training: [3, 1, 3, 1]\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"training\[3\]: image 1 is listed twice in this split"):
        read_dataset(path)
