"""A stop before the first epoch ends still yields a model: the weights of that moment,
validated, exported and marked partial."""

import torch

from training_runtime.pipeline import run_job
from training_runtime.predict import Predictor
from training_runtime.train import CancelToken, train

from .test_pipeline import CancelAfter, job
from .test_train_support import FakeClock, Recorder, blobs, config_in, tiny_net


def test_a_user_stop_inside_the_first_epoch_exports_a_partial_model(tmp_path):
    cancel = CancelAfter(steps=2)  # an epoch here is 4 steps
    outcome = run_job(job(tmp_path), callbacks=[cancel], cancel=cancel)

    result = outcome.result
    assert result.stop_reason == "cancelled" and result.epochs_run == 0
    assert outcome.partial and result.partial and result.global_step == 2
    assert outcome.artifact_path is not None
    assert set(result.best_metrics) >= {"accuracy", "loss"}
    assert result.best_metric == result.best_metrics["accuracy"]
    assert any("partial" in w for w in outcome.warnings)
    predictor = Predictor.load(outcome.artifact_path, "cpu")
    image = next((tmp_path / "data" / "digit-7").iterdir())
    assert predictor.predict([image.read_bytes()], top_k=1)[0][0]["label"] in outcome.labels


def test_the_time_limit_inside_the_first_epoch_keeps_the_weights_it_reached(tmp_path):
    clock = FakeClock()

    class SlowSteps:
        def on_step(self, progress):
            clock.advance(10)

    model, recorder = tiny_net(), Recorder()
    result = train(model, blobs(64), blobs(9), config_in(tmp_path, max_duration_s=25),
                   callbacks=[SlowSteps(), recorder], clock=clock)

    assert result.stop_reason == "max_duration" and result.partial
    best = torch.load(result.best_checkpoint_path, weights_only=True)
    assert best["partial"] is True and best["global_step"] == 3
    assert all(torch.equal(best["model"][k], v) for k, v in model.state_dict().items())
    assert recorder.stops[-1].partial
    # The last checkpoint still knows of no best epoch: a resumed run's first epoch replaces it.
    assert torch.load(result.checkpoint_path, weights_only=True)["best_epoch"] is None


def test_a_stop_before_any_step_or_after_an_epoch_is_not_partial(tmp_path):
    token = CancelToken()
    token.cancel()
    none = train(tiny_net(), blobs(16), blobs(9), config_in(tmp_path, "a"), cancel=token)
    assert not none.partial and none.best_checkpoint_path is None

    token = CancelToken()
    later = train(tiny_net(), blobs(16), blobs(9), config_in(tmp_path, "b"), cancel=token,
                  callbacks=[Recorder(cancel_token=token, cancel_at_step=3)])
    assert later.epochs_run == 1 and not later.partial and later.best_epoch == 1
