"""Compile pipelines (and components) to YAML, and tell which committed YAML is stale."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kfp import compiler
from kfp.dsl.graph_component import GraphComponent

from distml import pipelines as registry


def compile_pipeline(pipeline: GraphComponent, path: Path) -> Path:
    """Compile to PATH through a temporary name, so a failed compile leaves no half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".partial-{path.name}")
    try:
        compiler.Compiler().compile(pipeline, str(partial))
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def compile_all(out_dir: Path = registry.COMPILED_DIR) -> list[Path]:
    """Every pipeline of the registry as ``<out_dir>/<name>.yaml``."""
    return [compile_pipeline(pipeline, out_dir / f"{name}.yaml") for name, pipeline in registry.all_pipelines().items()]


def stale_files(compiled: Mapping[str, Any], out_dir: Path) -> list[str]:
    """What differs between a fresh compile of COMPILED (name -> pipeline or component) and OUT_DIR."""
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, item in compiled.items():
            fresh = compile_pipeline(item, Path(tmp) / f"{name}.yaml")
            committed = out_dir / f"{name}.yaml"
            if not committed.is_file():
                problems.append(f"{committed}: missing")
            elif committed.read_bytes() != fresh.read_bytes():
                problems.append(f"{committed}: differs from a fresh compile")
    extra = sorted(p for p in out_dir.glob("*.yaml") if p.stem not in compiled) if out_dir.is_dir() else []
    problems.extend(f"{path}: no pipeline or component of that name" for path in extra)
    return problems
