"""run_job: from an extracted folder dataset to an exported artifact, resumable."""

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from training_runtime.pipeline import JobDataError, TrainingJob, run_job
from training_runtime.predict import Predictor


def digits_folders(root, per_label=12, labels=(0, 1, 7)):
    """load_digits images as 32x32 PNGs, one folder per digit."""
    digits = load_digits()
    for label in labels:
        folder = root / f"digit-{label}"
        folder.mkdir(parents=True)
        picks = np.flatnonzero(digits.target == label)[:per_label]
        for i in picks:
            pixels = (digits.images[i] * 255 / 16).astype(np.uint8)
            Image.fromarray(pixels).resize((32, 32)).convert("RGB").save(folder / f"{i}.png")
    return root


def job(tmp_path, **overrides):
    values = dict(scenario="classification", model_name="small_cnn",
                  train_root=digits_folders(tmp_path / "data"), data_format="folders",
                  work_dir=tmp_path / "run", epochs=6, lr=3e-3, batch_size=8, warmup_epochs=0)
    values.update(overrides)
    return TrainingJob(**values)


def test_a_folder_dataset_trains_and_exports_a_predictor_artifact(tmp_path):
    outcome = run_job(job(tmp_path))
    assert outcome.result.stop_reason == "completed" and outcome.result.epochs_run == 6
    assert outcome.labels == ["digit-0", "digit-1", "digit-7"]
    assert outcome.validation == "holdout" and outcome.warnings  # 36 images: for reference
    assert outcome.result.best_metric > 0.5
    predictor = Predictor.load(outcome.artifact_path, "cpu")
    image = next((tmp_path / "data" / "digit-7").iterdir())
    top = predictor.predict([image.read_bytes()], top_k=1)[0]
    assert top[0]["label"] in outcome.labels


def test_a_retried_job_resumes_from_its_checkpoint(tmp_path):
    first = job(tmp_path)
    cancel = CancelAfter(steps=5)
    stopped = run_job(first, callbacks=[cancel], cancel=cancel)
    assert stopped.result.stop_reason == "cancelled"
    resumed = run_job(first)
    assert resumed.result.stop_reason == "completed" and resumed.result.epochs_run == 6
    assert resumed.result.global_step > stopped.result.global_step


class CancelAfter:
    """Asks the loop to stop after `steps` steps (a cancel token that is also a callback)."""

    def __init__(self, steps):
        self.steps, self.seen = steps, 0

    def is_set(self):
        return self.seen >= self.steps

    def on_step(self, progress):
        self.seen += 1


def test_invalid_data_is_a_job_data_error_with_the_report(tmp_path):
    root = tmp_path / "bad"
    (root / "only").mkdir(parents=True)
    (root / "only" / "x.png").write_bytes(b"not a png")
    with pytest.raises(JobDataError) as caught:
        run_job(job(tmp_path, train_root=root))
    assert caught.value.errors and caught.value.errors[0]["file"] == "only/x.png"
