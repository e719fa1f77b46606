"""Effective options and the spec become TrainingJob arguments; the job trains with them."""

import pytest
import torch

from training_runtime import catalogue
from training_runtime.job_options import job_arguments
from training_runtime.models import get
from training_runtime.options import resolve_options
from training_runtime.pipeline import run_job
from training_runtime.weights import WeightsNotFound, WeightStore

from .test_pipeline import job


def test_options_become_job_arguments_with_the_store_file_and_the_loading_plan(tmp_path):
    store = WeightStore(tmp_path / "weights")
    mine = tmp_path / "mine.pth"
    torch.save(get("classification", "small_cnn").builder(5).state_dict(), mine)
    store.add_custom("small_cnn", "mine", mine)
    effective, errors = resolve_options(
        {"pretrained": "mine", "image_size": 32, "augmentation": "none", "optimizer": "adam",
         "early_stopping_patience": 2, "seed": 4}, catalogue.get("classification", "small_cnn"),
        custom_weights=store.custom_names("small_cnn"))
    assert errors == {}

    args = job_arguments(effective, model_name="small_cnn", weights_root=store.root, cores=8,
                         device="cuda", set_threads=False)

    assert args["pretrained"] == str(store.path_for("small_cnn", "mine"))
    assert args["input_size"] == (32, 32) and args["optimizer"] == "adam" and args["seed"] == 4
    assert args["num_workers"] == 7 and args["persistent_workers"] is True
    with pytest.raises(WeightsNotFound):
        job_arguments({"pretrained": True}, model_name="resnet18", weights_root=store.root,
                      cores=2, device="cpu", set_threads=False)


def test_a_job_trains_from_custom_weights_with_its_options(tmp_path):
    source = get("classification", "small_cnn").builder(5)
    path = tmp_path / "mine.pth"
    torch.save(source.state_dict(), path)
    effective, _ = resolve_options({"pretrained": "mine", "image_size": 32, "optimizer": "adam",
                                    "freeze_backbone_epochs": 1}, catalogue.get(
                                        "classification", "small_cnn"), epochs=2)
    store = WeightStore(tmp_path / "weights")
    store.add_custom("small_cnn", "mine", path)
    args = job_arguments(effective, model_name="small_cnn", weights_root=store.root, cores=1,
                         device="cpu", set_threads=False)

    outcome = run_job(job(tmp_path, epochs=2, **args))

    assert outcome.result.stop_reason == "completed"
    trained = torch.load(outcome.result.best_checkpoint_path, weights_only=True)
    assert trained["config"]["optimizer"] == "adam"
    assert trained["config"]["freeze_backbone_epochs"] == 1
    assert trained["model"]["fc.weight"].shape[0] == 3  # the head replaced for 3 labels
