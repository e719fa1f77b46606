"""One device rule for every worker: TASK_DEVICE, with "auto" meaning CUDA when present."""

import types

import pytest
import torch

from training_runtime.device import pick_device


@pytest.fixture
def cuda_present(monkeypatch):
    """A machine that reports CUDA, so that a worker ignoring TASK_DEVICE would pick it."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)


@pytest.mark.parametrize(("setting", "cuda", "device"), [
    ("auto", True, "cuda"), ("auto", False, "cpu"), ("cpu", True, "cpu"),
    ("cuda", False, "cuda"), ("cuda:1", True, "cuda:1"),
])
def test_the_setting_and_the_machine_choose(monkeypatch, setting, cuda, device):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert pick_device(setting) == device


def test_a_job_that_wants_no_gpu_runs_on_the_cpu(cuda_present):
    assert pick_device("auto", gpu_wanted=False) == "cpu"
    assert pick_device("cuda", gpu_wanted=False) == "cpu"


def _training() -> str:
    from tasks import runner

    return runner._device()


def _evaluation() -> str:
    from evaluation import runner

    return runner._device(types.SimpleNamespace(options={"device": "gpu"}))


def _serving() -> str:
    from serving import instance

    return instance._device()


@pytest.mark.parametrize("device_of", [_training, _evaluation, _serving])
def test_every_worker_honours_task_device(settings, cuda_present, device_of):
    settings.TASK_DEVICE = "cpu"
    assert device_of() == "cpu"
    settings.TASK_DEVICE = "auto"
    assert device_of() == "cuda"
