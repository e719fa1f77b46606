"""The options users set: validated into effective values, and honoured by the loop and the
transforms (frozen backbone, early stopping, the validation loss, adam, augmentation)."""

import pytest
import torch
from torch import nn
from torchvision import tv_tensors

from training_runtime import catalogue
from training_runtime.data.transforms import train_transforms
from training_runtime.models import get
from training_runtime.options import OPTION_NAMES, resolve_options
from training_runtime.train import TrainConfig, train

from .test_train_support import Recorder, blobs, config_in, tiny_net

RESNET = catalogue.get("classification", "resnet18")
SMALL = catalogue.get("classification", "small_cnn")


def test_no_options_give_every_effective_default():
    effective, errors = resolve_options({}, RESNET)

    assert errors == {}
    assert set(effective) == set(OPTION_NAMES)
    assert effective == {"image_size": [224, 224], "augmentation": "light", "optimizer": "sgd",
                         "freeze_backbone_epochs": 0, "early_stopping_patience": None,
                         "mixed_precision": True, "seed": 0, "pretrained": True}
    assert resolve_options({}, SMALL)[0]["pretrained"] is False  # no official weights


def test_given_options_are_kept():
    effective, errors = resolve_options(
        {"image_size": [96, 128], "augmentation": "strong", "optimizer": "adam",
         "freeze_backbone_epochs": 2, "early_stopping_patience": 3, "mixed_precision": False,
         "seed": 7, "pretrained": "mine"}, RESNET, epochs=5, custom_weights=["mine"])

    assert errors == {}
    assert effective["image_size"] == [96, 128] and effective["pretrained"] == "mine"
    assert resolve_options({"image_size": 32}, SMALL)[0]["image_size"] == [32, 32]


@pytest.mark.parametrize(("options", "field"), [
    ({"image_size": 8}, "image_size"), ({"image_size": [32]}, "image_size"),
    ({"image_size": True}, "image_size"), ({"augmentation": "max"}, "augmentation"),
    ({"optimizer": "lion"}, "optimizer"), ({"freeze_backbone_epochs": 5}, "freeze_backbone_epochs"),
    ({"freeze_backbone_epochs": -1}, "freeze_backbone_epochs"),
    ({"early_stopping_patience": 0}, "early_stopping_patience"),
    ({"mixed_precision": "yes"}, "mixed_precision"), ({"seed": -1}, "seed"),
    ({"seed": 1.5}, "seed"), ({"pretrained": "missing"}, "pretrained"),
    ({"pretrained": 3}, "pretrained"), ({"learning_rat": 1}, "learning_rat"),
])
def test_each_invalid_option_is_named(options, field):
    effective, errors = resolve_options(options, RESNET, epochs=5, custom_weights=["mine"])

    assert list(errors) == [field] and effective == {}


def test_pretrained_true_without_official_weights_is_an_error():
    assert "no official pretrained weights" in resolve_options({"pretrained": True}, SMALL)[1][
        "pretrained"]


# --- the loop ----------------------------------------------------------------------------------

class Watcher:
    """requires_grad of the first layer at every step."""

    def __init__(self, model):
        self.model, self.seen = model, []

    def on_step(self, progress):
        self.seen.append((progress.epoch, self.model.body[0].weight.requires_grad))


def test_the_backbone_does_not_train_for_the_frozen_epochs(tmp_path):
    model = tiny_net()
    first = model.body[0].weight.detach().clone()
    head = model.body[3].weight.detach().clone()
    watcher = Watcher(model)
    recorder = Recorder()
    config = config_in(tmp_path, epochs=3, freeze_backbone_epochs=2, frozen_prefixes=("body.0.",))

    class AfterEpochTwo:
        def on_epoch(self, progress):
            if progress.epoch == 2:
                assert torch.equal(model.body[0].weight, first)
                assert not torch.equal(model.body[3].weight, head)

    train(model, blobs(32), blobs(9), config, callbacks=[watcher, recorder, AfterEpochTwo()])

    assert {grad for epoch, grad in watcher.seen if epoch <= 2} == {False}
    assert {grad for epoch, grad in watcher.seen if epoch == 3} == {True}
    assert not torch.equal(model.body[0].weight, first)


