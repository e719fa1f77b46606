"""Correcting an annotation from a badcase or a validation instance makes a new version (E12):
the image's label or objects are rewritten in the dataset's own format, everything else is
kept, and the version it came from stays exactly as it was."""

import hashlib
import io
import json
import uuid
import zipfile

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command

from datasets import api as datasets_api
from datasets.models import Dataset, DatasetCorrection
from datasets.samples import seed_samples
from eventlog.models import Event
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
from training_runtime.data import read_dataset


def correct(client, dataset_id, body: dict):
    return client.post(f"/api/v1/datasets/{dataset_id}/corrections/", body, format="json")


def ready_dataset(client, project, files: dict, *, kind="classification", fmt="folders",
                  name="Defects") -> dict:
    created = upload(client, project, make_zip(files), kind=kind, fmt=fmt, name=name).json()
    validate(created["id"])
    body = client.get(f"/api/v1/datasets/{created['id']}/").json()
    assert body["state"] == "ready", body["errors"]
    return body


def stored_zip(dataset_id) -> bytes:
    row = Dataset.objects.unscoped().get(pk=dataset_id)
    with default_storage.open(row.storage_key, "rb") as fh:
        return fh.read()


def fingerprint(dataset_id) -> str:
    return hashlib.sha256(stored_zip(dataset_id)).hexdigest()


def annotations_by_image(dataset_id) -> dict:
    """path -> label (classification) or sorted [(label, xyxy box)], from the validated index."""
    row = Dataset.objects.unscoped().get(pk=dataset_id)
    with datasets_api.materialize(row) as root:
        index, report = read_dataset(root, row.kind, row.format)
    assert report.ok, report.errors
    return {s.path: index.labels[s.label] if s.label is not None else sorted(
        (index.labels[label], box) for label, box in zip(s.box_labels, s.boxes, strict=True))
        for s in index.samples}


def member(dataset_id, name: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(stored_zip(dataset_id))) as zf:
        return zf.read(name)


def new_version_after(client, dataset_id, body: dict) -> dict:
    response = correct(client, dataset_id, body)
    assert response.status_code == 201, response.content
    created = response.json()
    validate(created["id"])
    return created


# --- classification (folders) -------------------------------------------------------------------


@pytest.fixture
def pets(as_a, project) -> dict:
    return ready_dataset(as_a, project, folders_files(cats=3, dogs=2), name="Pets")


def test_relabelling_an_image_moves_it_to_the_new_label_in_a_new_version(as_a, tenant_a, pets):
    v1_detail, v1_zip = as_a.get(f"/api/v1/datasets/{pets['id']}/").json(), fingerprint(pets["id"])
    before = annotations_by_image(pets["id"])
    evaluation = str(uuid.uuid4())

    response = correct(as_a, pets["id"], {"file_name": "cat/c0.png", "label": "dog",
                                          "note": "it barks", "evaluation": evaluation})

    assert response.status_code == 201, response.content
    v2 = response.json()
    assert (v2["name"], v2["kind"], v2["format"], v2["version"], v2["parent"], v2["state"]) == (
        "Pets", "classification", "folders", 2, pets["id"], "uploaded")
    assert v2["project"] == pets["project"]
    [made] = v2["corrections"]
    assert made == {**made, "dataset": v2["id"], "version": 2, "parent": pets["id"],
                    "file_name": "cat/c0.png", "new_file_name": "dog/c0.png",
                    "before": {"label": "cat"}, "after": {"label": "dog"}, "note": "it barks",
                    "source": {"evaluation": evaluation}}

    validate(v2["id"])
    detail = as_a.get(f"/api/v1/datasets/{v2['id']}/").json()
    assert detail["state"] == "ready"
    assert {row["name"]: row["count"] for row in detail["labels"]} == {"cat": 2, "dog": 3}
    expected = {path: label for path, label in before.items() if path != "cat/c0.png"}
    assert annotations_by_image(v2["id"]) == {**expected, "dog/c0.png": "dog"}
    assert member(v2["id"], "dog/c0.png") == member(pets["id"], "cat/c0.png")

    assert fingerprint(pets["id"]) == v1_zip
    assert as_a.get(f"/api/v1/datasets/{pets['id']}/").json() == v1_detail
    assert annotations_by_image(pets["id"]) == before
    assert [e.type for e in Event.objects.filter(stream_id=v2["id"]).order_by("version")] == [
        "DatasetUploaded", "DatasetAnnotationCorrected", "DatasetValidationStarted",
        "DatasetValidated"]
    for any_version in (pets["id"], v2["id"]):
        listed = as_a.get(f"/api/v1/datasets/{any_version}/corrections/").json()
        assert listed == {"results": [made], "next": None}
    assert as_a.get(f"/api/v1/datasets/{pets['id']}/corrections/?version=1").json()[
        "results"] == []


