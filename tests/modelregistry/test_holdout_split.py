"""A model carries the split its training made: trained with a seed of its own, its automatic
evaluation on the hold-out split evaluates exactly the images training validated on."""

import pytest

from datasets import api as datasets
from evaluation import results
from evaluation.models import Evaluation
from eventlog.models import Event
from modelregistry import api as modelregistry
from tests.evaluation_runs.test_after_training import automatic_evaluation, trained
from tests.tasks.conftest import (  # noqa: F401  (fixtures)
    cpu_spec,
    funded,
    task_payload,
    upload_digits,
    worker,
)
from training_runtime.data.read import read_dataset

pytestmark = pytest.mark.django_db(transaction=True)
SEED = 7


def validation_paths(dataset_id, seed: int) -> list[str]:
    """The images DatasetIndex.split holds out with this seed (the default fraction)."""
    dataset = datasets.get_unscoped(dataset_id)
    with datasets.materialize(dataset) as root:
        index, _ = read_dataset(root, dataset.kind, dataset.format)
    _train, held_out = index.split(seed=seed)
    return sorted(sample.path for sample in held_out)


def test_the_holdout_evaluation_uses_the_seed_training_used(
        api, funded, project_of_a, cpu_spec, worker, settings):  # noqa: F811  (fixtures)
    settings.TASK_AUTO_EVALUATE = True
    dataset = upload_digits(api, funded, project_of_a["id"])
    trained_on = validation_paths(dataset["id"], SEED)
    assert trained_on != validation_paths(dataset["id"], 0)  # else the seed proves nothing

    task = trained(api, funded, task_payload(project_of_a["id"], dataset["id"], cpu_spec,
                                             epochs=1, seed=SEED))
    evaluation = automatic_evaluation(api, funded, task["id"])

    succeeded = Event.objects.get(stream_id=task["id"], type="TaskSucceeded")
    assert (succeeded.data["split_seed"], succeeded.data["validation_fraction"]) == (SEED, 0.2)
    model = modelregistry.get(funded.tenant_id, task["model"])
    assert (model.split_seed, model.validation_fraction) == (SEED, 0.2)
    assert evaluation["state"] == "succeeded", evaluation
    assert evaluation["summary"]["split"] == "holdout"
    row = Evaluation.objects.unscoped().get(id=evaluation["id"])
    evaluated = sorted(image["file_name"] for image in
                       results.load(row.results_key).document["images"])
    assert evaluated == trained_on
