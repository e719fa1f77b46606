"""Dataset zips built in memory from tiny Pillow images, and the way tests upload them."""

import io
import json
import zipfile

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image


def png(size=(16, 16), color=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def make_zip(files: dict, *, method=zipfile.ZIP_DEFLATED) -> bytes:
    """A zip of name -> bytes (or a ready ZipInfo -> bytes for odd members)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=method) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return out.getvalue()


def folders_files(cats=3, dogs=2) -> dict:
    files = {f"cat/c{n}.png": png(color=(200, 30, 30)) for n in range(cats)}
    files.update({f"dog/d{n}.png": png(color=(30, 30, 200)) for n in range(dogs)})
    return files


def coco_doc(*, segmentation=False, bad_box=False, unknown_label=False) -> dict:
    """Three 16x16 images: cat on 1 and 2, dog on 3 (4 objects: 3 cats, 1 dog)."""
    boxes = [(1, 1, [1, 1, 6, 6]), (1, 2, [2, 2, 5, 5]), (1, 2, [8, 8, 4, 4]),
             (2, 3, [3, 3, 8, 8])]
    annotations = []
    for n, (category, image, box) in enumerate(boxes, start=10):
        x, y, w, h = box
        ann = {"id": n, "image_id": image, "category_id": category, "bbox": box, "iscrowd": 0,
               "area": w * h}
        if segmentation:
            ann["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
        annotations.append(ann)
    if bad_box:
        annotations[0]["bbox"] = [10, 10, 20, 20]
        annotations[0].pop("segmentation", None)
        if segmentation:
            annotations[0]["segmentation"] = [[10, 10, 30, 10, 30, 30, 10, 30]]
    if unknown_label:
        annotations[1]["category_id"] = 99
    return {"images": [{"id": i, "file_name": f"{i}.png", "width": 16, "height": 16}
                       for i in (1, 2, 3)],
            "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
            "annotations": annotations}


def coco_files(**kwargs) -> dict:
    files = {f"images/{i}.png": png() for i in (1, 2, 3)}
    files["annotations.json"] = json.dumps(coco_doc(**kwargs)).encode()
    return files


VOC_XML = ("<annotation><filename>{stem}.png</filename><size><width>16</width>"
           "<height>16</height><depth>3</depth></size>{objects}</annotation>")
VOC_OBJECT = ("<object><name>{name}</name><bndbox><xmin>{0}</xmin><ymin>{1}</ymin>"
              "<xmax>{2}</xmax><ymax>{3}</ymax></bndbox></object>")


def voc_files(objects=None, labels_txt=None) -> dict:
    """person twice in 0001, car once in 0002, unless `objects` says otherwise."""
    objects = objects or {"0001": [("person", (1, 1, 8, 8)), ("person", (9, 9, 15, 15))],
                          "0002": [("car", (2, 2, 12, 12))]}
    files = {}
    for stem, objs in objects.items():
        files[f"JPEGImages/{stem}.png"] = png()
        body = "".join(VOC_OBJECT.format(*box, name=name) for name, box in objs)
        files[f"Annotations/{stem}.xml"] = VOC_XML.format(stem=stem, objects=body).encode()
    if labels_txt is not None:
        files["labels.txt"] = labels_txt.encode()
    return files


def upload(client, project, data: bytes, *, kind="classification", fmt="folders",
           name="Defects", filename="data.zip"):
    return client.post("/api/v1/datasets/", {
        "project": project, "name": name, "kind": kind, "format": fmt,
        "file": SimpleUploadedFile(filename, data, content_type="application/zip"),
    }, format="multipart")


def new_version(client, dataset_id, data: bytes):
    return client.post(f"/api/v1/datasets/{dataset_id}/versions/", {
        "file": SimpleUploadedFile("fixed.zip", data, content_type="application/zip"),
    }, format="multipart")


def validate(dataset_id) -> None:
    """Run the validation job now, in this thread, as the worker would."""
    from datasets.actors import validate_dataset
    from datasets.models import Dataset

    row = Dataset.objects.unscoped().get(pk=dataset_id)
    validate_dataset.fn(str(row.tenant_id), str(dataset_id))