def test_a_new_label_needs_asking_for_and_a_name_clash_is_renamed(as_a, project):
    files = folders_files(cats=2, dogs=2)
    files["dog/c0.png"] = png(color=(1, 2, 3))  # the dog folder already has a c0.png
    pets = ready_dataset(as_a, project, files)

    refused = correct(as_a, pets["id"], {"file_name": "cat/c0.png", "label": "fox"})
    assert refused.status_code == 400
    assert "allow_new_labels" in refused.json()["error"]["fields"]["label"][0]

    v2 = new_version_after(as_a, pets["id"], {"file_name": "cat/c1.png", "label": "dog"})
    assert v2["corrections"][0]["new_file_name"] == "dog/c1.png"
    v3 = new_version_after(as_a, v2["id"], {"corrections": [
        {"file_name": "cat/c0.png", "label": "fox"},
        {"file_name": "dog/c1.png", "label": "cat"}], "allow_new_labels": True})

    assert [(c["file_name"], c["new_file_name"]) for c in v3["corrections"]] == [
        ("cat/c0.png", "fox/c0.png"), ("dog/c1.png", "cat/c1.png")]
    assert annotations_by_image(v3["id"]) == {"cat/c1.png": "cat", "dog/c0.png": "dog",
                                              "dog/d0.png": "dog", "dog/d1.png": "dog",
                                              "fox/c0.png": "fox"}
    clash = new_version_after(as_a, v3["id"], {"file_name": "dog/c0.png", "label": "fox"})
    assert clash["corrections"][0]["new_file_name"] == "fox/c0-2.png"
    assert member(clash["id"], "fox/c0-2.png") == member(v3["id"], "dog/c0.png")


# --- detection (coco, voc) and segmentation ----------------------------------------------------


@pytest.fixture
def boxes(as_a, project) -> dict:
    return ready_dataset(as_a, project, coco_files(), kind="detection", fmt="coco",
                         name="Boxes")


def test_fixing_a_coco_box_rewrites_only_that_images_annotations(as_a, boxes):
    v1_zip = fingerprint(boxes["id"])
    before = annotations_by_image(boxes["id"])
    new_objects = [{"label": "cat", "bbox": [2, 2, 5, 5]}, {"label": "dog", "bbox": [8, 8, 6, 7]}]

    v2 = new_version_after(as_a, boxes["id"], {"file_name": "2.png",
                                               "annotations": new_objects})

    assert v2["corrections"][0]["before"] == {"annotations": [
        {"label": "cat", "bbox": [2, 2, 5, 5]}, {"label": "cat", "bbox": [8, 8, 4, 4]}]}
    assert v2["corrections"][0]["after"] == {"annotations": new_objects}
    after = annotations_by_image(v2["id"])
    assert after.pop("images/2.png") == [("cat", (2.0, 2.0, 7.0, 7.0)),
                                         ("dog", (8.0, 8.0, 14.0, 15.0))]
    assert after == {path: objs for path, objs in before.items() if path != "images/2.png"}
    doc = json.loads(member(v2["id"], "annotations.json"))
    kept, added = [a for a in doc["annotations"] if a["image_id"] == 2]
    assert (kept["id"], added["id"], added["category_id"]) == (11, 14, 2)  # the kept box keeps
    assert fingerprint(boxes["id"]) == v1_zip                               # its annotation


