"""T1: upload labelled data in each format; validation gives the label distribution or precise
errors naming the file; datasets are the tenant's own."""

import zipfile

import dramatiq
import pytest

from datasets.actors import validate_dataset
from datasets.models import Dataset
from datasets.views import SUPPORTED
from tests.conftest import add_member
from tests.datasets.conftest import dataset_events, stored_files
from tests.datasets.zips import (
    coco_files,
    folders_files,
    make_zip,
    png,
    upload,
    validate,
    voc_files,
)

CAT_DOG = [{"name": "cat", "count": 3, "share": 0.6, "image_count": 3},
           {"name": "dog", "count": 2, "share": 0.4, "image_count": 2}]


@pytest.mark.parametrize(("kind", "fmt", "files", "image_count", "labels"), [
    ("classification", "folders", folders_files(), 5, CAT_DOG),
    ("detection", "coco", coco_files(), 3,
     [{"name": "cat", "count": 3, "share": 0.75, "image_count": 2},
      {"name": "dog", "count": 1, "share": 0.25, "image_count": 1}]),
    ("segmentation", "coco", coco_files(segmentation=True), 3,
     [{"name": "cat", "count": 3, "share": 0.75, "image_count": 2},
      {"name": "dog", "count": 1, "share": 0.25, "image_count": 1}]),
    ("detection", "voc", voc_files(), 2,
     [{"name": "car", "count": 1, "share": 1 / 3, "image_count": 1},
      {"name": "person", "count": 2, "share": 2 / 3, "image_count": 1}]),
], ids=["folders", "coco-detection", "coco-segmentation", "voc"])
def test_each_format_uploads_and_validates_to_ready_with_its_label_distribution(
        as_a, tenant_a, project, private_storage, kind, fmt, files, image_count, labels):
    created = upload(as_a, project, make_zip(files), kind=kind, fmt=fmt)

    assert created.status_code == 201, created.content
    body = created.json()
    assert {k: body[k] for k in ("project", "name", "kind", "format", "version", "state",
                                 "builtin", "parent")} == {
        "project": project, "name": "Defects", "kind": kind, "format": fmt, "version": 1,
        "state": "uploaded", "builtin": False, "parent": None}
    assert stored_files(private_storage) == [f"datasets/{tenant_a.tenant_id}/{body['id']}/v1.zip"]

    validate(body["id"])

    dataset = as_a.get(f"/api/v1/datasets/{body['id']}/").json()
    assert dataset["state"] == "ready"
    assert dataset["image_count"] == image_count
    assert dataset["labels"] == [pytest.approx(row) for row in labels]
    assert dataset["errors"] == []
    assert "few_images" in {w["code"] for w in dataset["warnings"]}  # T10: under 100 images
    assert [e.type for e in dataset_events(tenant_a.tenant_id)] == [
        "DatasetUploaded", "DatasetValidationStarted", "DatasetValidated"]


def test_a_zip_of_the_dataset_folder_itself_is_looked_through(as_a, project):
    wrapped = {f"my-data/{name}": data for name, data in coco_files().items()}
    created = upload(as_a, project, make_zip(wrapped), kind="detection", fmt="coco").json()

    validate(created["id"])

    assert as_a.get(f"/api/v1/datasets/{created['id']}/").json()["state"] == "ready"


def broken_png() -> bytes:
    return png()[:40]


