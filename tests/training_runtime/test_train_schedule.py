"""Learning rate over steps, and the config's validation."""

import itertools
import math

import pytest

from training_runtime.train import LRSchedule, TrainConfig, lr_at

from .test_train_support import config_in


def test_warmup_starts_near_zero_and_reaches_the_base_lr():
    values = [lr_at(s, 100, 10, 0.1) for s in range(10)]

    assert values[0] == pytest.approx(0.01)
    assert values[9] == pytest.approx(0.1)
    assert all(a < b for a, b in itertools.pairwise(values))


def test_cosine_is_half_way_down_at_mid_point_and_zero_at_the_end():
    assert lr_at(10, 110, 10, 0.1) == pytest.approx(0.1)
    assert lr_at(60, 110, 10, 0.1) == pytest.approx(0.05)
    assert lr_at(110, 110, 10, 0.1) == pytest.approx(0.0, abs=1e-12)
    assert lr_at(109, 110, 10, 0.1) > 0


def test_cosine_without_warmup_starts_at_the_base_lr():
    assert lr_at(0, 50, 0, 0.2) == pytest.approx(0.2)
    assert lr_at(25, 50, 0, 0.2) == pytest.approx(0.1)


def test_step_decay_multiplies_by_gamma_every_step_size_epochs():
    def at(step):
        return lr_at(step, 100, 0, 1.0, schedule="step", steps_per_epoch=10, step_size=3,
                     gamma=0.5)

    assert at(0) == at(29) == pytest.approx(1.0)
    assert at(30) == pytest.approx(0.5)
    assert at(60) == pytest.approx(0.25)
    assert at(99) == pytest.approx(0.125)


def test_step_decay_warmup_ramps_to_the_step_value():
    assert lr_at(0, 100, 4, 1.0, schedule="step", steps_per_epoch=10) == pytest.approx(0.25)
    assert lr_at(3, 100, 4, 1.0, schedule="step", steps_per_epoch=10) == pytest.approx(1.0)


def test_fractional_warmup_epochs_become_whole_steps(tmp_path):
    schedule = LRSchedule.from_config(config_in(tmp_path, epochs=3, warmup_epochs=0.5), 8)

    assert schedule.total_steps == 24
    assert schedule.warmup_steps == 4


def test_negative_step_is_refused():
    with pytest.raises(ValueError, match="step -1"):
        lr_at(-1, 10, 0, 0.1)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("epochs", 0, "epochs"), ("lr", -1.0, "lr"), ("lr", math.nan, "lr"),
    ("batch_size", 0, "batch_size"), ("warmup_epochs", 5.0, "warmup_epochs"),
    ("schedule", "linear", "schedule"), ("optimizer", "lion", "optimizer"),
    ("gamma", 0.0, "gamma"), ("momentum", 1.0, "momentum"), ("device", "gpu", "device"),
    ("max_duration_s", 0, "max_duration_s"), ("target_metric", math.inf, "target_metric"),
    ("metric_name", "", "metric_name"), ("num_workers", -1, "num_workers"),
    ("epochs", True, "epochs"),
])
def test_invalid_settings_are_refused_with_the_field_named(tmp_path, field, value, message):
    with pytest.raises(ValueError, match=message):
        config_in(tmp_path, **{field: value})


def test_config_round_trips_through_plain_values(tmp_path):
    config = config_in(tmp_path, device="cuda:1", amp=True, target_metric=0.9)

    assert TrainConfig.from_dict(config.to_dict()) == config
    assert isinstance(config.to_dict()["checkpoint_dir"], str)
    assert config.use_amp and not config_in(tmp_path, amp=True).use_amp