def test_a_wrapped_zip_and_an_images_prefix_are_understood(as_a, project):
    wrapped = {"export/": b"", "export/images/": b""}  # with folder entries too
    wrapped.update({f"export/{name}": data for name, data in coco_files().items()})
    v1 = ready_dataset(as_a, project, wrapped, kind="detection", fmt="coco")

    v2 = new_version_after(as_a, v1["id"], {"file_name": "images/3.png", "annotations": [
        {"label": "dog", "bbox": [3, 3, 8, 8]}, {"label": "cat", "bbox": [0, 0, 2, 2]}]})

    assert annotations_by_image(v2["id"])["images/3.png"] == [
        ("cat", (0.0, 0.0, 2.0, 2.0)), ("dog", (3.0, 3.0, 11.0, 11.0))]
    with zipfile.ZipFile(io.BytesIO(stored_zip(v2["id"]))) as zf:
        assert sorted(zf.namelist()) == sorted(wrapped)


def test_fixing_a_voc_image_rewrites_its_xml_and_can_declare_a_new_label(as_a, project):
    v1 = ready_dataset(as_a, project, voc_files(labels_txt="person\ncar\n"), kind="detection",
                       fmt="voc", name="Street")
    v1_zip = fingerprint(v1["id"])
    before = annotations_by_image(v1["id"])

    v2 = new_version_after(as_a, v1["id"], {
        "file_name": "JPEGImages/0001.png", "allow_new_labels": True,
        "annotations": [{"label": "person", "bbox": [1, 1, 7, 7]},
                        {"label": "bicycle", "bbox": [9, 9, 5.5, 5]}]})

    assert v2["corrections"][0]["before"] == {"annotations": [
        {"label": "person", "bbox": [1, 1, 7, 7]}, {"label": "person", "bbox": [9, 9, 6, 6]}]}
    after = annotations_by_image(v2["id"])
    assert after.pop("JPEGImages/0001.png") == [("bicycle", (9.0, 9.0, 14.5, 14.0)),
                                                ("person", (1.0, 1.0, 8.0, 8.0))]
    assert after == {p: objs for p, objs in before.items() if p != "JPEGImages/0001.png"}
    assert member(v2["id"], "labels.txt") == b"person\ncar\nbicycle\n"
    assert member(v2["id"], "Annotations/0002.xml") == member(v1["id"], "Annotations/0002.xml")
    detail = as_a.get(f"/api/v1/datasets/{v2['id']}/").json()
    assert [row["name"] for row in detail["labels"]] == ["person", "car", "bicycle"]
    assert fingerprint(v1["id"]) == v1_zip

    short = new_version_after(as_a, v2["id"], {"file_name": "0002.png", "annotations": [
        {"label": "car", "bbox": [2, 2, 9, 9]}]})  # the bare image name works too
    assert annotations_by_image(short["id"])["JPEGImages/0002.png"] == [
        ("car", (2.0, 2.0, 11.0, 11.0))]


def test_segmentation_keeps_the_mask_of_an_unmoved_box_and_needs_one_for_a_moved_box(
        as_a, project):
    v1 = ready_dataset(as_a, project, coco_files(segmentation=True), kind="segmentation",
                       fmt="coco", name="Masks")

    moved = correct(as_a, v1["id"], {"file_name": "3.png", "annotations": [
        {"label": "dog", "bbox": [4, 4, 8, 8]}]})
    assert moved.status_code == 400
    assert "polygon" in moved.json()["error"]["fields"]["annotations"][0]

    v2 = new_version_after(as_a, v1["id"], {"file_name": "2.png", "annotations": [
        {"label": "dog", "bbox": [2, 2, 5, 5]},
        {"label": "cat", "bbox": [9, 9, 4, 4],
         "segmentation": [[9, 9, 13, 9, 13, 13, 9, 13]]}]})

    assert as_a.get(f"/api/v1/datasets/{v2['id']}/").json()["state"] == "ready"
    doc = json.loads(member(v2["id"], "annotations.json"))
    relabelled, redrawn = [a for a in doc["annotations"] if a["image_id"] == 2]
    assert (relabelled["category_id"], relabelled["segmentation"]) == (
        2, [[2, 2, 7, 2, 7, 7, 2, 7]])
    assert (redrawn["segmentation"], redrawn["area"]) == ([[9, 9, 13, 9, 13, 13, 9, 13]], 16)


# --- refusals write nothing ---------------------------------------------------------------------


def world(tenant_id, media) -> tuple:
    return (Dataset.objects.unscoped().count(), Event.objects.count(),
            [(e.stream_id, e.version) for e in dataset_events(tenant_id)], stored_files(media),
            DatasetCorrection.objects.unscoped().count())


