"""Pick the best of several Model folders by one metric of their ``metrics.json``.

Ties are broken by position: among models with the same value the one given first wins
(the order of the CLI arguments, or of the ``dsl.Collected`` list, which follows the
``ParallelFor`` iterations). A model whose metric is NaN (a diverged run) ranks last and is
never chosen while another model has a number.
"""

from __future__ import annotations

import math
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distml.errors import DistmlError
from distml.folders import MODEL_METRICS, read_model_metrics
from distml.staging import staged_folder
from distml.training.model_folder import KERAS_FILE, ONNX_FILE

DEFAULT_METRIC = "test_accuracy"


@dataclass(frozen=True)
class Candidate:
    """One model under comparison: where it is, what to call it, and its metrics."""

    position: int
    name: str
    folder: Path
    value: float
    metrics: dict[str, Any]


@dataclass(frozen=True)
class ModelSelection:
    """The ranking (best first) of the candidates by ``metric``."""

    metric: str
    lowest: bool
    ranked: list[Candidate]

    @property
    def chosen(self) -> Candidate:
        return self.ranked[0]

    def finite_values(self) -> dict[str, float]:
        """``"<metric> <name>"`` → value of every candidate but those at NaN (not JSON: KFP could not store it)."""
        return {f"{self.metric} {c.name}": c.value for c in self.ranked if not math.isnan(c.value)}


def select_model(
    folders: list[str | os.PathLike[str]],
    metric: str = DEFAULT_METRIC,
    *,
    lowest: bool = False,
    names: list[str] | None = None,
) -> ModelSelection:
    """Rank the Model ``folders`` by ``metric`` (highest first, or lowest first for a loss)."""
    if not folders:
        raise DistmlError("no models to select from", hint="Give at least one model folder.")
    paths = [Path(folder) for folder in folders]
    labels = names if names is not None else display_names(paths)
    candidates = []
    for i, path in enumerate(paths):
        metrics = read_model_metrics(path)
        value = _metric_value(metrics, metric, where=str(MODEL_METRICS.path(path)))
        candidates.append(Candidate(position=i, name=labels[i], folder=path, value=value, metrics=metrics))
    if all(math.isnan(c.value) for c in candidates):
        raise DistmlError(f"every model has {metric} = NaN", hint="Training diverged; there is nothing to select.")
    ranked = sorted(candidates, key=lambda c: _rank_key(c, lowest))
    return ModelSelection(metric=metric, lowest=lowest, ranked=ranked)


def display_names(paths: list[Path]) -> list[str]:
    """Short unique names: folder names, else the paths below their common prefix, else numbered.

    KFP gives every model artifact the same folder name (``.../for-loop-1-iteration-0/train/model``):
    there the iteration or execution part tells them apart.
    """
    names = [path.name for path in paths]
    if len(set(names)) == len(names):
        return names
    resolved = [path.resolve() for path in paths]
    common = len(Path(os.path.commonpath(resolved)).parts)
    names = ["/".join(path.parts[common:]) for path in resolved]
    if all(names) and len(set(names)) == len(names):
        return names
    return [f"{i}:{path.name}" for i, path in enumerate(paths)]


def copy_model_folder(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Copy a Model folder to ``target`` (absent or empty) through a temporary name, so no half copy remains."""
    out = Path(target)
    check_model_files(source)
    with staged_folder(out, what="output folder") as staging:
        shutil.copytree(source, staging, dirs_exist_ok=True)
    return out


def check_model_files(folder: str | os.PathLike[str]) -> None:
    """Refuse a Model folder whose model.keras or model.onnx is not an intact file of its format.

    Selecting only copies the chosen folder; a corrupt model file would otherwise be found only by
    the deploy or inference step after it, far from its cause.
    """
    keras_file = Path(folder) / KERAS_FILE
    if keras_file.exists():
        try:
            with zipfile.ZipFile(keras_file) as archive:
                damaged = archive.testzip()
        except (zipfile.BadZipFile, OSError) as err:
            damaged = str(err)
        if damaged is not None:
            raise DistmlError(f"is not an intact Keras archive ({damaged})", where=str(keras_file))
    onnx_file = Path(folder) / ONNX_FILE
    if onnx_file.exists():
        try:
            import onnx
        except ImportError:  # no onnx package: ONNX Runtime will judge the file where it is used
            return
        try:
            onnx.load(str(onnx_file), load_external_data=False)
        except Exception as err:  # protobuf's DecodeError and onnx's own errors
            raise DistmlError(f"is not an ONNX model ({err.__class__.__name__}: {err})", where=str(onnx_file)) from None


def _rank_key(candidate: Candidate, lowest: bool) -> tuple[bool, float, int]:
    """NaN last, then by value in the asked direction, then by position (first given wins a tie)."""
    if math.isnan(candidate.value):
        return (True, 0.0, candidate.position)
    value = candidate.value if lowest else -candidate.value
    return (False, value, candidate.position)


def _metric_value(metrics: dict[str, Any], metric: str, *, where: str) -> float:
    if metric not in metrics:
        numeric = sorted(key for key, value in metrics.items() if _is_number(value))
        raise DistmlError(
            f"no metric {metric!r}",
            where=where,
            hint=f"Use one of: {', '.join(numeric) or '(none)'}.",
        )
    value = metrics[metric]
    if not _is_number(value):
        raise DistmlError(f"{metric} is {value!r}, not a number", where=where)
    return float(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
