"""Dataset versions (E12), the built-in samples (T2), the public module other apps call, and
the rebuild of the read model from the log."""

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command

from core.errors import DatasetNotReady, ValidationFailed
from datasets import api as datasets_api
from datasets.models import Dataset
from datasets.samples import PLATFORM_TENANT_ID, seed_samples
from tests.datasets.zips import (
    coco_files,
    folders_files,
    make_zip,
    new_version,
    upload,
    validate,
)


@pytest.fixture
def invalid_coco(as_a, project) -> dict:
    created = upload(as_a, project, make_zip(coco_files(bad_box=True)), kind="detection",
                     fmt="coco", name="Boxes").json()
    validate(created["id"])
    return created


def test_corrected_annotations_make_a_new_version_validated_the_same_way(as_a, tenant_a,
                                                                         invalid_coco):
    response = new_version(as_a, invalid_coco["id"], make_zip(coco_files()))

    assert response.status_code == 201, response.content
    v2 = response.json()
    assert (v2["name"], v2["kind"], v2["format"], v2["version"], v2["parent"], v2["state"]) == (
        "Boxes", "detection", "coco", 2, invalid_coco["id"], "uploaded")
    assert v2["project"] == invalid_coco["project"]
    assert default_storage.exists(f"datasets/{tenant_a.tenant_id}/{v2['id']}/v2.zip")
    validate(v2["id"])
    assert as_a.get(f"/api/v1/datasets/{v2['id']}/").json()["state"] == "ready"
    assert as_a.get(f"/api/v1/datasets/{invalid_coco['id']}/").json()["state"] == "invalid"

    v3 = new_version(as_a, invalid_coco["id"], make_zip(coco_files())).json()
    assert (v3["version"], v3["parent"]) == (3, invalid_coco["id"])

    for any_version in (invalid_coco["id"], v2["id"], v3["id"]):
        listed = as_a.get(f"/api/v1/datasets/{any_version}/versions/").json()
        assert [(d["version"], d["id"]) for d in listed["results"]] == [
            (1, invalid_coco["id"]), (2, v2["id"]), (3, v3["id"])]


def test_a_hostile_new_version_is_refused_and_stores_nothing(as_a, invalid_coco,
                                                             private_storage):
    before = sorted(p for p in private_storage.rglob("*") if p.is_file())

    response = new_version(as_a, invalid_coco["id"],
                           make_zip({**coco_files(), "../../escape.json": b"{}"}))

    assert response.status_code == 400
    assert "file" in response.json()["error"]["fields"]
    assert sorted(p for p in private_storage.rglob("*") if p.is_file()) == before
    assert Dataset.objects.unscoped().count() == 1


def test_another_tenant_cannot_version_a_dataset(api, tenant_b, invalid_coco):
    response = new_version(api.as_(tenant_b), invalid_coco["id"], make_zip(coco_files()))

    assert response.status_code == 404
    assert Dataset.objects.unscoped().count() == 1


# --- built-in samples ---------------------------------------------------------------------------


@pytest.fixture
def samples(db) -> list[Dataset]:
    return seed_samples(images=12)


def test_samples_are_seeded_once_validated_and_owned_by_the_platform(samples):
    assert sorted((d.kind, d.format, d.state) for d in samples) == [
        ("classification", "folders", "ready"), ("detection", "coco", "ready"),
        ("segmentation", "coco", "ready")]
    assert all(d.builtin and d.tenant_id == PLATFORM_TENANT_ID and d.project is None
               for d in samples)
    assert all(d.image_count == 12 and d.labels for d in samples)
    assert seed_samples(images=12) == []  # already there


def test_the_seed_command_reports_what_it_created(db, capsys):
    call_command("seed_sample_datasets", "--images", "6")
    assert "3 sample dataset(s) created." in capsys.readouterr().out
    call_command("seed_sample_datasets", "--images", "6")
    assert "0 sample dataset(s) created." in capsys.readouterr().out


def test_every_tenant_sees_the_samples_and_none_can_delete_or_version_them(
        api, tenant_a, tenant_b, samples):
    for who in (tenant_a, tenant_b):
        client = api.as_(who)
        listed = client.get("/api/v1/datasets/?builtin=true").json()["results"]
        assert sorted(d["id"] for d in listed) == sorted(str(d.id) for d in samples)
        assert all(d["builtin"] for d in listed)
        for sample in samples:
            assert client.get(f"/api/v1/datasets/{sample.id}/").json()["builtin"] is True
            assert client.delete(f"/api/v1/datasets/{sample.id}/").status_code == 403
            refused = new_version(client, sample.id, make_zip(folders_files()))
            assert refused.status_code == 403
            assert refused.json()["error"]["code"] == "permission_denied"
            usable = datasets_api.get_usable(who.tenant_id, sample.id, field="train_dataset")
            assert usable.id == sample.id
    assert Dataset.objects.unscoped().filter(archived_at__isnull=False).count() == 0
    assert Dataset.objects.unscoped().count() == 3