BOX_REFUSALS = [
    ({"file_name": "9.png", "annotations": []}, "file_name"),
    ({"file_name": "../2.png", "annotations": []}, "file_name"),
    ({"file_name": "2.png", "annotations": [{"label": "bird", "bbox": [1, 1, 2, 2]}]},
     "annotations"),
    ({"file_name": "2.png", "annotations": [{"label": "cat", "bbox": [10, 10, 10, 2]}]},
     "annotations"),
    ({"file_name": "2.png", "annotations": [{"label": "cat", "bbox": [1, 1, 0, 2]}]},
     "annotations"),
    ({"file_name": "2.png", "annotations": [{"label": "cat", "bbox": [1, 1, -3, 2]}]},
     "annotations"),
    ({"file_name": "2.png", "annotations": [{"label": "cat", "bbox": [1, 1, 2]}]},
     "annotations"),
    ({"file_name": "2.png", "label": "dog"}, "label"),
    ({"file_name": "2.png"}, "annotations"),
    ({"file_name": "2.png", "annotations": [
        {"label": "cat", "bbox": [2, 2, 5, 5]}, {"label": "cat", "bbox": [8, 8, 4, 4]}]},
     "annotations"),  # nothing changes
    ({"file_name": "3.png", "annotations": []}, "annotations"),  # dog would have no image
    ({"file_name": "2.png", "annotations": [{"label": "cat", "bbox": [1, 1, 2, 2],
                                             "segmentation": [[1, 1, 40, 1, 40, 40]]}]},
     "annotations"),
    ({"corrections": [{"file_name": "1.png", "annotations": []},
                      {"file_name": "images/1.png", "annotations": []}]}, "file_name"),
    ({"label": "cat"}, "file_name"),
]


@pytest.mark.parametrize(("body", "field"), BOX_REFUSALS,
                         ids=[f"{n}-{field}" for n, (_, field) in enumerate(BOX_REFUSALS)])
def test_a_refused_correction_names_its_field_and_writes_nothing(as_a, tenant_a, boxes,
                                                                 private_storage, body, field):
    before = world(tenant_a.tenant_id, private_storage)

    response = correct(as_a, boxes["id"], body)

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["fields"], error
    assert world(tenant_a.tenant_id, private_storage) == before


@pytest.mark.parametrize(("body", "field"), [
    ({"file_name": "cat/c9.png", "label": "dog"}, "file_name"),
    ({"file_name": "c0.png", "label": "dog"}, "file_name"),
    ({"file_name": "cat/c0.png", "label": "cat"}, "label"),
    ({"file_name": "cat/c0.png", "label": ""}, "label"),
    ({"file_name": "cat/c0.png", "label": "../x", "allow_new_labels": True}, "label"),
    ({"file_name": "cat/c0.png", "annotations": []}, "annotations"),
    ({"corrections": [{"file_name": f"cat/c{n}.png", "label": "dog"} for n in range(3)]},
     "label"),  # cat would have no image
])
def test_a_refused_relabel_names_its_field_and_writes_nothing(as_a, tenant_a, pets,
                                                              private_storage, body, field):
    before = world(tenant_a.tenant_id, private_storage)

    response = correct(as_a, pets["id"], body)

    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert world(tenant_a.tenant_id, private_storage) == before


def test_samples_other_tenants_unvalidated_and_outdated_versions_are_refused(
        api, as_a, tenant_a, tenant_b, project, pets, private_storage):
    sample = next(d for d in seed_samples(images=4) if d.format == "folders")
    waiting = upload(as_a, project, make_zip(folders_files())).json()
    v2 = new_version_after(as_a, pets["id"], {"file_name": "cat/c0.png", "label": "dog"})
    viewer_of_a = add_member(api, tenant_a, "viewer")
    before = world(tenant_a.tenant_id, private_storage)
    body = {"file_name": "cat/c1.png", "label": "dog"}

    builtin = correct(as_a, sample.id, body)
    assert (builtin.status_code, builtin.json()["error"]["code"]) == (403, "permission_denied")
    theirs = correct(api.as_(tenant_b), v2["id"], body)
    nobodys = correct(api.as_(tenant_b), uuid.uuid4(), body)
    assert theirs.status_code == 404
    assert theirs.json() == nobodys.json()
    assert api.as_(tenant_b).get(f"/api/v1/datasets/{v2['id']}/corrections/").status_code == 404
    unvalidated = correct(as_a, waiting["id"], body)
    assert (unvalidated.status_code, unvalidated.json()["error"]["code"]) == (
        409, "dataset_not_ready")
    viewer = correct(api.as_(viewer_of_a), v2["id"], body)
    assert (viewer.status_code, viewer.json()["error"]["code"]) == (403, "permission_denied")
    outdated = correct(as_a, pets["id"], body)
    assert (outdated.status_code, outdated.json()["error"]["code"]) == (
        409, "not_latest_version")
    assert v2["id"] in outdated.json()["error"]["message"]
    assert world(tenant_a.tenant_id, private_storage) == before


