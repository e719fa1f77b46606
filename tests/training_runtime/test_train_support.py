"""The world the training tests share: a tiny dataset, a tiny model, a recorder, a fake clock.

(Named test_train_* so it lives beside the tests; it holds no tests itself.)
"""

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.data import TensorDataset

from training_runtime.train import TrainConfig


def blobs(n=64, features=8, classes=3, seed=0):
    """`classes` Gaussian blobs in `features` dimensions: easy to learn, quick to train.

    The centres are the same for every seed; `seed` draws other points around them.
    """
    centres = torch.randn(classes, features, generator=torch.Generator().manual_seed(1234)) * 3
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    points = centres[labels] + torch.randn(n, features, generator=generator)
    return TensorDataset(points, labels)


class TinyNet(nn.Module):
    """An MLP with dropout, so the global RNG matters for determinism."""

    def __init__(self, features=8, classes=3):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(features, 16), nn.ReLU(), nn.Dropout(0.2),
                                  nn.Linear(16, classes))

    def forward(self, x):
        return self.body(x)


def tiny_net(seed=0):
    torch.manual_seed(seed)
    return TinyNet()


def config_in(tmp_path, name="run", **overrides):
    values = dict(checkpoint_dir=tmp_path / name, epochs=4, lr=0.05, batch_size=8,
                  warmup_epochs=0.5, seed=3, weight_decay=1e-4)
    values.update(overrides)
    return TrainConfig(**values)


def same_weights(a, b):
    a, b = dict(a), dict(b)
    assert a.keys() == b.keys()
    return all(torch.equal(a[k], b[k]) for k in a)


@dataclass
class Recorder:
    """Every event the loop sent, in order; can cancel at a given global step or epoch."""

    steps: list = field(default_factory=list)
    epochs: list = field(default_factory=list)
    checkpoints: list = field(default_factory=list)
    stops: list = field(default_factory=list)
    cancel_token: object = None
    cancel_at_step: int | None = None
    cancel_at_epoch: int | None = None

    def on_step(self, progress):
        self.steps.append(progress)
        if progress.global_step == self.cancel_at_step:
            self.cancel_token.cancel()

    def on_epoch(self, progress):
        self.epochs.append(progress)
        if progress.epoch == self.cancel_at_epoch:
            self.cancel_token.cancel()

    def on_checkpoint(self, path):
        self.checkpoints.append(path)

    def on_stop(self, stopped):
        self.stops.append(stopped)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds
