"""Every component body is one call into the library.

A lightweight component's body is copied into the compiled YAML, so logic kept there would be
frozen into every uploaded pipeline while the library in the image moves on. A body may import
one distml module and, for KFP's plumbing, ``logging`` and ``collections`` (NamedTuple
outputs); reading or writing files (pathlib, shutil, json, os) belongs in the library.
"""

from __future__ import annotations

import ast
import inspect
import textwrap

import pytest

import distml.components
from distml.data.sources import load_data, split_data_folder
from distml.errors import DistmlError

ALLOWED_PLUMBING = {"logging", "collections"}


def _body_imports(component) -> list[tuple[str, int]]:
    """(top-level module, names imported) of every import statement in the component's body."""
    function = ast.parse(textwrap.dedent(inspect.getsource(component.python_func))).body[0]
    imports = []
    for node in ast.walk(function):
        if isinstance(node, ast.ImportFrom):
            imports.append((node.module.split(".")[0], len(node.names)))
        elif isinstance(node, ast.Import):
            imports += [(alias.name.split(".")[0], 1) for alias in node.names]
    return imports


@pytest.mark.parametrize("name", sorted(distml.components.all_components()))
def test_a_component_body_imports_one_library_module_and_no_file_handling(name):
    imports = _body_imports(distml.components.all_components()[name])
    library = [entry for entry in imports if entry[0] == "distml"]
    others = sorted({module for module, _ in imports if module != "distml"} - ALLOWED_PLUMBING)
    assert len(library) == 1, f"{name} imports from distml {len(library)} times: one call into the library"
    assert not others, f"{name}'s body does its own work with {', '.join(others)}: move it into the library"


def test_splitting_a_data_folder_of_arrays_says_it_needs_a_dtd_dataset(tmp_path):
    load_data("synthetic:digits", tmp_path / "dtd", images=20)
    parts = split_data_folder(tmp_path / "dtd", 2, tmp_path / "parts")
    assert [part.file[:9] for part in parts] == ["part-000-", "part-001-"]
    assert sum(part.images for part in parts) == 20
    load_data("sklearn:digits", tmp_path / "npz")
    with pytest.raises(DistmlError, match="not a DTD one") as caught:
        split_data_folder(tmp_path / "npz", 2, tmp_path / "npz-parts")
    assert "shard_data" in caught.value.hint
    assert not (tmp_path / "npz-parts").exists()