def test_a_version_whose_stored_zip_is_gone_is_refused_as_unreadable(as_a, pets):
    default_storage.delete(Dataset.objects.unscoped().get(pk=pets["id"]).storage_key)

    response = correct(as_a, pets["id"], {"file_name": "cat/c0.png", "label": "dog"})

    assert (response.status_code, response.json()["error"]["code"]) == (
        409, "dataset_unreadable")
    assert Dataset.objects.unscoped().filter(origin=pets["id"]).count() == 1  # no v2


# --- the read model is a projection of the log --------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_rebuild_gives_identical_correction_rows(api, tenant_a, project_of_a):
    as_a = api.as_(tenant_a)
    pets = ready_dataset(as_a, project_of_a["id"], folders_files())
    v2 = new_version_after(as_a, pets["id"], {"corrections": [
        {"file_name": "cat/c0.png", "label": "dog"}, {"file_name": "cat/c1.png",
                                                      "label": "dog"}], "note": "two"})
    assert len(v2["corrections"]) == 2
    before = (list(DatasetCorrection._base_manager.order_by("pk").values()),
              list(Dataset._base_manager.order_by("pk").values()))

    DatasetCorrection._base_manager.all().delete()
    Dataset._base_manager.all().delete()
    call_command("rebuild_projections", "datasets.datasets")

    assert (list(DatasetCorrection._base_manager.order_by("pk").values()),
            list(Dataset._base_manager.order_by("pk").values())) == before


def test_image_sizes_missing_from_the_annotations_are_read_from_the_image(as_a, project):
    files = coco_files()
    doc = json.loads(files["annotations.json"])
    for image in doc["images"]:
        del image["width"], image["height"]
    files["images/3.png"] = png(size=(32, 20))
    files["annotations.json"] = json.dumps(doc).encode()
    v1 = ready_dataset(as_a, project, files, kind="detection", fmt="coco")

    too_low = correct(as_a, v1["id"], {"file_name": "3.png", "annotations": [
        {"label": "dog", "bbox": [20, 10, 10, 12]}]})
    assert "20 image" in too_low.json()["error"]["fields"]["annotations"][0]
    v2 = new_version_after(as_a, v1["id"], {"file_name": "3.png", "annotations": [
        {"label": "dog", "bbox": [20, 10, 10, 9]}]})
    assert annotations_by_image(v2["id"])["images/3.png"] == [("dog", (20.0, 10.0, 30.0, 19.0))]


# --- the dataset root inside the zip is found as extraction finds it ------------------------------


@pytest.mark.parametrize("names", [
    ["cat/1.png", "dog/1.png"],
    ["data/cat/1.png", "data/dog/1.png"],
    ["data/cat/1.png", "data/dog/1.png", "__MACOSX/data/._x", ".DS_Store"],
    ["cat/1.png", "cat/2.png"],
    ["export/annotations.json", "export/images/1.png"],
    ["export/", "export/annotations.json"],
    ["annotations.json", "images/1.png"],
    ["a/.hidden/1.png", "a/1.png"],
])
def test_the_root_prefix_matches_extraction(tmp_path, names):
    from datasets import archive
    from datasets.corrections import root_prefix

    data = make_zip({name: b"" if name.endswith("/") else b"x" for name in names})
    limits = archive.ZipLimits()
    archive.extract(io.BytesIO(data), tmp_path, limits)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        prefix = root_prefix(archive.inspect(zf, limits))

    assert tmp_path.joinpath(*prefix) == archive.dataset_root(tmp_path)
