"""Per-shard inference on real (tiny, freshly trained) models: sharding invariance, layouts,
backend contract, saved images and bad input."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from tiny_models import IOU_TOLERANCE, LESION_SIZE

from distml.cli import main
from distml.data.dtd import read_dataset
from distml.data.split import split_dataset, write_parts
from distml.data.synth import synth_digits, synth_lesions
from distml.errors import DistmlError
from distml.inference.backend_api import load_image, select_images
from distml.inference.backends import backend_classes
from distml.inference.convert import keras_to_onnx
from distml.inference.gather import gather_shards
from distml.inference.metrics import binary_iou
from distml.inference.shard import run_inference

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def models(tmp_path_factory, lesion_model, digits_model):
    """Both model folders, plus an NCHW-input ONNX export of the lesion model (EDDL's layout)."""
    root = tmp_path_factory.mktemp("models")
    lesion, lesion_folder = lesion_model
    digits, digits_folder = digits_model
    nchw = keras_to_onnx(lesion, root / "lesion-nchw.onnx", inputs_as_nchw=True)
    return {
        "lesion": lesion,
        "lesion_folder": lesion_folder,
        "lesion_nchw": nchw,
        "digits": digits,
        "digits_folder": digits_folder,
    }


def write_split(dataset_file: Path, parts: int, out: Path) -> list[Path]:
    dataset = read_dataset(dataset_file)
    infos = write_parts(dataset, split_dataset(dataset, parts), out)
    return [out / info.file for info in infos]


@pytest.fixture(scope="module")
def lesions(tmp_path_factory):
    """33 lesions at the model's size (test split: 7 images), cut into 1 and into 3 parts."""
    root = tmp_path_factory.mktemp("lesions")
    dataset_file = synth_lesions(root / "data", images=33, size=LESION_SIZE, seed=3)
    return {
        "file": dataset_file,
        "whole": write_split(dataset_file, 1, root / "p1"),
        "thirds": write_split(dataset_file, 3, root / "p3"),
    }


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    dataset_file = synth_digits(root / "data", images=150, seed=1)
    return {
        "file": dataset_file,
        "whole": write_split(dataset_file, 1, root / "p1"),
        "thirds": write_split(dataset_file, 3, root / "p3"),
    }


def infer_parts(model, parts: list[Path], out: Path, *, batch_size: int) -> list[Path]:
    folders = []
    for i, part in enumerate(parts):
        run_inference("onnxruntime", model, part, out / f"shard-{i}", batch_size=batch_size)
        folders.append(out / f"shard-{i}")
    return folders


def test_segmentation_gathered_over_three_parts_equals_unsplit(models, lesions, tmp_path):
    whole = run_inference("onnxruntime", models["lesion_folder"], lesions["whole"][0], tmp_path / "whole", batch_size=3)
    shards = infer_parts(models["lesion_folder"], lesions["thirds"], tmp_path, batch_size=2)
    gathered = gather_shards(shards, tmp_path / "gathered")
    test_images = len(read_dataset(lesions["file"]).indices("test"))
    assert whole["images"] == gathered["images"] == test_images  # the partial last batches count
    assert gathered["miou"] == pytest.approx(whole["miou"], abs=1e-6)
    shard_mious = [json.loads((s / "metrics.json").read_text())["miou"] for s in shards]
    assert whole["miou"] == pytest.approx(np.mean([r["iou"] for r in whole["per_image"]]), abs=1e-12)
    assert 0.3 < whole["miou"] <= 1.0  # the trained net finds the lesions
    assert len(set(np.round(shard_mious, 6))) > 1  # shards differ, so a mean of means could not pass by luck
    on_disk = json.loads((tmp_path / "gathered" / "metrics.json").read_text())
    assert on_disk["miou"] == gathered["miou"] and len(on_disk["shards"]) == 3


def test_parts_without_test_images_give_empty_shards_and_gather_still_equals_unsplit(models, lesions, tmp_path):
    """7 test images in 9 parts: some parts have none, and the run must not fail on them."""
    parts = write_split(lesions["file"], 9, tmp_path / "p9")
    shards = infer_parts(models["lesion_folder"], parts, tmp_path, batch_size=2)
    counts = [json.loads((s / "metrics.json").read_text())["images"] for s in shards]
    assert 0 in counts and sum(counts) == 7
    whole = run_inference("onnxruntime", models["lesion_folder"], lesions["whole"][0], tmp_path / "whole", batch_size=3)
    gathered = gather_shards(shards, tmp_path / "gathered")
    assert gathered["images"] == whole["images"] == 7
    assert gathered["miou"] == pytest.approx(whole["miou"], abs=1e-6)
    empty = shards[counts.index(0)]
    cli = CliRunner().invoke(
        main,
        [
            "infer",
            "--model",
            str(models["lesion_folder"]),
            "--dataset",
            str(parts[counts.index(0)]),
            "--out",
            str(tmp_path / "cli-empty"),
        ],
    )
    assert cli.exit_code == 0 and "no images in split 'test': an empty shard" in cli.output
    with pytest.raises(DistmlError, match="no images in split 'test' in any shard"):
        gather_shards([empty], tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()


def test_gather_refuses_shards_of_different_models(models, lesions, tmp_path):
    one = run_inference("onnxruntime", models["lesion_folder"], lesions["whole"][0], tmp_path / "a")
    other = run_inference("onnxruntime", models["lesion_nchw"], lesions["whole"][0], tmp_path / "b")
    assert one["model_sha256"] != other["model_sha256"]
    with pytest.raises(DistmlError, match=r"model \(sha256\) .* differs") as err:
        gather_shards([tmp_path / "a", tmp_path / "b"], tmp_path / "out")
    assert str(tmp_path / "b") in str(err.value)


def test_classification_gathered_over_three_parts_equals_unsplit(models, digits, tmp_path):
    whole = run_inference("onnxruntime", models["digits_folder"], digits["whole"][0], tmp_path / "whole", batch_size=8)
    shards = infer_parts(models["digits_folder"], digits["thirds"], tmp_path, batch_size=7)
    gathered = gather_shards(shards, tmp_path / "gathered")
    assert gathered["images"] == whole["images"] == len(read_dataset(digits["file"]).indices("test"))
    assert gathered["accuracy"] == pytest.approx(whole["accuracy"], abs=1e-6)
    assert gathered["confusion_matrix"] == whole["confusion_matrix"]
    assert whole["accuracy"] > 0.6


def reference_ious(keras_model, part: Path) -> np.ndarray:
    """Per-image IoU from TensorFlow's own predictions on the same inputs (an independent reference)."""
    from PIL import Image

    selection = select_images(part, "test")
    dataset = selection.dataset
    images = np.stack(
        [
            load_image(
                dataset.resolve(dataset.images[i].location),
                channels=3,
                height=LESION_SIZE,
                width=LESION_SIZE,
                where="test",
            )
            for i in selection.indices
        ]
    )
    truths = np.stack(
        [np.asarray(Image.open(dataset.resolve(dataset.images[i].label)), np.float32) / 255 for i in selection.indices]
    )
    predictions = keras_model.predict(images, verbose=0)[..., 0]
    return binary_iou(predictions, truths)


BACKENDS = [pytest.param(name, marks=pytest.mark.ecvl) if name == "ecvl" else name
            for name in sorted(backend_classes())]


def present(backend: str) -> None:
    reason = backend_classes()[backend].unavailable_reason()
    if reason:
        pytest.skip(f"backend {backend} not present: {reason}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_present_backend_matches_tensorflow_and_onnxruntime_on_segmentation(backend, models, lesions, tmp_path):
    """The backend contract: same model folder, same part, the same per-image IoUs whatever runs it."""
    present(backend)
    result = run_inference(backend, models["lesion_folder"], lesions["whole"][0], tmp_path / "out", batch_size=4)
    onnxruntime = run_inference("onnxruntime", models["lesion_folder"], lesions["whole"][0], tmp_path / "ort",
                                batch_size=3)
    expected = reference_ious(models["lesion"], lesions["whole"][0])
    got = [r["iou"] for r in result["per_image"]]
    assert result["backend"] == backend and result["images"] == len(expected) == 7
    np.testing.assert_allclose(got, expected, atol=IOU_TOLERANCE)
    np.testing.assert_allclose(got, [r["iou"] for r in onnxruntime["per_image"]], atol=IOU_TOLERANCE)
    assert [r["image"] for r in result["per_image"]] == [r["image"] for r in onnxruntime["per_image"]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_present_backend_predicts_the_classes_of_tensorflow_and_onnxruntime(backend, models, digits, tmp_path):
    present(backend)
    part = digits["whole"][0]
    result = run_inference(backend, models["digits_folder"], part, tmp_path / "out", batch_size=7)
    onnxruntime = run_inference("onnxruntime", models["digits_folder"], part, tmp_path / "ort", batch_size=8)
    selection = select_images(part, "test")
    pixels = np.stack([
        load_image(selection.dataset.resolve(selection.dataset.images[i].location), channels=1, height=8, width=8,
                   where="test")
        for i in selection.indices
    ])
    expected = models["digits"].predict(pixels, verbose=0).argmax(axis=1).tolist()
    assert [r["predicted"] for r in result["per_image"]] == expected
    assert [r["predicted"] for r in onnxruntime["per_image"]] == expected
    assert result["confusion_matrix"] == onnxruntime["confusion_matrix"] and result["backend"] == backend


@pytest.mark.ecvl
def test_ecvl_backend_runs_a_model_folder_on_its_eddl_export_and_times_the_import(models, lesions, tmp_path):
    present("ecvl")
    result = run_inference("ecvl", models["lesion_folder"], lesions["whole"][0], tmp_path / "out")
    assert Path(result["model"]).name == "model-eddl.onnx" and result["provider"] == "EDDL CPU"
    assert 0 < result["import_seconds"] < 60


def test_nchw_and_nhwc_exports_give_the_same_metrics(models, lesions, tmp_path):
    nhwc = run_inference("onnxruntime", models["lesion_folder"], lesions["whole"][0], tmp_path / "a", batch_size=5)
    nchw = run_inference("onnxruntime", models["lesion_nchw"], lesions["whole"][0], tmp_path / "b", batch_size=5)
    assert [r["iou"] for r in nchw["per_image"]] == pytest.approx([r["iou"] for r in nhwc["per_image"]], abs=1e-9)


def test_images_are_resized_to_the_model_input(models, tmp_path):
    dataset_file = synth_lesions(tmp_path / "big", images=12, size=48, seed=5)
    result = run_inference("onnxruntime", models["lesion_folder"], dataset_file, tmp_path / "out", save_images=True)
    assert result["images"] == len(read_dataset(dataset_file).indices("test"))
    from PIL import Image

    assert Image.open(tmp_path / "out" / "batch_0_0_output.png").size == (LESION_SIZE, LESION_SIZE)


def test_save_images_writes_deephealth_names_binary_masks_and_a_red_contour(models, lesions, tmp_path):
    from PIL import Image

    out = tmp_path / "shard"
    result = run_inference(
        "onnxruntime", models["lesion_folder"], lesions["whole"][0], out, batch_size=4, save_images=True
    )
    names = {p.name for p in out.glob("batch_*.png")}
    expected = {
        f"batch_{r['batch']}_{r['index']}_{kind}.png"
        for r in result["per_image"]
        for kind in ("gt", "output", "image", "overlay")
    }
    assert names == expected and "batch_1_2_gt.png" in names  # 0-based, 7 images in batches of 4
    gt = np.asarray(Image.open(out / "batch_0_0_gt.png"))
    assert gt.ndim == 2 and set(np.unique(gt)) <= {0, 255}
    output = np.asarray(Image.open(out / "batch_0_0_output.png"))
    overlay = np.asarray(Image.open(out / "batch_0_0_overlay.png"))
    red = (overlay[..., 0] == 255) & (overlay[..., 1] == 0) & (overlay[..., 2] == 0)
    assert red.any() and output[red].min() == 255  # the contour lies on the predicted mask


def test_cli_infer_prints_progress_per_batch_and_writes_metrics(models, digits, tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "infer",
            "--model",
            str(models["digits_folder"]),
            "--dataset",
            str(digits["whole"][0]),
            "--out",
            str(tmp_path / "o"),
            "--batch-size",
            "10",
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    batches = -(-metrics["images"] // 10)
    assert f"batch {batches}/{batches}" in result.output and len(metrics["batches"]) == batches
    assert metrics["task"] == "classification" and metrics["backend"] == "onnxruntime" and metrics["seconds"] > 0


# --------------------------------------------------------------------------- bad input


def test_missing_model_file_is_named(lesions, tmp_path):
    with pytest.raises(DistmlError, match="model file not found") as err:
        run_inference("onnxruntime", tmp_path / "nope.onnx", lesions["whole"][0], tmp_path / "out")
    assert "nope.onnx" in str(err.value) and not (tmp_path / "out").exists()


def test_model_folder_without_onnx_is_named(lesions, tmp_path):
    (tmp_path / "model").mkdir()
    with pytest.raises(DistmlError, match="model folder has no model.onnx"):
        run_inference("onnxruntime", tmp_path / "model", lesions["whole"][0], tmp_path / "out")


def test_missing_part_file_is_named_by_the_cli(models, tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "infer",
            "--model",
            str(models["lesion_folder"]),
            "--dataset",
            str(tmp_path / "part-009.yml"),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and "part-009.yml" in result.output
    assert isinstance(result.exception, SystemExit)  # CliRunner keeps an exception (traceback) apart from output


def test_model_that_cannot_fit_the_dataset_is_refused_and_writes_nothing(models, lesions, tmp_path):
    with pytest.raises(DistmlError, match="does not fit|not a one-channel mask") as err:
        run_inference("onnxruntime", models["digits_folder"], lesions["whole"][0], tmp_path / "out")
    assert "model.onnx" in str(err.value)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))


def test_missing_image_is_named_and_the_shard_writes_no_metrics(models, tmp_path):
    dataset_file = synth_lesions(tmp_path / "data", images=12, size=LESION_SIZE, seed=2)
    dataset = read_dataset(dataset_file)
    victim = dataset.images[dataset.indices("test")[-1]].location
    (dataset_file.parent / victim).unlink()
    with pytest.raises(DistmlError, match=r"images\[[0-9]+\]\.location .* does not exist") as err:
        run_inference("onnxruntime", models["lesion_folder"], dataset_file, tmp_path / "out", batch_size=1)
    assert Path(victim).name in str(err.value)
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_output_folder_with_content_is_refused(models, lesions, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("x")
    with pytest.raises(DistmlError, match="not empty"):
        run_inference("onnxruntime", models["lesion_folder"], lesions["whole"][0], tmp_path / "out")


def test_unknown_split_is_refused_with_the_known_ones(models, lesions, tmp_path):
    with pytest.raises(DistmlError, match="no split named 'holdout'.*training, validation, test"):
        run_inference("onnxruntime", models["lesion_folder"], lesions["whole"][0], tmp_path / "o", split="holdout")


def test_split_all_infers_every_image(models, lesions, tmp_path):
    part = lesions["whole"][0]
    result = CliRunner().invoke(
        main,
        [
            "infer",
            "--model",
            str(models["lesion_folder"]),
            "--dataset",
            str(part),
            "--out",
            str(tmp_path / "o"),
            "--split",
            "all",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["images"] == 33


def test_cli_infer_reads_its_part_file_once(models, lesions, tmp_path, monkeypatch):
    """Issue 15: `--split all` used to read the part file once to look for a split named all, then again."""
    import distml.data.dtd
    import distml.inference.backend_api

    reads = []

    def counted(path):
        reads.append(Path(path))
        return read_dataset(path)

    monkeypatch.setattr(distml.data.dtd, "read_dataset", counted)
    monkeypatch.setattr(distml.inference.backend_api, "read_dataset", counted)
    part = lesions["whole"][0]
    args = ["infer", "--model", str(models["lesion_folder"]), "--dataset", str(part), "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(main, [*args, "--split", "all"])
    assert result.exit_code == 0, result.output
    assert reads == [part]
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["split"] is None


def test_ecvl_backend_explains_why_it_is_absent():
    reason = backend_classes()["ecvl"].unavailable_reason()
    if reason is None:
        pytest.skip("pyecvl is importable here: the contract test above ran the ecvl backend")
    assert "../shared/ecvl" in reason and "images/ecvl" in reason


def test_copied_shard_folder_keeps_its_metrics(models, lesions, tmp_path):
    """KFP moves artifacts between pods: a shard folder stays valid when copied elsewhere."""
    run_inference("onnxruntime", models["lesion_folder"], lesions["whole"][0], tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "elsewhere" / "a")
    gathered = gather_shards([tmp_path / "elsewhere" / "a"], tmp_path / "g")
    assert gathered["images"] == 7
