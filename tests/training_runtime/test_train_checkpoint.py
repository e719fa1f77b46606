"""Checkpoints are written atomically and read back with weights_only=True."""

import os
import random

import numpy as np
import pytest
import torch

from training_runtime.train import load_checkpoint, save_checkpoint, train
from training_runtime.train.checkpoint import capture_rng, restore_rng

from .test_train_support import blobs, config_in, tiny_net


def test_a_crash_while_saving_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"epoch": 1, "weights": torch.ones(3)})
    real_save = torch.save

    def crash_half_way(obj, fh, *args, **kwargs):
        fh.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash_half_way)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"epoch": 2, "weights": torch.zeros(3)})
    monkeypatch.setattr(torch, "save", real_save)

    state = load_checkpoint(path)
    assert state["epoch"] == 1
    assert torch.equal(state["weights"], torch.ones(3))
    assert os.listdir(tmp_path) == ["last.pt"]


def test_a_save_replaces_the_file_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "sub" / "last.pt"
    save_checkpoint(path, {"epoch": 1})
    save_checkpoint(path, {"epoch": 2})

    assert load_checkpoint(path)["epoch"] == 2
    assert os.listdir(path.parent) == ["last.pt"]


def test_rng_states_round_trip_through_a_weights_only_checkpoint(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.normal()  # a cached gaussian is part of numpy's state
    save_checkpoint(tmp_path / "rng.pt", {"rng": capture_rng(include_cuda=False)})
    expected = (random.random(), np.random.normal(), torch.rand(2))

    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    restore_rng(load_checkpoint(tmp_path / "rng.pt")["rng"])
    again = (random.random(), np.random.normal(), torch.rand(2))

    assert expected[:2] == again[:2]
    assert torch.equal(expected[2], again[2])


def test_a_training_checkpoint_loads_with_weights_only(tmp_path):
    result = train(tiny_net(), blobs(32), blobs(8), config_in(tmp_path, epochs=1,
                                                              optimizer="adamw"))

    state = torch.load(result.checkpoint_path, weights_only=True)
    best = torch.load(result.best_checkpoint_path, weights_only=True)
    assert state["epoch"] == 1 and state["global_step"] == 4
    assert state["config"]["optimizer"] == "adamw"
    assert best["metric_name"] == "accuracy"
    assert sorted(p.name for p in result.checkpoint_path.parent.iterdir()) == ["best.pt",
                                                                               "last.pt"]


def test_resume_refuses_a_checkpoint_of_another_epoch_size(tmp_path):
    done = train(tiny_net(), blobs(32), None, config_in(tmp_path, epochs=1))

    with pytest.raises(ValueError, match="steps per epoch"):
        train(tiny_net(), blobs(64), None, config_in(tmp_path, epochs=2),
              resume_from=done.checkpoint_path)