@pytest.mark.parametrize(("kind", "fmt", "files", "file", "code"), [
    ("classification", "folders", {**folders_files(), "cat/broken.png": broken_png()},
     "cat/broken.png", "corrupt_image"),
    ("detection", "coco", coco_files(bad_box=True), "annotations.json", "box_outside_image"),
    ("segmentation", "coco", coco_files(segmentation=True, bad_box=True), "annotations.json",
     "box_outside_image"),
    ("detection", "coco", coco_files(unknown_label=True), "annotations.json", "unknown_label"),
    ("detection", "voc", voc_files(labels_txt="person\ncar\n", objects={
        "0001": [("person", (1, 1, 8, 8))], "0002": [("car", (1, 1, 5, 5)), ("bus", (2, 2, 6, 6))],
    }), "Annotations/0002.xml", "unknown_label"),
], ids=["corrupt-image", "box-outside", "polygon-outside", "unknown-category", "voc-unknown"])
def test_invalid_datasets_get_errors_naming_the_file(as_a, tenant_a, project, kind, fmt, files,
                                                    file, code):
    created = upload(as_a, project, make_zip(files), kind=kind, fmt=fmt).json()

    validate(created["id"])

    dataset = as_a.get(f"/api/v1/datasets/{created['id']}/").json()
    assert dataset["state"] == "invalid"
    found = [e for e in dataset["errors"] if e["code"] == code]
    assert found, dataset["errors"]
    assert found[0]["file"] == file
    assert found[0]["message"]
    if file == "annotations.json":
        assert "annotation_id" in found[0]
    assert dataset["labels"], "a refused dataset still shows what could be read"
    assert dataset_events(tenant_a.tenant_id)[-1].type == "DatasetRejected"


def test_a_member_with_corrupt_data_passes_upload_and_fails_validation_naming_it(as_a, project):
    data = bytearray(make_zip({**folders_files(), "notes.txt": b"abc" * 3000},
                              method=zipfile.ZIP_STORED))  # the member's bytes are visible
    at = data.find(b"abcabc")
    data[at:at + 6] = b"XXXXXX"  # the CRC no longer matches

    created = upload(as_a, project, bytes(data))
    assert created.status_code == 201, created.content
    validate(created.json()["id"])

    dataset = as_a.get(f"/api/v1/datasets/{created.json()['id']}/").json()
    assert dataset["state"] == "invalid"
    assert dataset["errors"][0]["file"] == "notes.txt"
    assert dataset["errors"][0]["code"] == "corrupt_archive"


def test_upload_enqueues_validation_on_the_cpu_queue(as_a, project,
                                                     django_capture_on_commit_callbacks):
    broker = dramatiq.get_broker()
    broker.flush_all()
    with django_capture_on_commit_callbacks(execute=True):
        created = upload(as_a, project, make_zip(folders_files())).json()

    [encoded] = list(broker.queues["cpu"].queue)
    message = dramatiq.Message.decode(encoded)
    assert message.actor_name == "validate_dataset"
    assert message.args[1] == created["id"]
    validate_dataset.fn(*message.args)  # what the worker does with it
    validate_dataset.fn(*message.args)  # a redelivery changes nothing
    assert as_a.get(f"/api/v1/datasets/{created['id']}/").json()["state"] == "ready"
    assert Dataset.objects.unscoped().get(pk=created["id"]).stream_version == 3


@pytest.mark.parametrize(("change", "field"), [
    ({"kind": "classification", "format": "coco"}, "format"),
    ({"kind": "segmentation", "format": "voc"}, "format"),
    ({"kind": "keypoints"}, "kind"),
    ({"format": "yolo"}, "format"),
    ({"name": "  "}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"project": "not-a-uuid"}, "project"),
    ({"project": "2b1d2e9c-7f2d-4a55-9d55-8c2f0b1c9a10"}, "project"),
    ({"file": None}, "file"),
])
def test_bad_fields_are_400_on_the_field_and_store_nothing(as_a, tenant_a, project,
                                                           private_storage, change, field):
    from django.core.files.uploadedfile import SimpleUploadedFile

    body = {"project": project, "name": "D", "kind": "classification", "format": "folders",
            "file": SimpleUploadedFile("d.zip", make_zip(folders_files()))}
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None}

    response = as_a.post("/api/v1/datasets/", body, format="multipart")

    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert stored_files(private_storage) == []
    assert dataset_events() == []


def test_another_tenants_project_looks_like_a_missing_one(api, as_a, tenant_b, private_storage):
    theirs = api.as_(tenant_b).post("/api/v1/projects/", {"name": "B"}, format="json").json()

    response = upload(as_a, theirs["id"], make_zip(folders_files()))
    missing = upload(as_a, "2b1d2e9c-7f2d-4a55-9d55-8c2f0b1c9a10", make_zip(folders_files()))

    assert response.status_code == 400
    assert response.json() == missing.json()
    assert response.json()["error"]["fields"] == {"project": ["Project not found."]}
    assert stored_files(private_storage) == []


