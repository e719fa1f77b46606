"""Every scenario's model leaves as ONNX and TorchScript files that answer as the eager model
does on held-out images: onnxruntime and torch.jit.load against the model itself.

Tolerance: 1e-4 absolute on logits, boxes, scores and mask probabilities (float32 throughout);
labels exactly. The export step itself refuses a file off by more than formats.MAX_ABS_DIFF.
"""

import json

import numpy as np
import onnxruntime
import pytest
import torch

from training_runtime import models
from training_runtime.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from training_runtime.export import export_artifact, load_manifest, sha256_of
from training_runtime.export import formats as export_formats

TOLERANCE = 1e-4
LABELS = ["cat", "dog", "bird"]
DETECTOR = ("detection", "fasterrcnn_mobilenet_v3_large_320_fpn", (96, 128),
            {"min_size": 96, "max_size": 128, "box_detections_per_img": 20,
             "rpn_pre_nms_top_n_test": 50, "rpn_post_nms_top_n_test": 4})
SEGMENTER = ("segmentation", "maskrcnn_resnet50_fpn", (64, 64),
             {"min_size": 64, "max_size": 64, "box_detections_per_img": 4,
              "rpn_pre_nms_top_n_test": 50, "rpn_post_nms_top_n_test": 20,
              "box_score_thresh": 0.0})
CLASSIFIER = ("classification", "small_cnn", (32, 32), {})


def distinct_scores(model):
    """A random detector scores every box alike; class biases give each label its own score,
    so the held-out images have detections to compare."""
    bias = model.roi_heads.box_predictor.cls_score.bias
    with torch.no_grad():
        bias.copy_(torch.linspace(0.0, 1.5, len(bias)).flip(0).roll(1))
    return model


def trained(scenario, name, size, options):
    """A tiny model after one optimiser step on tiny data (its weights no longer the init)."""
    torch.manual_seed(0)
    model = models.build(models.get(scenario, name), num_classes=len(LABELS), **options)
    optimiser = torch.optim.SGD(model.parameters(), lr=1e-4)
    model.train()
    images = torch.rand(2, 3, *size)
    if scenario == "classification":
        loss = torch.nn.functional.cross_entropy(model(images), torch.tensor([0, 2]))
    else:
        targets = [{"boxes": torch.tensor([[4.0, 4.0, 40.0, 30.0]]),
                    "labels": torch.tensor([1 + i])} for i in range(2)]
        if scenario == "segmentation":
            for target in targets:
                mask = torch.zeros(1, *size, dtype=torch.uint8)
                mask[:, 4:30, 4:40] = 1
                target["masks"] = mask
        loss = sum(model(list(images), targets).values())
    loss.backward()
    optimiser.step()
    model.eval()
    return model if scenario == "classification" else distinct_scores(model)


@pytest.fixture(scope="module", params=[CLASSIFIER, DETECTOR, SEGMENTER],
                ids=["classification", "detection", "segmentation"])
def exported(request, tmp_path_factory):
    scenario, name, size, options = request.param
    model = trained(scenario, name, size, options)
    path = export_artifact(
        model, tmp_path_factory.mktemp(scenario) / "model", scenario=scenario, model_name=name,
        labels=LABELS, input_size=size, build_options=options, metrics={}, portable=True,
        normalization=(IMAGENET_MEAN, IMAGENET_STD) if scenario == "classification" else None)
    return scenario, size, model, path


def held_out(scenario, size):
    """Images neither export nor its check saw: another seed, other pixel statistics."""
    generator = torch.Generator().manual_seed(1234)
    batch = 5 if scenario == "classification" else 1
    return torch.rand(batch, 3, *size, generator=generator) * 0.8 + 0.1


def eager_outputs(scenario, model, images):
    with torch.no_grad():
        if scenario == "classification":
            return [model(images).numpy()]
        out = model([images[0]])[0]
        keys = ["boxes", "labels", "scores"] + (["masks"] if scenario == "segmentation" else [])
        return [out[k].numpy() for k in keys]


def assert_same(expected, got):
    assert len(expected) == len(got)
    for a, b in zip(expected, got, strict=True):
        assert a.shape == b.shape
        if a.dtype.kind in "iu":
            assert np.array_equal(a, b)
        else:
            assert np.abs(a - b).max(initial=0.0) <= TOLERANCE


def test_onnx_answers_as_the_eager_model_on_held_out_images(exported):
    scenario, size, model, path = exported
    entry = load_manifest(path).exports["onnx"]
    images = held_out(scenario, size)
    session = onnxruntime.InferenceSession(str(path / entry["file"]),
                                           providers=["CPUExecutionProvider"])

    got = session.run(None, {entry["inputs"][0]["name"]: images.numpy()})

    expected = eager_outputs(scenario, model, images)
    assert_same(expected, got)
    if scenario != "classification":
        assert len(expected[0]) > 0  # something to compare
    assert entry["opset"] == export_formats.ONNX_OPSET
    assert 0 <= entry["max_abs_diff"] <= export_formats.MAX_ABS_DIFF


def test_torchscript_answers_as_the_eager_model_on_held_out_images(exported):
    scenario, size, model, path = exported
    entry = load_manifest(path).exports["torchscript"]
    images = held_out(scenario, size)

    with torch.no_grad():
        out = torch.jit.load(str(path / entry["file"]))(images)

    got = [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]
    assert_same(eager_outputs(scenario, model, images), got)


def test_the_manifest_documents_inputs_outputs_and_checksums(exported):
    scenario, size, _, path = exported
    manifest = json.loads((path / "manifest.json").read_text())

    for entry in manifest["exports"].values():
        assert manifest["files"][entry["file"]]["sha256"] == sha256_of(path / entry["file"])
    onnx = manifest["exports"]["onnx"]
    assert onnx["inputs"][0]["shape"][-2:] == list(size)
    assert manifest["preprocessing"]["colour_order"] == "RGB"
    assert ("normalise" in manifest["preprocessing"]) == (scenario == "classification")
    if scenario == "classification":
        assert onnx["inputs"][0]["shape"][0] == "batch"  # dynamic batch
    else:
        assert [o["name"] for o in onnx["outputs"]][:3] == ["boxes", "labels", "scores"]


def test_a_format_that_cannot_be_built_is_recorded_with_its_reason(tmp_path):
    class Unexportable(torch.nn.Module):
        def forward(self, x):
            return torch.linalg.eig(x[:, :, :3, :3].mean(1))[0].real.flatten(1)[:, :3]

    entries = export_formats.write_formats(Unexportable().eval(), tmp_path,
                                           scenario="classification", input_size=(8, 8),
                                           num_labels=3)

    assert "unavailable" in entries["onnx"] and entries["onnx"]["unavailable"]
    assert not (tmp_path / export_formats.ONNX_FILE).exists()
