"""On CPU with a fixed seed, runs are reproducible, and resumed runs end where unbroken ones do."""

from training_runtime.train import CancelToken, load_checkpoint, train

from .test_train_support import Recorder, blobs, config_in, same_weights, tiny_net


def run(tmp_path, name, model_seed=0, **kwargs):
    model = tiny_net(model_seed)
    result = train(model, blobs(60), blobs(30, seed=1), config_in(tmp_path, name), **kwargs)
    return model, result


def test_two_runs_with_the_same_seed_end_with_identical_weights(tmp_path):
    first, _ = run(tmp_path, "a")
    second, _ = run(tmp_path, "b")

    assert same_weights(first.state_dict(), second.state_dict())


def test_a_different_seed_gives_different_weights(tmp_path):
    first, _ = run(tmp_path, "a")
    model = tiny_net(0)
    train(model, blobs(60), blobs(30, seed=1), config_in(tmp_path, "b", seed=4))

    assert not same_weights(first.state_dict(), model.state_dict())


def test_resume_after_epoch_2_of_4_matches_an_unbroken_run(tmp_path):
    unbroken, full = run(tmp_path, "full")
    token = CancelToken()
    _, first_half = run(tmp_path, "half", callbacks=[Recorder(cancel_token=token,
                                                              cancel_at_epoch=2)], cancel=token)
    assert first_half.stop_reason == "cancelled"
    assert first_half.epochs_run == 2

    resumed = tiny_net(seed=99)  # other initial weights: all must come from the checkpoint
    result = train(resumed, blobs(60), blobs(30, seed=1), config_in(tmp_path, "half"),
                   resume_from=first_half.checkpoint_path)

    assert result.stop_reason == "completed"
    assert result.epochs_run == 4
    assert result.global_step == full.global_step == 32
    assert same_weights(unbroken.state_dict(), resumed.state_dict())
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]
    assert [h["train_loss"] for h in result.history] == [h["train_loss"] for h in full.history]
    assert [h["metrics"] for h in result.history] == [h["metrics"] for h in full.history]


def test_resume_after_a_mid_epoch_cancellation_matches_an_unbroken_run(tmp_path):
    unbroken, _ = run(tmp_path, "full")
    token = CancelToken()
    _, stopped = run(tmp_path, "cut", callbacks=[Recorder(cancel_token=token, cancel_at_step=13)],
                     cancel=token)
    state = load_checkpoint(stopped.checkpoint_path)
    assert (state["global_step"], state["epoch"], state["step_in_epoch"]) == (13, 1, 5)

    resumed = tiny_net(seed=99)
    recorder = Recorder()
    result = train(resumed, blobs(60), blobs(30, seed=1), config_in(tmp_path, "cut"),
                   resume_from=stopped.checkpoint_path, callbacks=[recorder])

    assert recorder.steps[0].global_step == 14
    assert recorder.steps[0].epoch == 2 and recorder.steps[0].step == 6
    assert result.stop_reason == "completed"
    assert same_weights(unbroken.state_dict(), resumed.state_dict())


def test_resuming_a_finished_run_trains_no_further(tmp_path):
    model, done = run(tmp_path, "done")
    again = tiny_net(5)
    result = train(again, blobs(60), blobs(30, seed=1), config_in(tmp_path, "done"),
                   resume_from=done.checkpoint_path)

    assert result.stop_reason == "completed"
    assert result.global_step == done.global_step
    assert same_weights(model.state_dict(), again.state_dict())


def test_adamw_and_step_schedule_resume_exactly_too(tmp_path):
    settings = dict(optimizer="adamw", lr=0.01, schedule="step", step_size=1, gamma=0.5)
    unbroken = tiny_net()
    train(unbroken, blobs(60), None, config_in(tmp_path, "full", **settings))
    token = CancelToken()
    cut = train(tiny_net(), blobs(60), None, config_in(tmp_path, "cut", **settings),
                cancel=token, callbacks=[Recorder(cancel_token=token, cancel_at_step=19)])
    resumed = tiny_net(7)
    train(resumed, blobs(60), None, config_in(tmp_path, "cut", **settings),
          resume_from=cut.checkpoint_path)

    assert same_weights(unbroken.state_dict(), resumed.state_dict())
