"""One rule for every command: a bad option value or argument is a usage error (exit 2, as click's
own), a bad input file exits 1 with one line naming it."""

import pytest
from click.testing import CliRunner

from distml.cli import main

DEPLOY = ["deploy", "--name", "digits", "--storage-uri", "pvc://models/best", "--dry-run"]
TRAIN_ON_CLUSTER = ["train", "--launcher", "kubernetes", "--model", "mlp", "--data", "sklearn:digits", "--out", "m"]

BAD_OPTION_VALUES = {
    "deploy --name": ["deploy", "--name", "Not_A_Label", "--storage-uri", "pvc://models/best", "--dry-run"],
    "deploy --storage-uri": ["deploy", "--name", "digits", "--storage-uri", "ftp://models/best", "--dry-run"],
    "deploy --runtime-version": [*DEPLOY, "--runtime-version", "not a tag"],
    "deploy --scale-metric alone": [*DEPLOY, "--scale-metric", "cpu"],
    "deploy --min-replicas above --max-replicas": [*DEPLOY, "--min-replicas", "3", "--max-replicas", "2"],
    "deploy s3:// without --service-account": ["deploy", "--name", "d", "--storage-uri", "s3://b/m", "--dry-run"],
    "train --pvc": [*TRAIN_ON_CLUSTER, "--pvc", "no-mount-path", "--dry-run"],
    "train --data": ["train", "--model", "mlp", "--data", "bogus:source", "--out", "m"],
    "data load SOURCE": ["data", "load", "bogus:source", "--out", "d"],
    "run NAME": ["run", "no_such_pipeline", "--local"],
    "run --param without =": ["run", "train_select_deploy", "--local", "--param", "epochs"],
    "run --param unknown": ["run", "train_select_deploy", "--local", "--param", "no_such=1"],
    "run --param of the wrong type": ["run", "train_select_deploy", "--local", "--param", "epochs=many"],
    "run --param bad toleration": [
        "run",
        "train_select_deploy",
        "--local",
        "--param",
        'tolerations=[{"effect": "Sometimes"}]',
    ],
    "submit --host": ["submit", "train_select_deploy", "--host", "kfp.example.com"],
    "upload --host": ["upload", "train_select_deploy", "--host", "kfp.example.com"],
}


@pytest.mark.parametrize("case", sorted(BAD_OPTION_VALUES))
def test_a_bad_option_value_is_a_usage_error(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, BAD_OPTION_VALUES[case])
    assert result.exit_code == 2, result.output
    assert "Error: Invalid value" in result.output
    assert not list(tmp_path.iterdir())  # nothing written, nothing run


BAD_INPUT_FILES = {
    "data info": ["data", "info", "missing.yml"],
    "train --data dtd:": ["train", "--model", "mlp", "--data", "dtd:missing.yml", "--out", "m"],
    "data load dtd:": ["data", "load", "dtd:missing.yml", "--out", "d"],
    "deploy --target local": ["deploy", "--target", "local", "--name", "digits", "--model", "missing"],
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT_FILES))
def test_a_bad_input_file_exits_1_with_one_line(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, BAD_INPUT_FILES[case])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: ") and "missing" in result.output
