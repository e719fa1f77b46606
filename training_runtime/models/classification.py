"""Classification models: a small CNN for tiny images and torchvision's ImageNet architectures.

Every builder takes the number of dataset labels and returns a model whose final layer has that
many outputs. Nothing is downloaded: torchvision models are built with ``weights=None``;
pretrained weights come from ``training_runtime.models.weights.load_pretrained``.
"""

from __future__ import annotations

from torch import Tensor, nn
from torchvision import models as tv

# Keys of each model's final layer; its shape follows num_classes, so it is dropped, not loaded,
# when a checkpoint was trained for another number of labels.
SMALL_CNN_HEAD = ("fc.",)
RESNET_HEAD = ("fc.",)
MOBILENET_V3_HEAD = ("classifier.3.",)
EFFICIENTNET_HEAD = ("classifier.1.",)


def _conv_bn_relu(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """A 3x3 convolution, batch norm and ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    """Four conv-bn-relu stages, global average pooling and a linear layer, for tiny images.

    Meant for 32x32 or 64x64 inputs (CIFAR, MNIST-like data); three of the stages halve the
    resolution, and the global pool makes any input of at least 16x16 work.
    """

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 32,
                 dropout: float = 0.2) -> None:
        super().__init__()
        widths = (width, width * 2, width * 4, width * 8)
        self.features = nn.Sequential(
            _conv_bn_relu(in_channels, widths[0], stride=1),
            _conv_bn_relu(widths[0], widths[1], stride=2),
            _conv_bn_relu(widths[1], widths[2], stride=2),
            _conv_bn_relu(widths[2], widths[3], stride=2),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(widths[3], num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        """Logits of shape [N, num_classes] for images of shape [N, C, H, W]."""
        return self.fc(self.dropout(self.pool(self.features(x)).flatten(1)))


def build_small_cnn(num_classes: int, *, in_channels: int = 3, **kwargs) -> nn.Module:
    """A SmallCNN for `num_classes` labels."""
    return SmallCNN(num_classes, in_channels=in_channels, **kwargs)


def build_resnet18(num_classes: int, **kwargs) -> nn.Module:
    """torchvision's resnet18, randomly initialised, with `num_classes` outputs."""
    return tv.resnet18(weights=None, num_classes=num_classes, **kwargs)


def build_mobilenet_v3_small(num_classes: int, **kwargs) -> nn.Module:
    """torchvision's mobilenet_v3_small, randomly initialised, with `num_classes` outputs."""
    return tv.mobilenet_v3_small(weights=None, num_classes=num_classes, **kwargs)


def build_mobilenet_v3_large(num_classes: int, **kwargs) -> nn.Module:
    """torchvision's mobilenet_v3_large, randomly initialised, with `num_classes` outputs."""
    return tv.mobilenet_v3_large(weights=None, num_classes=num_classes, **kwargs)


def build_efficientnet_b0(num_classes: int, **kwargs) -> nn.Module:
    """torchvision's efficientnet_b0, randomly initialised, with `num_classes` outputs."""
    return tv.efficientnet_b0(weights=None, num_classes=num_classes, **kwargs)
