"""Export a model as an artifact, load it with Predictor, predict in the API's shape."""

import io
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils
from torch import nn

from training_runtime import models
from training_runtime.data.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transforms
from training_runtime.export import (
    ArtifactError,
    export_artifact,
    export_checkpoint,
    load_manifest,
    sha256_of,
)
from training_runtime.predict import InvalidImageError, Predictor, gradcam
from training_runtime.train.checkpoint import save_checkpoint

LABELS = ["cat", "dog", "bird"]
IMAGENET = (IMAGENET_MEAN, IMAGENET_STD)
# Four proposals x three labels: twelve detections, scored per label by `distinct_scores`.
DETECTOR_OPTIONS = {"min_size": 96, "max_size": 128, "box_detections_per_img": 20,
                    "rpn_pre_nms_top_n_test": 50, "rpn_post_nms_top_n_test": 4}
SEGMENTER_OPTIONS = {"min_size": 64, "max_size": 64, "box_detections_per_img": 4,
                     "rpn_pre_nms_top_n_test": 50, "rpn_post_nms_top_n_test": 20}


def noise_image(height, width, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def eager_batch(images, scenario, input_size):
    """The evaluation transforms of training_runtime.data, applied the way training does."""
    transform = eval_transforms(scenario, input_size) if scenario == "classification" else None
    if transform is not None:
        return torch.stack([transform(Image.fromarray(im)) for im in images])
    from torchvision.transforms import v2
    steps = v2.Compose([v2.ToImage(), v2.Resize(list(input_size), antialias=True),
                        v2.ToDtype(torch.float32, scale=True)])
    return [steps(Image.fromarray(im)) for im in images]


def detection_as_xyxy(prediction):
    x, y, w, h = prediction["bbox"]
    return [x, y, x + w, y + h]


# --- classification ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def classifier():
    torch.manual_seed(0)
    return models.build(models.get("classification", "small_cnn"), num_classes=3).eval()


@pytest.fixture(scope="module")
def classifier_artifact(classifier, tmp_path_factory):
    path = tmp_path_factory.mktemp("cls") / "model"
    return export_artifact(classifier, path, scenario="classification", model_name="small_cnn",
                           labels=LABELS, input_size=(32, 32), normalization=IMAGENET,
                           metrics={"accuracy": 0.75}, extra={"task_id": "t-1"})


@pytest.fixture(scope="module")
def class_images():
    return [noise_image(40, 50, seed=1), noise_image(32, 32, seed=2)]


@pytest.fixture
def damaged(classifier_artifact, tmp_path):
    """A copy of the classification artifact that a test may change."""
    return shutil.copytree(classifier_artifact, tmp_path / "copy")


def test_manifest_describes_the_model(classifier_artifact):
    manifest = load_manifest(classifier_artifact)

    assert manifest.scenario == "classification" and manifest.model_name == "small_cnn"
    assert manifest.labels == tuple(LABELS) and manifest.input_size == (32, 32)
    assert manifest.normalization == (IMAGENET_MEAN, IMAGENET_STD)
    assert manifest.metrics == {"accuracy": 0.75} and manifest.extra == {"task_id": "t-1"}
    assert manifest.program == {"kind": "export", "file": "program.pt2"}
    raw = json.loads((classifier_artifact / "manifest.json").read_text())
    assert raw["torch_version"] == torch.__version__ and raw["created_at"]
    assert set(raw["files"]) == {"weights.pt", "program.pt2"}
    assert raw["files"]["weights.pt"]["sha256"] == sha256_of(classifier_artifact / "weights.pt")
    state = torch.load(classifier_artifact / "weights.pt", weights_only=True)
    assert "fc.weight" in state
    assert not [p for p in classifier_artifact.parent.iterdir() if ".tmp-" in p.name]


def test_classification_predictions_equal_the_eager_model(classifier, classifier_artifact,
                                                         class_images):
    predictor = Predictor.load(classifier_artifact, prefer_program=False)

    got = predictor.predict(class_images, top_k=3)

    assert not predictor.uses_program
    with torch.inference_mode():
        probabilities = classifier(eager_batch(class_images, "classification", (32, 32)))
        probabilities = probabilities.softmax(dim=1)
    for row, predictions in zip(probabilities, got, strict=True):
        ranked = [LABELS[i] for i in row.argsort(descending=True)]
        assert [p["label"] for p in predictions] == ranked
        expected = sorted(row.tolist(), reverse=True)
        assert np.allclose([p["score"] for p in predictions], expected, atol=1e-5)


def test_the_program_gives_the_eager_outputs(classifier_artifact, class_images):
    eager = Predictor.load(classifier_artifact, prefer_program=False).predict(class_images)
    program = Predictor.load(classifier_artifact)

    got = program.predict(class_images)

    assert program.uses_program
    for a, b in zip(got, eager, strict=True):
        assert [p["label"] for p in a] == [p["label"] for p in b]
        assert np.allclose([p["score"] for p in a], [p["score"] for p in b], atol=1e-5)


def test_a_torchscript_program_gives_the_eager_outputs(classifier, tmp_path, class_images):
    path = export_artifact(classifier, tmp_path / "ts", scenario="classification",
                           model_name="small_cnn", labels=LABELS, input_size=32,
                           normalization=IMAGENET, metrics={}, program="torchscript")
    program = Predictor.load(path)
    eager = Predictor.load(path, prefer_program=False)

    assert load_manifest(path).program["kind"] == "torchscript" and program.uses_program
    for a, b in zip(program.predict(class_images), eager.predict(class_images), strict=True):
        assert np.allclose([p["score"] for p in a], [p["score"] for p in b], atol=1e-5)


def test_top_k_sets_length_and_results_are_sorted(classifier_artifact, class_images):
    predictor = Predictor.load(classifier_artifact)

    two = predictor.predict(class_images, top_k=2)
    all_of_them = predictor.predict(class_images, top_k=10)

    assert [len(p) for p in two] == [2, 2] and [len(p) for p in all_of_them] == [3, 3]
    for predictions in all_of_them:
        scores = [p["score"] for p in predictions]
        assert scores == sorted(scores, reverse=True) and abs(sum(scores) - 1) < 1e-4
    assert two[0] == all_of_them[0][:2]


def test_the_confidence_filter_drops_low_scores(classifier_artifact, class_images):
    predictor = Predictor.load(classifier_artifact)
    everything = predictor.predict(class_images, top_k=3)
    threshold = everything[0][1]["score"]

    filtered = predictor.predict(class_images, top_k=3, min_score=threshold)

    assert filtered[0] == everything[0][:2]
    assert all(p["score"] >= threshold for row in filtered for p in row)


def test_bad_images_are_value_errors_that_name_the_input(classifier_artifact, tmp_path):
    predictor = Predictor.load(classifier_artifact)
    png = io.BytesIO()
    Image.fromarray(noise_image(20, 20, seed=0)).save(png, format="PNG")
    truncated = png.getvalue()[: len(png.getvalue()) // 2]
    Image.new("RGB", (9, 7)).save(tmp_path / "good.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (tmp_path / "notes.txt").write_text("hello")

    with pytest.raises(ValueError, match="image 1: the image is corrupt or truncated"):
        predictor.predict([png.getvalue(), truncated])
    with pytest.raises(InvalidImageError, match="image 0: the image is corrupt"):
        predictor.predict([tmp_path / "broken.jpg"])
    with pytest.raises(InvalidImageError, match="image 0: not an image"):
        predictor.predict([tmp_path / "notes.txt"])
    with pytest.raises(InvalidImageError, match="cannot read the file"):
        predictor.predict([tmp_path / "absent.png"])
    with pytest.raises(ValueError, match=r"HxWx3 uint8 array, got shape \(8, 8\)"):
        predictor.predict([np.zeros((8, 8), dtype=np.uint8)])
    with pytest.raises(ValueError, match="dtype float32"):
        predictor.predict([np.zeros((8, 8, 3), dtype=np.float32)])
    with pytest.raises(ValueError, match="top_k"):
        predictor.predict([png.getvalue()], top_k=0)
    assert len(predictor.predict([png.getvalue(), str(tmp_path / "good.png")])) == 2
    assert predictor.predict([]) == []


# --- artifact validation ----------------------------------------------------------------------

def test_tampered_weights_are_refused(damaged):
    with open(damaged / "weights.pt", "ab") as fh:
        fh.write(b"\0")

    with pytest.raises(ArtifactError, match=r"weights\.pt has sha256 .* re-export") as error:
        Predictor.load(damaged)
    assert error.value.code == "artifact_tampered"


def test_a_missing_manifest_key_is_named(damaged):
    manifest = json.loads((damaged / "manifest.json").read_text())
    del manifest["labels"]
    (damaged / "manifest.json").write_text(json.dumps(manifest))

    with pytest.raises(ArtifactError, match="lacks labels"):
        load_manifest(damaged)


def test_a_newer_format_version_asks_for_an_upgrade(damaged):
    manifest = json.loads((damaged / "manifest.json").read_text())
    manifest["format_version"] = 2
    (damaged / "manifest.json").write_text(json.dumps(manifest))

    with pytest.raises(ArtifactError, match=r"version 2 is not supported.*upgrade") as error:
        load_manifest(damaged)
    assert error.value.code == "unsupported_format"


def test_a_missing_file_or_manifest_is_refused(damaged, tmp_path):
    (damaged / "program.pt2").unlink()
    with pytest.raises(ArtifactError, match=r"program\.pt2 is missing"):
        load_manifest(damaged)
    with pytest.raises(ArtifactError, match=r"manifest\.json is missing") as error:
        load_manifest(tmp_path)
    assert error.value.code == "artifact_not_found"


def test_export_refuses_to_overwrite_and_bad_inputs(classifier, classifier_artifact, tmp_path):
    with pytest.raises(ArtifactError, match="already exists"):
        export_artifact(classifier, classifier_artifact, scenario="classification",
                        model_name="small_cnn", labels=LABELS, input_size=32,
                        normalization=None, metrics={})
    with pytest.raises(ArtifactError, match="labels must be distinct"):
        export_artifact(classifier, tmp_path / "a", scenario="classification",
                        model_name="small_cnn", labels=["a", "a", "b"], input_size=32,
                        normalization=None, metrics={}, program="none")
    with pytest.raises(ArtifactError, match="Unknown classification model 'vgg99'"):
        export_artifact(classifier, tmp_path / "b", scenario="classification",
                        model_name="vgg99", labels=LABELS, input_size=32,
                        normalization=None, metrics={}, program="none")
    with pytest.raises(ArtifactError, match="shape"):  # a 3-label model exported with 2 labels
        export_artifact(classifier, tmp_path / "c", scenario="classification",
                        model_name="small_cnn", labels=["a", "b"], input_size=32,
                        normalization=None, metrics={}, program="export")
    assert [p.name for p in tmp_path.iterdir()] == []


def test_export_checkpoint_reads_a_best_checkpoint(classifier, tmp_path, class_images):
    best = save_checkpoint(tmp_path / "best.pt", {
        "format": 1, "model": classifier.state_dict(), "metric_name": "accuracy",
        "metric": 0.5, "epoch": 3, "config": {}})

    path = export_checkpoint(best, tmp_path / "art", scenario="classification",
                             model_name="small_cnn", labels=LABELS, input_size=(32, 32),
                             normalization=IMAGENET, program="none")

    manifest = load_manifest(path)
    assert manifest.metrics == {"accuracy": 0.5, "epoch": 3} and manifest.program is None
    assert Predictor.load(path).predict(class_images[:1])[0][0]["score"] > 0


# --- Grad-CAM ---------------------------------------------------------------------------------

def test_gradcam_is_a_deterministic_map_of_the_image_size(classifier_artifact, class_images):
    predictor = Predictor.load(classifier_artifact)  # program for predict, eager for Grad-CAM
    image = class_images[0]  # 40x50

    heatmap = gradcam(predictor, image)
    again = gradcam(predictor, Image.fromarray(image))
    for_dog = gradcam(predictor, image, target_label="dog")

    assert heatmap.shape == (40, 50) and heatmap.dtype == np.float32
    assert heatmap.min() >= 0 and heatmap.max() <= 1 and heatmap.max() == pytest.approx(1)
    assert np.array_equal(heatmap, again)
    assert for_dog.shape == (40, 50)
    with pytest.raises(ValueError, match="Unknown label"):
        gradcam(predictor, image, target_label="horse")


def test_gradcam_on_a_bare_model_restores_its_mode(classifier):
    model = classifier.train()
    try:
        heatmap = gradcam(model, torch.rand(3, 24, 20), target_label=1)
        assert model.training
    finally:
        classifier.eval()
    assert heatmap.shape == (24, 20) and 0 <= heatmap.min() <= heatmap.max() <= 1
    with pytest.raises(ValueError, match=r"no nn\.Conv2d"):
        gradcam(nn.Sequential(nn.Flatten(), nn.Linear(12, 2)), torch.rand(3, 2, 2))


# --- detection and segmentation --------------------------------------------------------------

def distinct_scores(model):
    """A random detector scores every box alike; class biases give each label its own score."""
    bias = model.roi_heads.box_predictor.cls_score.bias
    with torch.no_grad():
        bias.copy_(torch.linspace(0.0, 1.5, len(bias)).flip(0).roll(1))  # background lowest
    return model.eval()


@pytest.fixture(scope="module")
def detector_case(tmp_path_factory):
    torch.manual_seed(0)
    spec = models.get("detection", "fasterrcnn_mobilenet_v3_large_320_fpn")
    model = distinct_scores(models.build(spec, num_classes=3, **DETECTOR_OPTIONS))
    path = export_artifact(model, tmp_path_factory.mktemp("det") / "model", scenario="detection",
                           model_name=spec.name, labels=LABELS, input_size=(96, 128),
                           normalization=None, metrics={"map50": 0.1},
                           build_options=DETECTOR_OPTIONS)
    images = [noise_image(150, 200, seed=3), noise_image(96, 128, seed=4)]
    with torch.inference_mode():
        expected = model(eager_batch(images, "detection", (96, 128)))
    return path, images, expected


def test_detection_boxes_are_in_original_image_pixels(detector_case):
    path, images, expected = detector_case
    predictor = Predictor.load(path)

    got = predictor.predict(images)

    assert load_manifest(path).program is None and not predictor.uses_program
    for image, predictions, output in zip(images, got, expected, strict=True):
        assert len(predictions) == len(output["scores"]) > 0
        height, width = image.shape[:2]
        scale = torch.tensor([width / 128, height / 96] * 2)
        order = output["scores"].argsort(descending=True, stable=True)
        assert np.allclose([detection_as_xyxy(p) for p in predictions],
                           (output["boxes"][order] * scale).tolist(), atol=1e-3)
        assert [p["label"] for p in predictions] == [LABELS[int(k) - 1]
                                                     for k in output["labels"][order]]
        scores = [p["score"] for p in predictions]
        assert scores == sorted(scores, reverse=True)
        assert np.allclose(scores, output["scores"][order].tolist(), atol=1e-5)


def test_detection_confidence_filter(detector_case):
    path, images, expected = detector_case
    scores = sorted(expected[0]["scores"].tolist(), reverse=True)
    threshold = sorted(set(scores))[1]  # the middle of three score levels
    assert scores[0] > threshold > scores[-1]

    got = Predictor.load(path).predict(images[:1], min_score=threshold)

    assert [p["score"] for p in got[0]] == pytest.approx([s for s in scores if s >= threshold])


def test_a_detector_cannot_be_exported_as_a_program(tmp_path):
    spec = models.get("detection", "fasterrcnn_mobilenet_v3_large_320_fpn")
    model = models.build(spec, num_classes=1, **DETECTOR_OPTIONS)
    with pytest.raises(ArtifactError, match="classification only"):
        export_artifact(model, tmp_path / "x", scenario="detection", model_name=spec.name,
                        labels=["a"], input_size=96, normalization=None, metrics={},
                        program="export")


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools
def test_segmentation_masks_are_rle_of_the_original_size(tmp_path):
    torch.manual_seed(0)
    spec = models.get("segmentation", "maskrcnn_resnet50_fpn")
    model = distinct_scores(models.build(spec, num_classes=2, **SEGMENTER_OPTIONS))
    path = export_artifact(model, tmp_path / "seg", scenario="segmentation",
                           model_name=spec.name, labels=["cat", "dog"], input_size=(64, 64),
                           normalization=None, metrics={}, build_options=SEGMENTER_OPTIONS)
    image = noise_image(48, 80, seed=5)

    (predictions,) = Predictor.load(path).predict([image])

    with torch.inference_mode():
        (output,) = model(eager_batch([image], "segmentation", (64, 64)))
    order = output["scores"].argsort(descending=True, stable=True)
    masks = torch.nn.functional.interpolate(output["masks"][order], size=(48, 80),
                                            mode="bilinear", align_corners=False)[:, 0] > 0.5
    assert len(predictions) == len(order) > 0
    for prediction, mask in zip(predictions, masks, strict=True):
        rle = prediction["mask"]
        assert rle["size"] == [48, 80] and isinstance(rle["counts"], str)
        decoded = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
        assert decoded.shape == (48, 80) and np.array_equal(decoded.astype(bool), mask.numpy())
        assert json.dumps(prediction)  # JSON-ready, as the API returns it
    x, y, w, h = predictions[0]["bbox"]
    assert 0 <= x <= x + w <= 80 + 1e-3 and 0 <= y <= y + h <= 48 + 1e-3
