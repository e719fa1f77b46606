"""auto: digits get a small input and a small network, photos and detection differ, and the
schedule fits the time budget measured from a step time."""

import pytest

from training_runtime import catalogue
from training_runtime.auto import ComputeBudget, DatasetStats, choose

CPU = ComputeBudget(device="cpu", cores=4, memory_gb=8, max_duration_s=1500)
GPU = ComputeBudget(device="gpu", cores=8, memory_gb=32, gpu_memory_gb=24, max_duration_s=3600)


def digits(**overrides):
    values = dict(scenario="classification", image_count=1800, label_count=10,
                  median_width=28, median_height=28, min_images_per_label=170)
    values.update(overrides)
    return DatasetStats(**values)


def photos(**overrides):
    values = dict(scenario="classification", image_count=400, label_count=4,
                  median_width=640, median_height=480, min_images_per_label=90)
    values.update(overrides)
    return DatasetStats(**values)


def boxes(**overrides):
    values = dict(scenario="detection", image_count=600, label_count=3, median_width=1024,
                  median_height=768, min_images_per_label=150, median_object_size=0.2,
                  objects_per_image=3)
    values.update(overrides)
    return DatasetStats(**values)


def test_digits_get_a_small_input_and_a_small_network():
    choice = choose(digits(), CPU)

    assert choice.algorithm == "small_cnn" and choice.input_size == (32, 32)
    assert any("no upscaling" in r for r in choice.reasons)
    assert choose(digits(), GPU).input_size == (32, 32)


def test_photos_get_a_pretrained_network_at_its_size():
    cpu, gpu = choose(photos(), CPU), choose(photos(), GPU)

    assert cpu.algorithm != "small_cnn" and cpu.input_size == (224, 224)
    assert catalogue.get("classification", cpu.algorithm).weights is not None
    assert gpu.algorithm == "resnet18" and gpu.batch_size > cpu.batch_size
    assert choose(photos(min_images_per_label=500, image_count=2000), GPU).algorithm == (
        "efficientnet_b0")
    mid = choose(photos(median_width=96, median_height=96), CPU)
    assert mid.input_size == (96, 96)


def test_detection_picks_by_device_object_size_and_density():
    assert choose(boxes(), CPU).algorithm == "fasterrcnn_mobilenet_v3_large_320_fpn"
    assert choose(boxes(median_object_size=0.02), GPU).algorithm == (
        "fasterrcnn_mobilenet_v3_large_fpn")
    assert choose(boxes(objects_per_image=40), GPU).algorithm == "retinanet_resnet50_fpn"
    small = choose(boxes(median_width=200, median_height=150), CPU)
    assert small.input_size == (160, 160)
    assert choose(boxes(scenario="segmentation"), GPU).algorithm == "maskrcnn_resnet50_fpn"


@pytest.mark.parametrize("step_s", [0.05, 0.5, 2.0])
def test_the_schedule_fits_the_time_budget_of_a_measured_step(step_s):
    calls = []

    def measured(algorithm, size, batch):
        calls.append((algorithm, size, batch))
        return step_s

    choice = choose(boxes(), CPU, step_seconds=measured)

    steps = -(-int(600 * 0.8) // choice.batch_size)
    assert calls == [(choice.algorithm, choice.input_size, choice.batch_size)]
    assert choice.estimated_epoch_s >= steps * step_s
    default = catalogue.get("detection", choice.algorithm).defaults.epochs
    assert 1 <= choice.epochs <= default
    if choice.epochs > 1:
        assert choice.epochs * choice.estimated_epoch_s <= CPU.max_duration_s
    assert choice.epochs < default or choice.epochs * choice.estimated_epoch_s <= 1500


def test_an_epoch_longer_than_the_budget_still_trains_one_and_says_so():
    choice = choose(boxes(), CPU, step_seconds=lambda *a: 60.0)

    assert choice.epochs == 1
    assert any("partial model" in r for r in choice.reasons)


def test_sgd_learning_rate_follows_the_batch_size():
    choice = choose(photos(), GPU)
    defaults = catalogue.get("classification", "resnet18").defaults
    assert choice.lr == pytest.approx(defaults.lr * choice.batch_size / defaults.batch_size)
    assert choice.as_config()["input_size"] == list(choice.input_size)


def test_auto_and_the_options_need_no_torch():
    from .test_purity import imported_roots

    roots = imported_roots("training_runtime.auto", "training_runtime.options",
                           "training_runtime.search")
    assert not roots & {"torch", "torchvision", "django"}
