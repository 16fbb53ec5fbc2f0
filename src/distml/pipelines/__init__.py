"""KFP pipelines that wire the components of distml.components.

One module per pipeline, ``pipelines/<name>.py`` defining a ``@dsl.pipeline`` function called
``<name>``; list the name in PIPELINE_NAMES and ``distml compile`` writes it to
``compiled/<name>.yaml`` (a test checks the committed files are current). The modules are
imported on demand, not at package import: KFP is slow to load.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from distml.errors import DistmlError

if TYPE_CHECKING:
    from kfp.dsl.graph_component import GraphComponent

COMPILED_DIR = Path(__file__).parent / "compiled"

# One line per pipeline module: "train_select_deploy", ...
PIPELINE_NAMES: tuple[str, ...] = (
    "train_select_deploy",
    "distributed_inference",
    "federated_average",
    "end_to_end",
)


def all_pipelines() -> dict[str, GraphComponent]:
    """Every pipeline by name, each imported from ``distml.pipelines.<name>``."""
    return {name: getattr(importlib.import_module(f"{__name__}.{name}"), name) for name in PIPELINE_NAMES}


def get_pipeline(name: str) -> GraphComponent:
    """The pipeline called NAME, or an error that lists the known names."""
    pipelines = all_pipelines()
    if name not in pipelines:
        known = ", ".join(sorted(pipelines)) or "none yet"
        raise DistmlError(f"unknown pipeline {name!r}", hint=f"Known pipelines: {known}")
    return pipelines[name]
