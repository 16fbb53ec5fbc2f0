"""KFP components: thin wrappers that call the core library inside the component image.

One module each; every component is also written as component YAML under ``yaml/``
(``distml compile`` writes them, a test checks the committed ones are current) so it can be
loaded with ``kfp.components.load_component_from_file`` without this package.
"""

from __future__ import annotations

from pathlib import Path

YAML_DIR = Path(__file__).parent / "yaml"


def all_components() -> dict:
    """Every component by name (imported here, not at package import: KFP is slow to load)."""
    from distml.components.average_models import average_models
    from distml.components.check_parameters import check_parameters
    from distml.components.cleanup_parts import cleanup_parts
    from distml.components.deploy_kserve import deploy_kserve
    from distml.components.gather_metrics import gather_metrics
    from distml.components.infer_shard import infer_shard
    from distml.components.load_data import load_data
    from distml.components.select_model import select_model
    from distml.components.shard_data import shard_data
    from distml.components.split_dataset import split_dataset
    from distml.components.train import train

    return {
        "check_parameters": check_parameters,
        "load_data": load_data,
        "split_dataset": split_dataset,
        "shard_data": shard_data,
        "train": train,
        "infer_shard": infer_shard,
        "gather_metrics": gather_metrics,
        "cleanup_parts": cleanup_parts,
        "select_model": select_model,
        "average_models": average_models,
        "deploy_kserve": deploy_kserve,
    }


def write_component_yaml(out_dir: Path = YAML_DIR) -> list[Path]:
    """Compile every component to ``<out_dir>/<name>.yaml``."""
    from kfp import compiler

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, component in all_components().items():
        path = out_dir / f"{name}.yaml"
        compiler.Compiler().compile(component, str(path))
        paths.append(path)
    return paths
