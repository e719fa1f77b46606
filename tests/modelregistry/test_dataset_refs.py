"""datasets.api hands other apps a frozen DatasetRef: the tenant's usable dataset, or any
dataset for a worker holding its id; materialize takes the ref."""

import dataclasses

import pytest

from core.errors import ValidationFailed
from datasets import api as datasets
from tests.tasks.conftest import upload_digits, worker  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_dataset_ref_is_frozen_and_unscoped_only_for_workers(
        api, tenant_a, tenant_b, project_of_a, worker):  # noqa: F811  (fixtures)
    uploaded = upload_digits(api, tenant_a, project_of_a["id"], per_label=3)

    ref = datasets.get_usable(tenant_a.tenant_id, uploaded["id"], field="train_dataset")

    assert (str(ref.id), ref.kind, ref.format, ref.state, ref.builtin) == (
        uploaded["id"], "classification", "folders", "ready", False)
    assert ref.label_names == ("digit-0", "digit-1", "digit-7")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.state = "invalid"
    assert datasets.get_unscoped(uploaded["id"]) == ref
    with pytest.raises(ValidationFailed):
        datasets.get_usable(tenant_b.tenant_id, uploaded["id"], field="train_dataset")
    with datasets.materialize(ref) as root:
        assert (root / "digit-0").is_dir()
