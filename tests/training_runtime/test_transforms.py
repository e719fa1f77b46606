"""Augmentation and resizing with transforms v2: boxes and masks follow the image."""

import pytest
import torch
from PIL import Image
from torchvision import tv_tensors

from training_runtime.data import TorchDataset, eval_transforms, read_dataset, train_transforms


def two_colour_image():
    """32x32: left half red, right half blue."""
    image = Image.new("RGB", (32, 32), (255, 0, 0))
    image.paste((0, 0, 255), (16, 0, 32, 32))
    return image


def target_with_box_and_mask():
    mask = torch.zeros((1, 32, 32), dtype=torch.uint8)
    mask[0, 4:12, 2:10] = 1  # rows y 4..11, columns x 2..9: the box (2, 4, 10, 12)
    return {"boxes": tv_tensors.BoundingBoxes([[2.0, 4.0, 10.0, 12.0]], format="XYXY",
                                              canvas_size=(32, 32)),
            "labels": torch.tensor([1]), "masks": tv_tensors.Mask(mask)}


def extent(mask):
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]


def test_a_box_and_its_mask_follow_a_resize_and_a_horizontal_flip():
    transform = train_transforms("segmentation", 64, hflip_p=1.0, color_jitter=0.0)

    image, target = transform(two_colour_image(), target_with_box_and_mask())

    assert image.shape == (3, 64, 64) and image.dtype == torch.float32
    assert image[:, 10, 5].tolist() == pytest.approx([0.0, 0.0, 1.0])  # blue is now on the left
    assert target["boxes"].tolist() == [[44.0, 8.0, 60.0, 24.0]]  # x2 scale, then x -> 64 - x
    assert extent(target["masks"][0]) == [44, 8, 60, 24]
    assert target["labels"].tolist() == [1]


def test_eval_transforms_resize_to_height_and_width_without_flipping():
    image, target = eval_transforms("detection", (16, 64))(two_colour_image(),
                                                           target_with_box_and_mask())

    assert image.shape == (3, 16, 64)
    assert target["boxes"].tolist() == [[4.0, 2.0, 20.0, 6.0]]


def test_classification_is_normalised_with_imagenet_statistics_by_default():
    image = eval_transforms("classification", 8)(Image.new("RGB", (32, 32), (255, 255, 255)))

    assert image[0, 0, 0].item() == pytest.approx((1 - 0.485) / 0.229, rel=1e-4)


def test_the_torch_dataset_yields_classification_pairs(folders_root):
    index, _ = read_dataset(folders_root, "classification", "folders")
    train, _ = index.split(0.3)

    dataset = TorchDataset(index, train, train_transforms("classification", 24))
    image, label = dataset[0]

    assert len(dataset) == len(train)
    assert image.shape == (3, 24, 24)
    assert label == train[0].label


def test_the_torch_dataset_yields_segmentation_targets_in_torchvision_format(coco_root):
    index, report = read_dataset(coco_root, "segmentation", "coco")
    assert report.ok

    dataset = TorchDataset(index, transforms=eval_transforms("segmentation", 64))
    image, target = dataset[0]  # images/a.jpg: cat (2,2,12,12) and dog (20,20,32,32)

    assert image.shape == (3, 64, 64)
    assert target["labels"].tolist() == [1, 2]  # label index + 1: 0 is background
    assert target["boxes"].tolist() == [[4.0, 4.0, 24.0, 24.0], [40.0, 40.0, 64.0, 64.0]]
    assert target["masks"].shape == (2, 64, 64)
    assert extent(target["masks"][0]) == pytest.approx([4, 4, 24, 24], abs=2)
    assert len(dataset[1][1]["boxes"]) == 0  # image b.png holds only a crowd object


def test_rle_masks_decode_and_crowd_objects_can_be_kept(coco_root):
    index, _ = read_dataset(coco_root, "segmentation", "coco")

    _, target = TorchDataset(index, include_crowd=True)[1]

    assert target["masks"].shape == (1, 32, 32)
    assert int(target["masks"].sum()) == 32 * 32
