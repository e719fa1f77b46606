"""Pretrained weights: the catalogue matches torchvision's enums, checksums, fit checks, heads
replaced for another label count, and the store."""

import hashlib
import io

import pytest
import torch
from torchvision.models import get_weight

from training_runtime import catalogue
from training_runtime.models import get
from training_runtime.models.registry import get_by_name
from training_runtime.weights import (
    ChecksumMismatch,
    WeightsDoNotFit,
    WeightsNotFound,
    WeightStore,
    build_from_weights,
    check_fit,
    load_weights,
    verify_checksum,
)


def test_each_torchvision_algorithm_names_the_weights_torchvision_publishes():
    assert catalogue.get("classification", "small_cnn").weights is None
    for algorithm in catalogue.algorithms():
        if algorithm.name == "small_cnn":
            continue
        official = algorithm.weights
        enum = get_weight(official.enum)  # raises if torchvision has no such member
        assert official.url == enum.url
        assert enum.url.endswith("/" + official.file_name)
        assert official.file_name.removesuffix(".pth").endswith("-" + official.sha256_prefix)
        assert len(official.sha256_prefix) in (8, 10)


def _named_by_digest(tmp_path, payload: bytes, stem="resnet18", digits=8):
    digest = hashlib.sha256(payload).hexdigest()
    path = tmp_path / f"{stem}-{digest[:digits]}.pth"
    path.write_bytes(payload)
    return path, digest


@pytest.mark.parametrize("digits", [8, 10, 64])
def test_a_checksum_matches_by_torchvisions_prefix_or_in_full(tmp_path, digits):
    path, digest = _named_by_digest(tmp_path, b"weights", digits=digits)

    assert verify_checksum(path, digest[:digits]) == digest
    assert verify_checksum(io.BytesIO(b"weights"), digest[:digits]) == digest


def test_a_wrong_checksum_names_both_digests(tmp_path):
    path, digest = _named_by_digest(tmp_path, b"weights")
    wrong = "0" * 8 if not digest.startswith("0" * 8) else "1" * 8

    with pytest.raises(ChecksumMismatch) as caught:
        verify_checksum(path, wrong)
    assert wrong in str(caught.value) and digest in str(caught.value)


