"""The model registry, the builders (CPU, weights=None) and pretrained-weight loading."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from training_runtime import models
from training_runtime.models import detection as det
from training_runtime.models.weights import KNOWN_HEAD_PREFIXES

REPO = Path(__file__).resolve().parents[2]
SMALL = {"min_size": 128, "max_size": 128}
ISSUE_MODELS = {
    "classification": {"small_cnn", "resnet18", "mobilenet_v3_small", "mobilenet_v3_large",
                       "efficientnet_b0"},
    "detection": {"fasterrcnn_mobilenet_v3_large_320_fpn", "fasterrcnn_mobilenet_v3_large_fpn",
                  "retinanet_resnet50_fpn", "ssdlite320_mobilenet_v3_large"},
    "segmentation": {"maskrcnn_resnet50_fpn"},
}
CLASSIFIERS = sorted(ISSUE_MODELS["classification"])
DETECTORS = [("detection", n) for n in sorted(ISSUE_MODELS["detection"])] + [
    ("segmentation", "maskrcnn_resnet50_fpn")]


class Secret:
    """Not a tensor: weights_only loading must refuse it."""

    def __init__(self):
        self.payload = "rm -rf /"


def build_small(scenario, name, num_classes=3, seed=0, **options):
    torch.manual_seed(seed)
    spec = models.get(scenario, name)
    extra = SMALL if scenario != "classification" else {}
    return models.build(spec, num_classes, **extra, **options).eval()


def one_image(seed=1, size=128):
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed))


# --- registry -------------------------------------------------------------------------------


def test_registry_lists_exactly_the_issue_models_plus_small_cnn():
    assert {s: set(models.names(s)) for s in models.SCENARIOS} == ISSUE_MODELS
    assert len(models.specs()) == 10


def test_each_scenario_has_a_default_model_and_its_metric():
    assert models.get("classification").name == "resnet18"
    assert models.get("detection").name == "fasterrcnn_mobilenet_v3_large_320_fpn"
    assert models.get("segmentation").name == "maskrcnn_resnet50_fpn"
    assert {s.metric for s in models.specs() if s.scenario == "classification"} == {"accuracy"}
    assert {s.metric for s in models.specs() if s.scenario != "classification"} == {"map50"}


@pytest.mark.parametrize("spec", models.specs(), ids=lambda s: s.name)
def test_defaults_are_sensible(spec):
    d = spec.defaults
    assert 1e-5 <= d.lr <= 0.2
    assert 1 <= d.batch_size <= 256
    assert 10 <= d.epochs <= 300
    assert 0 <= d.warmup_epochs < d.epochs
    assert 0 <= d.weight_decay <= 0.1
    assert d.optimizer in ("sgd", "adamw") and d.schedule in ("cosine", "step")
    assert spec.description and spec.head_prefixes
    assert set(spec.head_prefixes) <= set(KNOWN_HEAD_PREFIXES)
    h, w = spec.input_size
    if spec.scenario == "classification":
        assert spec.resize is None and 32 <= h == w <= 224
    else:
        assert spec.resize == det.RESIZE[spec.name] and spec.input_size == (spec.resize[0],) * 2


def test_specs_and_defaults_are_frozen():
    spec = models.get("classification", "small_cnn")
    with pytest.raises(AttributeError):
        spec.name = "other"
    with pytest.raises(AttributeError):
        spec.defaults.lr = 1.0


def test_train_defaults_refuse_nonsense():
    with pytest.raises(ValueError, match="optimizer"):
        models.TrainDefaults(lr=0.1, batch_size=8, epochs=10, warmup_epochs=1,
                             weight_decay=0.0, optimizer="rmsprop", schedule="cosine")
    with pytest.raises(ValueError, match="warmup_epochs"):
        models.TrainDefaults(lr=0.1, batch_size=8, epochs=10, warmup_epochs=10,
                             weight_decay=0.0, optimizer="sgd", schedule="step")


def test_unknown_model_names_the_known_ones():
    with pytest.raises(KeyError) as raised:
        models.get("detection", "yolov8")

    message = str(raised.value)
    assert "'yolov8'" in message
    assert all(name in message for name in ISSUE_MODELS["detection"])
    assert "resnet18" not in message
    assert raised.value.code == "unknown_model"


def test_unknown_scenario_names_the_known_ones():
    with pytest.raises(KeyError, match="classification, detection, segmentation"):
        models.names("keypoints")
    with pytest.raises(models.UnknownModelError, match="known scenarios"):
        models.get("keypoints", "resnet18")


@pytest.mark.parametrize("bad", [0, -1, True, 2.0])
def test_build_refuses_a_bad_label_count(bad):
    with pytest.raises(ValueError, match="number of dataset labels"):
        models.build(models.get("classification", "small_cnn"), bad)


# --- classification -------------------------------------------------------------------------


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_classifier_gives_one_logit_per_label(name):
    spec = models.get("classification", name)
    model = build_small("classification", name)

    with torch.no_grad():
        logits = model(torch.rand(2, 3, *spec.input_size))

    assert logits.shape == (2, 3)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("size", [(16, 16), (32, 32), (64, 64), (37, 50)])
def test_small_cnn_takes_any_image_of_at_least_16_pixels(size):
    model = models.SmallCNN(num_classes=5, in_channels=1).eval()

    with torch.no_grad():
        assert model(torch.rand(4, 1, *size)).shape == (4, 5)


def test_small_cnn_learns_in_training_mode():
    model = models.build(models.get("classification", "small_cnn"), 3).train()
    loss = torch.nn.functional.cross_entropy(model(torch.rand(4, 3, 32, 32)),
                                             torch.tensor([0, 1, 2, 0]))
    loss.backward()

    assert model.fc.weight.grad is not None and torch.isfinite(loss)


# --- detection and segmentation ---------------------------------------------------------------


@pytest.mark.parametrize(("scenario", "name"), DETECTORS, ids=lambda v: v)
def test_detector_predicts_boxes_labels_scores(scenario, name):
    model = build_small(scenario, name)

    with torch.no_grad():
        (out,) = model(list(one_image()))

    expected = {"boxes", "labels", "scores"} | ({"masks"} if scenario == "segmentation" else set())
    assert set(out) == expected
    n = out["boxes"].shape[0]
    assert out["boxes"].shape == (n, 4) and out["labels"].shape == out["scores"].shape == (n,)
    assert ((out["labels"] >= 1) & (out["labels"] <= 3)).all()  # 0 is the background
    if scenario == "segmentation":
        assert out["masks"].shape == (n, 1, 128, 128)


@pytest.mark.parametrize(("scenario", "name"), DETECTORS, ids=lambda v: v)
def test_detector_gives_a_loss_dict_in_training_mode(scenario, name):
    model = build_small(scenario, name).train()
    target = {"boxes": torch.tensor([[20.0, 30.0, 90.0, 100.0]]), "labels": torch.tensor([3])}
    if scenario == "segmentation":
        masks = torch.zeros(1, 128, 128, dtype=torch.uint8)
        masks[0, 30:100, 20:90] = 1
        target["masks"] = masks

    # Two images: SSDlite's last feature maps are 1x1, and BatchNorm needs more than one value.
    losses = model([*one_image(1), *one_image(2)], [target, target])

    assert losses and all(v.ndim == 0 and torch.isfinite(v) for v in losses.values())
    if scenario == "segmentation":
        assert "loss_mask" in losses
    sum(losses.values()).backward()


@pytest.mark.parametrize(("scenario", "name"), DETECTORS, ids=lambda v: v)
def test_detector_takes_label_count_and_adds_the_background(scenario, name):
    model = build_small(scenario, name, num_classes=3)
    state = model.state_dict()
    head_outputs = [state[k].shape[0] for k in state
                    if k.startswith(models.get(scenario, name).head_prefixes)
                    and k.endswith("bias")]

    assert head_outputs
    # Faster/Mask R-CNN: 4 logits, 16 box deltas; RetinaNet/SSDlite: 4 per anchor.
    assert all(n % 4 == 0 for n in head_outputs)
    if name.startswith(("fasterrcnn", "maskrcnn")):
        assert model.roi_heads.box_predictor.cls_score.out_features == 4
    if name == "maskrcnn_resnet50_fpn":
        assert model.roi_heads.mask_predictor.mask_fcn_logits.out_channels == 4


def test_detector_resize_defaults_and_overrides():
    default = models.build(models.get("detection", "fasterrcnn_mobilenet_v3_large_fpn"), 2)
    small = build_small("detection", "fasterrcnn_mobilenet_v3_large_320_fpn")

    assert (default.transform.min_size, default.transform.max_size) == ((800,), 1333)
    assert (small.transform.min_size, small.transform.max_size) == ((128,), 128)
    with pytest.raises(ValueError, match="min_size <= max_size"):
        det.build_retinanet_resnet50_fpn(2, min_size=256, max_size=128)


# --- pretrained weights ---------------------------------------------------------------------


@pytest.fixture
def small_cnn_weights(tmp_path):
    """A SmallCNN for 3 labels, saved as a state dict; returns (model, path)."""
    model = build_small("classification", "small_cnn", seed=7)
    path = tmp_path / "small_cnn.pth"
    torch.save(model.state_dict(), path)
    return model, path


def test_same_label_count_round_trips_exactly(small_cnn_weights):
    saved, path = small_cnn_weights
    fresh = build_small("classification", "small_cnn", seed=99)
    x = torch.rand(2, 3, 32, 32)

    report = models.load_pretrained(fresh, path)

    with torch.no_grad():
        assert torch.equal(fresh(x), saved(x))
    assert report.dropped_head == () and report.missing == () and report.unexpected == ()
    assert len(report.loaded) == len(saved.state_dict())


def test_other_label_count_drops_the_head_and_keeps_the_backbone(small_cnn_weights, caplog):
    saved, path = small_cnn_weights
    fresh = build_small("classification", "small_cnn", num_classes=5, seed=99)
    head_before = fresh.fc.weight.clone()

    report = models.load_pretrained(fresh, path)

    assert set(report.dropped_head) == {"fc.weight", "fc.bias"}
    assert "dropped 2 head tensors" in report.summary()
    assert torch.equal(fresh.fc.weight, head_before)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(fresh.features(x), saved.features(x))


def test_detector_checkpoint_for_other_labels_loads_all_but_the_predictor(tmp_path):
    name = "fasterrcnn_mobilenet_v3_large_320_fpn"
    saved = build_small("detection", name, num_classes=90, seed=3)
    torch.save({"model": saved.state_dict(), "epoch": 12}, tmp_path / "coco.pth")

    fresh = models.build(models.get("detection", name), 3, **SMALL,
                         pretrained=tmp_path / "coco.pth").eval()

    dropped = {k for k in saved.state_dict() if k.startswith("roi_heads.box_predictor.")}
    assert dropped and all(
        torch.equal(v, saved.state_dict()[k])
        for k, v in fresh.state_dict().items() if k not in dropped)
    assert fresh.roi_heads.box_predictor.cls_score.out_features == 4


def test_an_imagenet_classifier_checkpoint_seeds_a_detector_backbone(tmp_path):
    """mobilenet_v3_large's `features.*` become the FPN backbone's `backbone.body.*`."""
    from torchvision.models import mobilenet_v3_large

    from training_runtime.models.weights import load_pretrained

    torch.manual_seed(5)
    classifier = mobilenet_v3_large(weights=None)
    torch.save(classifier.state_dict(), tmp_path / "imagenet.pth")
    detector = build_small("detection", "fasterrcnn_mobilenet_v3_large_320_fpn")

    report = load_pretrained(detector, tmp_path / "imagenet.pth")

    assert report.prefix_mapping == ("features.", "backbone.body.")
    features = classifier.state_dict()
    body = {k: v for k, v in detector.state_dict().items() if k.startswith("backbone.body.")}
    assert body and all(torch.equal(v, features["features." + k.removeprefix("backbone.body.")])
                        for k, v in body.items() if not k.endswith("num_batches_tracked"))
    assert not any(k.startswith("backbone.body.") for k in report.missing)
    assert "read as backbone.body.*" in report.summary()


@pytest.mark.parametrize("wrap", ["model", "state_dict", "module.", "file_url"])
def test_checkpoint_dicts_prefixes_and_file_urls_load(small_cnn_weights, tmp_path, wrap):
    saved, path = small_cnn_weights
    state = saved.state_dict()
    source = tmp_path / "ckpt.pt"
    if wrap in ("model", "state_dict"):
        torch.save({wrap: state, "optimizer": {"lr": torch.tensor(0.1)}}, source)
    elif wrap == "module.":
        torch.save({f"module.{k}": v for k, v in state.items()}, source)
    else:
        source = path.as_uri()
    fresh = build_small("classification", "small_cnn", seed=99)

    report = models.load_pretrained(fresh, source)

    assert len(report.loaded) == len(state) and not report.unexpected


def test_object_storage_goes_through_the_injected_opener(small_cnn_weights):
    _, path = small_cnn_weights
    asked = []

    def opener(url):
        asked.append(url)
        return path.read_bytes()

    report = models.load_pretrained(build_small("classification", "small_cnn"),
                                    "s3://weights/small_cnn.pth", opener=opener)

    assert asked == ["s3://weights/small_cnn.pth"] and report.loaded


def test_object_storage_without_an_opener_is_refused():
    with pytest.raises(models.PretrainedWeightsError, match="object-storage reader"):
        models.load_pretrained(build_small("classification", "small_cnn"), "s3://b/k.pth")


def test_missing_file_is_refused_clearly(tmp_path):
    missing = tmp_path / "nope" / "weights.pth"

    with pytest.raises(FileNotFoundError, match="does not exist") as raised:
        models.build(models.get("classification", "small_cnn"), 3, pretrained=missing)
    assert str(missing) in str(raised.value)
    with pytest.raises(FileNotFoundError, match="is a directory"):
        models.load_pretrained(build_small("classification", "small_cnn"), tmp_path)


def test_pickled_objects_are_refused_by_weights_only(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": {"fc.weight": torch.zeros(3, 256)}, "extra": Secret()}, path)

    with pytest.raises(models.PretrainedWeightsError, match="weights_only=True"):
        models.load_pretrained(build_small("classification", "small_cnn"), path)


@pytest.mark.parametrize("content", [b"hello", b"", b"PK\x03\x04broken zip"])
def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path, content):
    path = tmp_path / "notes.pth"
    path.write_bytes(content)

    with pytest.raises(models.PretrainedWeightsError, match="not a readable PyTorch"):
        models.load_pretrained(build_small("classification", "small_cnn"), path)


def test_a_tensor_that_is_not_a_state_dict_is_refused(tmp_path):
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    torch.save({"fc.weight": torch.zeros(3, 256), "note": "hi"}, tmp_path / "mixed.pth")
    model = build_small("classification", "small_cnn")

    with pytest.raises(models.PretrainedWeightsError, match="holds a Tensor, not a state dict"):
        models.load_pretrained(model, tmp_path / "tensor.pth")
    with pytest.raises(models.PretrainedWeightsError, match="note are not tensors"):
        models.load_pretrained(model, tmp_path / "mixed.pth")


def test_another_architecture_is_refused(tmp_path):
    torch.save(models.SmallCNN(3, width=16).state_dict(), tmp_path / "narrow.pth")
    torch.save(build_small("classification", "resnet18").state_dict(), tmp_path / "resnet.pth")
    target = build_small("classification", "small_cnn")

    with pytest.raises(models.PretrainedWeightsError, match="another architecture"):
        models.load_pretrained(target, tmp_path / "narrow.pth")
    with pytest.raises(models.PretrainedWeightsError, match="No tensor"):
        models.load_pretrained(build_small("classification", "mobilenet_v3_small"),
                               tmp_path / "resnet.pth")


def test_build_moves_the_model_to_the_device():
    model = models.build(models.get("classification", "small_cnn"), 3, device="cpu")

    assert {p.device.type for p in model.parameters()} == {"cpu"}


# --- purity ---------------------------------------------------------------------------------


def test_importing_the_models_pulls_in_no_django():
    probe = ("import sys, json, training_runtime.models; "
             "print(json.dumps(sorted({k.split('.')[0] for k in sys.modules})))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False)

    assert done.returncode == 0, done.stderr
    roots = set(json.loads(done.stdout))
    assert {"torch", "torchvision"} <= roots
    assert not roots & {"django", "rest_framework", "channels"}