def test_the_kind_and_format_table_matches_training_runtime():
    from training_runtime.data.read import SUPPORTED as READERS

    assert SUPPORTED == READERS


def test_lists_filter_by_project_kind_and_state(as_a, project):
    other = as_a.post("/api/v1/projects/", {"name": "Other"}, format="json").json()["id"]
    folders = upload(as_a, project, make_zip(folders_files())).json()
    coco = upload(as_a, other, make_zip(coco_files()), kind="detection", fmt="coco").json()
    validate(coco["id"])

    def ids(query: str) -> list[str]:
        response = as_a.get(f"/api/v1/datasets/{query}")
        assert response.status_code == 200, response.content
        assert set(response.json()) == {"results", "next"}
        return [d["id"] for d in response.json()["results"]]

    assert ids("") == [coco["id"], folders["id"]]  # newest first
    assert ids(f"?project={project}") == [folders["id"]]
    assert ids("?kind=detection") == [coco["id"]]
    assert ids("?state=ready") == [coco["id"]]
    assert ids("?state=uploaded") == [folders["id"]]
    assert ids("?builtin=true") == []
    assert ids("?limit=1") == [coco["id"]]
    for query, field in (("?state=nonsense", "state"), ("?project=nonsense", "project")):
        response = as_a.get(f"/api/v1/datasets/{query}")
        assert response.status_code == 400
        assert list(response.json()["error"]["fields"]) == [field]


def test_delete_archives_and_the_dataset_answers_404_after(as_a, tenant_a, project):
    created = upload(as_a, project, make_zip(folders_files())).json()

    assert as_a.delete(f"/api/v1/datasets/{created['id']}/").status_code == 204

    assert as_a.get(f"/api/v1/datasets/{created['id']}/").status_code == 404
    assert as_a.delete(f"/api/v1/datasets/{created['id']}/").status_code == 404
    twice = as_a.delete(f"/api/v1/datasets/{created['id']}/?archived=true")
    assert (twice.status_code, twice.json()["error"]["code"]) == (409, "dataset_archived")
    assert as_a.get("/api/v1/datasets/").json()["results"] == []
    archived = as_a.get("/api/v1/datasets/?archived=true").json()["results"]
    assert [d["id"] for d in archived] == [created["id"]]
    assert dataset_events(tenant_a.tenant_id)[-1].type == "DatasetArchived"
    validate(created["id"])  # a job still queued for it does nothing
    assert dataset_events(tenant_a.tenant_id)[-1].type == "DatasetArchived"


def test_viewers_read_datasets_but_cannot_upload_or_delete(api, tenant_a, as_a, project):
    created = upload(as_a, project, make_zip(folders_files())).json()
    viewer = api.as_(add_member(api, tenant_a, "viewer"))

    assert viewer.get(f"/api/v1/datasets/{created['id']}/").status_code == 200
    assert upload(viewer, project, make_zip(folders_files())).status_code == 403
    assert viewer.delete(f"/api/v1/datasets/{created['id']}/").status_code == 403


def test_another_tenant_gets_404_and_never_sees_the_dataset(api, as_a, tenant_b, project):
    created = upload(as_a, project, make_zip(folders_files())).json()
    as_b = api.as_(tenant_b)

    for response in (as_b.get(f"/api/v1/datasets/{created['id']}/"),
                     as_b.delete(f"/api/v1/datasets/{created['id']}/"),
                     as_b.get(f"/api/v1/datasets/{created['id']}/versions/")):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert created["id"] not in as_b.get("/api/v1/datasets/").content.decode()
    assert as_a.get(f"/api/v1/datasets/{created['id']}/").status_code == 200


def test_a_stored_zip_that_went_missing_makes_the_dataset_invalid(as_a, project):
    from django.core.files.storage import default_storage

    created = upload(as_a, project, make_zip(folders_files())).json()
    default_storage.delete(Dataset.objects.unscoped().get(pk=created["id"]).storage_key)

    validate(created["id"])

    dataset = as_a.get(f"/api/v1/datasets/{created['id']}/").json()
    assert dataset["state"] == "invalid"
    assert dataset["errors"][0]["code"] == "missing_file"
