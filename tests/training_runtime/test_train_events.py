"""Callbacks receive step, epoch, checkpoint and stop events with sensible values."""

import math

import psutil
import pytest

from training_runtime.train import LRSchedule, train

from .test_train_support import FakeClock, Recorder, blobs, config_in, tiny_net


@pytest.fixture
def recorded(tmp_path):
    recorder = Recorder()
    config = config_in(tmp_path, epochs=3)
    result = train(tiny_net(), blobs(60), blobs(30, seed=1), config, callbacks=[recorder])
    return recorder, result, config


def test_every_step_is_reported_once_in_order(recorded):
    recorder, result, _ = recorded

    assert [s.global_step for s in recorder.steps] == list(range(1, 25))
    assert [s.step for s in recorder.steps[:9]] == [1, 2, 3, 4, 5, 6, 7, 8, 1]
    assert {s.epoch for s in recorder.steps} == {1, 2, 3}
    assert all(s.total_steps == 24 for s in recorder.steps)
    assert result.global_step == 24


def test_step_events_carry_a_finite_loss_the_scheduled_lr_and_a_non_negative_eta(recorded):
    recorder, _, config = recorded
    schedule = LRSchedule.from_config(config, steps_per_epoch=8)

    for step in recorder.steps:
        assert math.isfinite(step.loss) and step.loss >= 0
        assert step.lr == pytest.approx(schedule.lr(step.global_step - 1))
        assert step.eta_s >= 0 and step.elapsed_s >= 0 and step.samples_per_s >= 0
    assert recorder.steps[-1].eta_s == 0


def test_throughput_and_eta_come_from_measured_step_times(tmp_path):
    clock = FakeClock()
    recorder = Recorder()

    class TwoSecondSteps:
        def on_step(self, progress):
            clock.advance(2)

    train(tiny_net(), blobs(32), None, config_in(tmp_path, epochs=2),
          callbacks=[recorder, TwoSecondSteps()], clock=clock)
    # the loop reads the clock before the callbacks run, so step 1 took 0 s, each later one 2 s
    second = recorder.steps[1]

    assert second.samples_per_s == pytest.approx(16 / 2)
    assert second.eta_s == pytest.approx(1.0 * 6)
    assert second.elapsed_s == pytest.approx(2)


def test_epoch_events_carry_loss_metrics_and_resource_usage(recorded):
    recorder, result, _ = recorded

    assert [e.epoch for e in recorder.epochs] == [1, 2, 3]
    for epoch in recorder.epochs:
        assert math.isfinite(epoch.train_loss)
        assert 0 <= epoch.metrics["accuracy"] <= 1
        assert epoch.eta_s >= 0
        assert epoch.resources.cpu_percent >= 0
        assert 0 < epoch.resources.memory_mb < psutil.virtual_memory().total / 2**20
        assert epoch.resources.gpu_util_percent is None
        assert epoch.resources.gpu_memory_mb is None
    assert recorder.epochs[-1].eta_s == 0
    assert [h["metrics"] for h in result.history] == [e.metrics for e in recorder.epochs]


def test_checkpoints_and_the_stop_are_reported(recorded):
    recorder, result, _ = recorded

    assert recorder.checkpoints.count(result.checkpoint_path) == 3
    assert set(recorder.checkpoints) == {result.checkpoint_path, result.best_checkpoint_path}
    assert len(recorder.stops) == 1
    stopped = recorder.stops[0]
    assert (stopped.reason, stopped.epoch, stopped.best_metric) == ("completed", 3,
                                                                    result.best_metric)


def test_callbacks_may_implement_only_some_methods(tmp_path):
    seen = []

    class OnlyEpochs:
        def on_epoch(self, progress):
            seen.append(progress.epoch)

    train(tiny_net(), blobs(16), blobs(8), config_in(tmp_path, epochs=2), callbacks=[OnlyEpochs()])

    assert seen == [1, 2]


def test_a_custom_step_fn_trains_dict_batches(tmp_path):
    """Detection-style: the step sums a dict of losses; batches need not be (x, y) tensors."""
    import torch

    def step_fn(model, batch):
        logits = model(batch[0])
        losses = {"ce": torch.nn.functional.cross_entropy(logits, batch[1]),
                  "l2": 1e-3 * logits.pow(2).mean()}
        return sum(losses.values())

    result = train(tiny_net(), blobs(32), None, config_in(tmp_path, epochs=2), step_fn=step_fn)

    assert result.stop_reason == "completed"
    assert result.best_checkpoint_path is None