def test_a_sample_materializes_to_a_readable_dataset(samples):
    from training_runtime.data import read_dataset

    for sample in samples:
        with datasets_api.materialize(sample) as root:
            index, report = read_dataset(root, sample.kind, sample.format)
            assert report.ok, report.errors
            assert index.image_count == 12


# --- the public module ---------------------------------------------------------------------------


def test_get_usable_says_why_a_dataset_cannot_be_used(api, as_a, tenant_a, tenant_b, project,
                                                      invalid_coco):
    ready = upload(as_a, project, make_zip(folders_files())).json()
    waiting = upload(as_a, project, make_zip(folders_files())).json()
    validate(ready["id"])
    archived = upload(as_a, project, make_zip(folders_files())).json()
    validate(archived["id"])
    as_a.delete(f"/api/v1/datasets/{archived['id']}/")

    assert datasets_api.get_usable(tenant_a.tenant_id, ready["id"], field="x").state == "ready"
    cases = [(tenant_b, ready["id"], "not found"), (tenant_a, "nonsense", "not found"),
             (tenant_a, "2b1d2e9c-7f2d-4a55-9d55-8c2f0b1c9a10", "not found"),
             (tenant_a, invalid_coco["id"], "failed validation"),
             (tenant_a, waiting["id"], "still being validated"),
             (tenant_a, archived["id"], "archived")]
    for who, dataset_id, why in cases:
        with pytest.raises(ValidationFailed) as refused:
            datasets_api.get_usable(who.tenant_id, dataset_id, field="test_dataset")
        assert list(refused.value.fields) == ["test_dataset"]
        assert why in refused.value.fields["test_dataset"][0].lower()


def test_materialize_extracts_once_and_reuses_the_cache(as_a, project, private_storage):
    created = upload(as_a, project, make_zip(coco_files()), kind="detection", fmt="coco").json()
    validate(created["id"])
    dataset = Dataset.objects.unscoped().get(pk=created["id"])

    with datasets_api.materialize(dataset) as root:
        assert (root / "annotations.json").is_file()
        assert sorted(p.name for p in (root / "images").iterdir()) == ["1.png", "2.png", "3.png"]
    default_storage.delete(dataset.storage_key)  # the cache no longer needs the stored zip
    with datasets_api.materialize(dataset) as again:
        assert again == root
        assert (again / "annotations.json").is_file()
    assert str(root).startswith(str(datasets_api.cache_dir()))


def test_materialize_refuses_a_dataset_that_is_not_ready(invalid_coco):
    dataset = Dataset.objects.unscoped().get(pk=invalid_coco["id"])
    with pytest.raises(DatasetNotReady), datasets_api.materialize(dataset):
        pass


# --- the read model is a projection of the log ----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_rebuild_gives_identical_dataset_rows(api, tenant_a, project_of_a):
    as_a = api.as_(tenant_a)
    project = project_of_a["id"]
    first = upload(as_a, project, make_zip(coco_files(bad_box=True)), kind="detection",
                   fmt="coco").json()
    validate(first["id"])
    second = new_version(as_a, first["id"], make_zip(coco_files())).json()
    validate(second["id"])
    gone = upload(as_a, project, make_zip(folders_files())).json()
    as_a.delete(f"/api/v1/datasets/{gone['id']}/")
    seed_samples(images=4)
    before = list(Dataset._base_manager.order_by("pk").values())
    assert len(before) == 6

    Dataset._base_manager.all().delete()
    call_command("rebuild_projections", "datasets.datasets")

    assert list(Dataset._base_manager.order_by("pk").values()) == before


def test_two_uploads_claiming_the_same_version_conflict_and_the_loser_stores_nothing(
        as_a, tenant_a, invalid_coco, private_storage):
    from django.core.files.base import ContentFile

    from core.errors import VersionConflict
    from datasets import commands

    assert new_version(as_a, invalid_coco["id"], make_zip(coco_files())).status_code == 201
    stored_before = sorted(p for p in private_storage.rglob("*") if p.is_file())
    late = ContentFile(make_zip(coco_files()), name="late.zip")

    with pytest.raises(VersionConflict):  # computed version 2 before the other upload landed
        commands._record(tenant_a.tenant_id, late, commands.check_zip(late), actor="test",
                         user_id=None, project=invalid_coco["project"], name="Boxes",
                         kind="detection", fmt="coco", version=2, parent=invalid_coco["id"],
                         builtin=False)

    assert sorted(p for p in private_storage.rglob("*") if p.is_file()) == stored_before
    assert Dataset.objects.unscoped().count() == 2
