"""Stop conditions: cancellation, time budget, target reached, non-finite loss, out of memory."""

import math

import pytest
import torch

from training_runtime.train import CancelToken, TrainingFailed, load_checkpoint, train

from .test_train_support import FakeClock, Recorder, blobs, config_in, same_weights, tiny_net


def test_cancellation_is_answered_within_one_step(tmp_path):
    token = CancelToken()
    recorder = Recorder(cancel_token=token, cancel_at_step=5)
    result = train(tiny_net(), blobs(64), blobs(16), config_in(tmp_path), cancel=token,
                   callbacks=[recorder])

    assert len(recorder.steps) == 5
    assert result.stop_reason == "cancelled"
    assert recorder.stops[-1].reason == "cancelled"
    assert load_checkpoint(result.checkpoint_path)["global_step"] == 5
    # last.pt, then the partial model of a stop inside the first epoch (test_train_partial.py)
    assert recorder.checkpoints[-2:] == [result.checkpoint_path, result.best_checkpoint_path]


def test_a_threading_event_also_cancels(tmp_path):
    import threading

    event = threading.Event()
    event.set()
    result = train(tiny_net(), blobs(64), None, config_in(tmp_path), cancel=event)

    assert result.stop_reason == "cancelled"
    assert result.global_step == 0
    assert result.checkpoint_path.exists()


def test_max_duration_stops_after_checkpointing(tmp_path):
    clock = FakeClock()

    class TenSecondSteps:
        def on_step(self, progress):
            clock.advance(10)

    recorder = Recorder()
    result = train(tiny_net(), blobs(64), blobs(16), config_in(tmp_path, max_duration_s=25),
                   callbacks=[TenSecondSteps(), recorder], clock=clock)

    assert result.stop_reason == "max_duration"
    assert len(recorder.steps) == 3
    state = load_checkpoint(result.checkpoint_path)
    assert state["global_step"] == 3
    assert state["elapsed_s"] == pytest.approx(30)
    assert recorder.stops[-1].reason == "max_duration"


def test_max_duration_counts_time_spent_before_a_resume(tmp_path):
    clock = FakeClock()

    class TenSecondSteps:
        def on_step(self, progress):
            clock.advance(10)

    first = train(tiny_net(), blobs(64), None, config_in(tmp_path, max_duration_s=25),
                  callbacks=[TenSecondSteps()], clock=clock)
    recorder = Recorder()
    again = train(tiny_net(), blobs(64), None, config_in(tmp_path, max_duration_s=45),
                  callbacks=[TenSecondSteps(), recorder], clock=clock,
                  resume_from=first.checkpoint_path)

    assert again.stop_reason == "max_duration"
    assert len(recorder.steps) == 2
    assert again.global_step == 5


def test_reaching_the_target_metric_stops_and_keeps_the_best_weights(tmp_path):
    recorder = Recorder()
    model = tiny_net()
    result = train(model, blobs(90), blobs(45, seed=1),
                   config_in(tmp_path, epochs=20, target_metric=0.9), callbacks=[recorder])

    assert result.stop_reason == "target_reached"
    assert result.epochs_run < 20
    assert result.best_metric >= 0.9
    assert result.best_epoch == result.epochs_run
    best = load_checkpoint(result.best_checkpoint_path)
    assert best["metric"] == result.best_metric
    assert best["epoch"] == result.best_epoch
    assert same_weights(best["model"], model.state_dict())
    assert recorder.stops[-1].reason == "target_reached"


def test_best_checkpoint_keeps_the_best_epoch_not_the_last(tmp_path):
    scores = iter([0.5, 0.8, 0.6])
    snapshots = {}

    def evaluate(model, loader):
        return {"accuracy": next(scores)}

    class Snapshot:
        def on_epoch(self, progress):
            snapshots[progress.epoch] = {k: v.clone() for k, v in model.state_dict().items()}

    model = tiny_net()
    result = train(model, blobs(32), blobs(8), config_in(tmp_path, epochs=3),
                   evaluate_fn=evaluate, callbacks=[Snapshot()])

    assert (result.best_metric, result.best_epoch, result.stop_reason) == (0.8, 2, "completed")
    assert same_weights(load_checkpoint(result.best_checkpoint_path)["model"], snapshots[2])
    assert same_weights(load_checkpoint(result.checkpoint_path)["model"], snapshots[3])


def test_a_nan_loss_fails_naming_the_step(tmp_path):
    calls = {"n": 0}

    def loss_fn(logits, labels):
        calls["n"] += 1
        loss = torch.nn.functional.cross_entropy(logits, labels)
        return loss * math.nan if calls["n"] == 3 else loss

    with pytest.raises(TrainingFailed) as failed:
        train(tiny_net(), blobs(64), None, config_in(tmp_path), loss_fn=loss_fn)

    assert failed.value.reason_code == "non_finite_loss"
    assert "step 3" in failed.value.message
    assert "learning rate" in failed.value.message


def test_a_huge_learning_rate_fails_as_non_finite_loss(tmp_path):
    with pytest.raises(TrainingFailed) as failed:
        train(tiny_net(), blobs(64), None,
              config_in(tmp_path, lr=1e30, warmup_epochs=0, epochs=3, momentum=0.0))

    assert failed.value.reason_code == "non_finite_loss"
    assert "Lower the learning rate" in failed.value.message


def test_out_of_memory_fails_with_the_batch_size_and_a_smaller_one(tmp_path):
    def step_fn(model, batch):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with pytest.raises(TrainingFailed) as failed:
        train(tiny_net(), blobs(64), None, config_in(tmp_path, batch_size=16), step_fn=step_fn)

    assert failed.value.reason_code == "out_of_memory"
    assert "batch size 16" in failed.value.message
    assert "batch size 8" in failed.value.message
    assert isinstance(failed.value.__cause__, torch.OutOfMemoryError)


def test_out_of_memory_during_evaluation_is_reported_too(tmp_path):
    def evaluate(model, loader):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(TrainingFailed) as failed:
        train(tiny_net(), blobs(32), blobs(8), config_in(tmp_path), evaluate_fn=evaluate)

    assert failed.value.reason_code == "out_of_memory"
    assert "evaluation" in failed.value.message


def test_missing_metric_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="'mAP'"):
        train(tiny_net(), blobs(32), blobs(8), config_in(tmp_path, metric_name="mAP"))


def test_cuda_on_a_machine_without_it_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    with pytest.raises(TrainingFailed) as failed:
        train(tiny_net(), blobs(32), None, config_in(tmp_path, device="cuda"))

    assert failed.value.reason_code == "device_unavailable"


def test_amp_and_channels_last_are_ignored_on_cpu(tmp_path):
    plain = tiny_net()
    train(plain, blobs(32), blobs(8), config_in(tmp_path, "plain"))
    asked = tiny_net()
    result = train(asked, blobs(32), blobs(8), config_in(tmp_path, "asked", amp=True,
                                                         channels_last=True))

    assert result.stop_reason == "completed"
    assert load_checkpoint(result.checkpoint_path)["scaler"] is None
    assert same_weights(plain.state_dict(), asked.state_dict())


def test_loss_fn_and_step_fn_together_are_refused(tmp_path):
    with pytest.raises(ValueError, match="not both"):
        train(tiny_net(), blobs(8), None, config_in(tmp_path),
              loss_fn=torch.nn.functional.cross_entropy, step_fn=lambda m, b: m(b[0]).sum())
