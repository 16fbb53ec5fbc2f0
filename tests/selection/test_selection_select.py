"""Selection by a named metric: direction, ties, NaN, errors, reports and the chosen copy.

Selection only reads metrics.json and copies folders, so these Model folders hold a metrics.json,
a model.json and a stand-in weights file, not a trained model.
"""

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from distml.cli import main
from distml.errors import DistmlError
from distml.selection.report import html_report, markdown_table, selection_summary, write_selection
from distml.selection.select import copy_model_folder, display_names, select_model


def model_folder(root: Path, name: str, **metrics) -> Path:
    folder = root / name
    (folder / "model" / "1").mkdir(parents=True)
    (folder / "model" / "1" / "saved_model.pb").write_bytes(name.encode())
    (folder / "model.json").write_text(json.dumps({"architecture": "mlp", "task": "classification"}))
    (folder / "metrics.json").write_text(json.dumps({"workers": 2, "global_batch_size": 64, **metrics}))
    return folder


def test_highest_accuracy_wins_by_default(tmp_path):
    folders = [
        model_folder(tmp_path, "a", test_accuracy=0.81, test_loss=0.6),
        model_folder(tmp_path, "b", test_accuracy=0.93, test_loss=0.3),
        model_folder(tmp_path, "c", test_accuracy=0.88, test_loss=0.2),
    ]
    selection = select_model(folders)
    assert selection.chosen.name == "b"
    assert [c.name for c in selection.ranked] == ["b", "c", "a"]


def test_lowest_loss_wins_with_lowest(tmp_path):
    folders = [
        model_folder(tmp_path, "a", test_accuracy=0.81, test_loss=0.6),
        model_folder(tmp_path, "b", test_accuracy=0.93, test_loss=0.3),
        model_folder(tmp_path, "c", test_accuracy=0.88, test_loss=0.2),
    ]
    assert select_model(folders, "test_loss", lowest=True).chosen.name == "c"


@pytest.mark.parametrize("lowest", [False, True])
def test_tie_goes_to_the_model_given_first(tmp_path, lowest):
    folders = [
        model_folder(tmp_path, "z", test_accuracy=0.5),
        model_folder(tmp_path, "b", test_accuracy=0.9),
        model_folder(tmp_path, "a", test_accuracy=0.9),
        model_folder(tmp_path, "y", test_accuracy=0.5),
    ]
    ranked = [c.name for c in select_model(folders, lowest=lowest).ranked]
    assert ranked == (["z", "y", "b", "a"] if lowest else ["b", "a", "z", "y"])
    # Reversing the input order reverses who wins the tie: position decides, not the name.
    reversed_ranked = [c.name for c in select_model(folders[::-1], lowest=lowest).ranked]
    assert reversed_ranked == (["y", "z", "a", "b"] if lowest else ["a", "b", "y", "z"])


def test_nan_ranks_last_and_all_nan_is_an_error(tmp_path):
    folders = [model_folder(tmp_path, "nan", test_loss=math.nan), model_folder(tmp_path, "ok", test_loss=2.0)]
    assert [c.name for c in select_model(folders, "test_loss", lowest=True).ranked] == ["ok", "nan"]
    assert select_model(folders, "test_loss").chosen.name == "ok"
    with pytest.raises(DistmlError, match="every model has test_loss = NaN"):
        select_model(folders[:1], "test_loss")


def test_missing_metric_names_the_file_and_the_metrics_there(tmp_path):
    folders = [model_folder(tmp_path, "a", test_accuracy=0.5), model_folder(tmp_path, "b", test_miou=0.7)]
    with pytest.raises(DistmlError, match=r"b/metrics.json: no metric 'test_accuracy'.*global_batch_size, test_miou"):
        select_model(folders)


def test_bad_metrics_files_are_refused(tmp_path):
    bad = model_folder(tmp_path, "a", test_accuracy="high")
    with pytest.raises(DistmlError, match="test_accuracy is 'high', not a number"):
        select_model([bad])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DistmlError, match="no metrics.json"):
        select_model([tmp_path / "empty"])
    with pytest.raises(DistmlError, match="no models"):
        select_model([])


def test_display_names_stay_unique_for_kfp_style_paths(tmp_path):
    paths = [tmp_path / "train-1" / "model", tmp_path / "train-2" / "model"]
    assert display_names(paths) == ["train-1/model", "train-2/model"]
    assert display_names([tmp_path / "x", tmp_path / "x"]) == ["0:x", "1:x"]


def test_reports_show_every_model_best_first(tmp_path):
    folders = [
        model_folder(tmp_path, "a", test_accuracy=0.81, test_loss=0.6),
        model_folder(tmp_path, "b<script>", test_accuracy=0.93, test_loss=0.3),
    ]
    selection = select_model(folders)
    table = markdown_table(selection).splitlines()
    assert table[2] == "| rank | model | test_accuracy | test_loss | workers | global_batch_size | chosen |"
    assert table[4] == "| 1 | b<script> | 0.9300 | 0.3000 | 2 | 64 | yes |"
    assert table[5] == "| 2 | a | 0.8100 | 0.6000 | 2 | 64 |  |"
    page = html_report(selection)
    assert "<td>b&lt;script&gt;</td>" in page and "<script>" not in page
    assert page.index("0.9300") < page.index("0.8100")
    summary = selection_summary(selection)
    assert summary["chosen"] == "b<script>" and [r["value"] for r in summary["ranking"]] == [0.93, 0.81]


def test_write_selection_copies_the_chosen_folder(tmp_path):
    folders = [model_folder(tmp_path, "a", test_accuracy=0.8), model_folder(tmp_path, "b", test_accuracy=0.9)]
    out = write_selection(select_model(folders), tmp_path / "out")
    assert (out / "model" / "model" / "1" / "saved_model.pb").read_bytes() == b"b"
    assert json.loads((out / "selection.json").read_text())["chosen"] == "b"
    assert {p.name for p in out.iterdir()} == {"model", "comparison.md", "comparison.html", "selection.json"}
    with pytest.raises(DistmlError, match="not empty"):
        write_selection(select_model(folders), out)
    with pytest.raises(DistmlError, match="not empty"):
        copy_model_folder(folders[0], out)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_cli_select(tmp_path):
    folders = [model_folder(tmp_path, "a", test_loss=0.4), model_folder(tmp_path, "b", test_loss=0.2)]
    args = ["select", *map(str, folders), "--metric", "test_loss", "--lowest", "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "chosen: b" in result.output
    assert (tmp_path / "out" / "model" / "metrics.json").exists()

    missing = CliRunner().invoke(main, ["select", str(folders[0]), "--metric", "f1", "--out", str(tmp_path / "o2")])
    assert missing.exit_code == 1
    assert "error: " in missing.output and "no metric 'f1'" in missing.output
    assert not (tmp_path / "o2").exists()
