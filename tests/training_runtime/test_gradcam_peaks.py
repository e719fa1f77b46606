"""Grad-CAM points at what decides the class, on a classifier and an image built for it.

The classifier's weights are set by hand: it calls an image "red" when it holds red, and
ignores green. The image is dark with a red patch in its bottom-right quadrant (what decides)
and an equally bright green patch in its top-left one (a distractor). A map of brightness, a
constant map or noise fails the check; the assertion itself is tested on them first.
"""

import numpy as np
import pytest
import torch
from torch import nn

from training_runtime.predict import gradcam

SIZE = 32
RED, OTHER = 1, 0


def red_detector() -> nn.Module:
    """Scores "red" by the mean of a red-minus-green-and-blue response; "other" is a constant."""
    colour = nn.Conv2d(3, 1, kernel_size=1)
    smooth = nn.Conv2d(1, 1, kernel_size=3, padding=1)  # the last conv: Grad-CAM's layer
    head = nn.Linear(1, 2)
    with torch.no_grad():
        colour.weight.copy_(torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1))
        colour.bias.zero_()
        smooth.weight.fill_(1 / 9)
        smooth.bias.zero_()
        head.weight.copy_(torch.tensor([[0.0], [100.0]]))
        head.bias.copy_(torch.tensor([1.0, 0.0]))
    return nn.Sequential(colour, nn.ReLU(), smooth, nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), head).eval()


def patched_image() -> torch.Tensor:
    """Dark, a red 8x8 patch in the bottom-right quadrant, a green one in the top-left."""
    image = torch.zeros(3, SIZE, SIZE)
    image[0, 20:28, 20:28] = 1.0
    image[1, 4:12, 4:12] = 1.0
    return image


def quadrant_share(heatmap: np.ndarray) -> float:
    """The share of the map's mass in the bottom-right quadrant."""
    half = SIZE // 2
    total = float(heatmap.sum())
    return float(heatmap[half:, half:].sum()) / total if total > 0 else 0.0


def assert_peaks_bottom_right(heatmap: np.ndarray) -> None:
    half = SIZE // 2
    row, col = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    assert row >= half and col >= half, f"peak at {(row, col)}"
    assert quadrant_share(heatmap) > 0.9, f"{quadrant_share(heatmap):.2f} of the mass"


@pytest.mark.parametrize("impostor", [
    np.ones((SIZE, SIZE), np.float32),                                  # constant
    np.random.default_rng(0).random((SIZE, SIZE), dtype=np.float32),    # noise
    patched_image().sum(dim=0).numpy(),                                 # brightness
])
def test_the_check_refuses_maps_that_do_not_follow_the_decision(impostor):
    with pytest.raises(AssertionError):
        assert_peaks_bottom_right(impostor)


def test_the_map_peaks_on_the_patch_that_decides_the_class():
    model, image = red_detector(), patched_image()
    assert int(model(image[None]).argmax()) == RED

    heatmap = gradcam(model, image)  # the top class: red

    assert heatmap.shape == (SIZE, SIZE)
    assert_peaks_bottom_right(heatmap)
    assert heatmap[4:12, 4:12].max() == 0  # the green patch is no evidence


def test_a_class_with_no_evidence_in_the_image_gets_an_empty_map():
    heatmap = gradcam(red_detector(), patched_image(), target_label=OTHER)
    assert not heatmap.any()
