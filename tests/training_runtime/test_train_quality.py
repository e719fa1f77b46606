"""A real (small) task: sklearn's 8x8 digits reach 95 % validation accuracy on CPU."""

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import TensorDataset

from training_runtime.train import TrainConfig, train


class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(32 * 4 * 4, 10))

    def forward(self, x):
        return self.head(self.features(x))


def digits_split():
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(digits.target, dtype=torch.int64)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    train_idx, val_idx = order[:1437], order[1437:]
    return (TensorDataset(images[train_idx], labels[train_idx]),
            TensorDataset(images[val_idx], labels[val_idx]))


def test_a_small_cnn_learns_the_digits(tmp_path):
    train_set, val_set = digits_split()
    torch.manual_seed(0)
    config = TrainConfig(checkpoint_dir=tmp_path, epochs=8, lr=0.1, batch_size=64,
                         warmup_epochs=0.5, weight_decay=5e-4, optimizer="sgd", seed=0)

    result = train(DigitsCNN(), train_set, val_set, config)

    assert result.best_metric >= 0.95, result.history
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