def test_backbone_prefixes_name_real_parameters():
    for scenario in catalogue.SCENARIOS:
        for name in catalogue.names(scenario):
            if name in ("retinanet_resnet50_fpn", "maskrcnn_resnet50_fpn",
                        "fasterrcnn_mobilenet_v3_large_fpn"):
                continue  # same prefixes as their cheaper siblings; too big to build here
            spec = get(scenario, name)
            names = [n for n, _ in spec.builder(2).named_parameters()]
            frozen = [n for n in names if n.startswith(spec.backbone_prefixes)]
            assert frozen and len(frozen) < len(names), name
            assert not any(n.startswith(spec.head_prefixes) for n in frozen), name


class Flat(nn.Module):
    """A model whose validation accuracy never improves: it predicts a constant."""

    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(3))

    def forward(self, x):
        return self.bias.expand(x.shape[0], 3) + 0 * x[:, :3]


def test_early_stopping_ends_training_and_keeps_the_best(tmp_path):
    recorder = Recorder()
    result = train(Flat(), blobs(30), blobs(9), config_in(
        tmp_path, epochs=10, early_stopping_patience=2, lr=1e-6), callbacks=[recorder])

    assert result.stop_reason == "early_stopped"
    assert result.epochs_run == 3 and result.best_epoch == 1
    assert recorder.stops[-1].reason == "early_stopped"
    assert torch.load(result.best_checkpoint_path, weights_only=True)["epoch"] == 1


def test_epoch_events_carry_the_validation_loss_beside_the_training_loss(tmp_path):
    recorder = Recorder()
    result = train(tiny_net(), blobs(32), blobs(9), config_in(tmp_path, epochs=2),
                   callbacks=[recorder])

    losses = [e.val_loss for e in recorder.epochs]
    assert all(isinstance(v, float) and v > 0 for v in losses)
    assert [h["val_loss"] for h in result.history] == losses
    assert losses == [e.metrics["loss"] for e in recorder.epochs]


def test_adam_is_an_optimizer(tmp_path):
    from training_runtime.train import build_optimizer

    config = TrainConfig(checkpoint_dir=tmp_path, optimizer="adam")
    assert type(build_optimizer(tiny_net(), config)) is torch.optim.Adam
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(checkpoint_dir=tmp_path, optimizer="lion")


# --- augmentation ------------------------------------------------------------------------------

def _boxed_image():
    image = torch.zeros(3, 40, 40, dtype=torch.uint8)
    image[:, 5:15, 2:12] = 255  # the object, at x 2..12
    boxes = tv_tensors.BoundingBoxes([[2, 5, 12, 15]], format="XYXY", canvas_size=(40, 40))
    return tv_tensors.Image(image), {"boxes": boxes, "labels": torch.tensor([1])}


def test_a_flip_moves_the_box_with_the_image():
    torch.manual_seed(0)
    transform = train_transforms("detection", 40, hflip_p=1.0, color_jitter=0)
    image, target = transform(*_boxed_image())

    assert target["boxes"].tolist() == [[28.0, 5.0, 38.0, 15.0]]
    assert image[:, 10, 30].min() > 0.9 and image[:, 10, 5].max() < 0.1


@pytest.mark.parametrize("level", ["none", "light", "strong"])
def test_every_augmentation_level_keeps_boxes_on_their_object(level):
    for seed in range(5):
        torch.manual_seed(seed)
        image, target = train_transforms("detection", 40, augmentation=level)(*_boxed_image())
        if len(target["boxes"]) == 0:
            continue  # strong may move the object out of the frame: sanitised away
        x0, y0, x1, y1 = (round(v) for v in target["boxes"][0].tolist())
        inside = image[:, y0:y1, x0:x1].mean()
        assert inside > image.mean(), (level, seed)
    with pytest.raises(ValueError, match="augmentation"):
        train_transforms("detection", 40, augmentation="max")


def test_none_is_deterministic_and_strong_is_not():
    image, _ = _boxed_image()
    plain = [train_transforms("classification", 32, augmentation="none")(image)
             for _ in range(2)]
    assert torch.equal(plain[0], plain[1])
    torch.manual_seed(0)
    strong = [train_transforms("classification", 32, augmentation="strong")(image)
              for _ in range(2)]
    assert not torch.equal(strong[0], strong[1])