def test_weights_load_with_weights_only(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    torch.save({"fc.weight": torch.zeros(1), "x": Evil()}, path)
    with pytest.raises(Exception, match="weights_only"):
        load_weights(path)


def _small_cnn_state(labels=10):
    return get("classification", "small_cnn").builder(labels).state_dict()


def test_fit_reports_missing_unexpected_and_shapes_but_not_the_head():
    spec = get("classification", "small_cnn")
    model = spec.builder(3)
    state = _small_cnn_state(10)  # another label count: only the head differs

    report = check_fit(state, model, spec.head_prefixes)
    assert report.ok and set(report.head) == {"fc.weight", "fc.bias"}

    del state["features.0.0.weight"]
    state["extra.weight"] = torch.zeros(1)
    state["features.1.0.weight"] = torch.zeros(1, 1, 1, 1)
    report = check_fit(state, model, spec.head_prefixes)
    assert not report.ok
    assert report.missing == ("features.0.0.weight",)
    assert report.unexpected == ("extra.weight",)
    assert report.mismatched[0].startswith("features.1.0.weight")


def test_a_classifier_built_from_weights_keeps_the_body_and_gets_a_new_head(tmp_path):
    spec = get("classification", "mobilenet_v3_small")
    source = spec.builder(1000)
    path = tmp_path / "w.pth"
    torch.save(source.state_dict(), path)

    model = build_from_weights(spec, 4, path)

    assert model.classifier[3].out_features == 4
    torch.testing.assert_close(model.features[0][0].weight, source.features[0][0].weight)
    assert model(torch.rand(1, 3, 64, 64)).shape == (1, 4)


def test_a_detector_gets_torchvisions_predictors_for_the_new_labels():
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor

    spec = get("detection", "fasterrcnn_mobilenet_v3_large_320_fpn")
    coco = spec.builder(90)  # 91 classes with the background, as torchvision's COCO weights
    model = build_from_weights(spec, 2, coco.state_dict())

    predictor = model.roi_heads.box_predictor
    assert isinstance(predictor, FastRCNNPredictor)
    assert predictor.cls_score.out_features == 3 and predictor.bbox_pred.out_features == 12
    torch.testing.assert_close(model.rpn.head.conv[0][0].weight, coco.rpn.head.conv[0][0].weight)


def test_weights_of_another_architecture_do_not_fit():
    with pytest.raises(WeightsDoNotFit, match="do not fit mobilenet_v3_small"):
        build_from_weights(get("classification", "mobilenet_v3_small"), 2, _small_cnn_state())


# --- the store -----------------------------------------------------------------------------------

def _fake_official(tmp_path, monkeypatch, algorithm="resnet18"):
    """A file standing in for torchvision's, with the catalogue pointing at its checksum."""
    payload = io.BytesIO()
    torch.save(_small_cnn_state(), payload)
    data = payload.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    official = catalogue.OfficialWeights("X.V1", f"{algorithm}-{digest[:8]}.pth", digest[:8],
                                         "imagenet1k")
    monkeypatch.setitem(catalogue.OFFICIAL_WEIGHTS, algorithm, official)
    path = tmp_path / "download.pth"
    path.write_bytes(data)
    return path, official, digest


def test_the_store_adds_official_weights_by_checksum_and_finds_them(tmp_path, monkeypatch):
    path, official, digest = _fake_official(tmp_path, monkeypatch)
    store = WeightStore(tmp_path / "store")

    entry = store.add_official("resnet18", path)

    assert (entry.kind, entry.name, entry.sha256) == ("official", official.file_name, digest)
    assert store.path_for("resnet18").read_bytes() == path.read_bytes()
    assert [e.path for e in WeightStore(tmp_path / "store").list()] == [
        f"official/{official.file_name}"]


def test_the_store_refuses_official_weights_with_another_checksum(tmp_path, monkeypatch):
    path, official, _ = _fake_official(tmp_path, monkeypatch)
    path.write_bytes(path.read_bytes() + b"tampered")
    store = WeightStore(tmp_path / "store")

    with pytest.raises(ChecksumMismatch) as caught:
        store.add_official("resnet18", path)
    assert official.sha256_prefix in str(caught.value)
    assert hashlib.sha256(path.read_bytes()).hexdigest() in str(caught.value)
    assert store.list() == [] and list((tmp_path / "store").iterdir()) == []


def test_custom_weights_are_checked_to_fit_and_found_by_name(tmp_path):
    store = WeightStore(tmp_path / "store")
    good = tmp_path / "mine.pth"
    torch.save({"model": _small_cnn_state(7)}, good)  # a trainer checkpoint, 7 labels

    store.add_custom("small_cnn", "digits-v2", good)
    assert store.path_for("small_cnn", "digits-v2").is_file()
    assert store.custom_names("small_cnn") == ["digits-v2"]

    bad = tmp_path / "other.pth"
    torch.save(get_by_name("mobilenet_v3_small").builder(2).state_dict(), bad)
    with pytest.raises(WeightsDoNotFit):
        store.add_custom("small_cnn", "wrong", bad)
    with pytest.raises(ValueError, match="custom weights name"):
        store.add_custom("small_cnn", "../escape", good)
    assert store.custom_names("small_cnn") == ["digits-v2"]


def test_missing_weights_say_how_to_install_them(tmp_path):
    store = WeightStore(tmp_path / "store")
    with pytest.raises(WeightsNotFound, match="weights fetch --algorithm resnet18"):
        store.path_for("resnet18")
    with pytest.raises(WeightsNotFound, match="no official pretrained weights"):
        store.add_official("small_cnn", tmp_path / "x")


def test_the_pretrained_option_resolves_to_a_store_file(tmp_path, monkeypatch):
    from training_runtime.weights import pretrained_path

    path, _, _ = _fake_official(tmp_path, monkeypatch)
    store = WeightStore(tmp_path / "store")
    store.add_official("resnet18", path)
    mine = tmp_path / "mine.pth"
    torch.save(_small_cnn_state(2), mine)
    store.add_custom("small_cnn", "mine", mine)

    assert pretrained_path(store, "resnet18", False) is None
    assert pretrained_path(store, "resnet18", True) == store.path_for("resnet18")
    assert pretrained_path(store, "small_cnn", "mine").name == "mine.pth"
    with pytest.raises(WeightsNotFound):
        pretrained_path(store, "small_cnn", True)
