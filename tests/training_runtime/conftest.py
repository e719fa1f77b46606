"""Tiny datasets built on disk with Pillow: folder-per-label, COCO and Pascal VOC."""

import json
from pathlib import Path

import pytest
from PIL import Image


def write_image(path: Path, size=(32, 32), color=(200, 30, 30), fmt=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format=fmt)
    return path


def codes_of(issues):
    return [i.code for i in issues]


def find(issues, code):
    """The issues with `code` (at least one, or the test fails with the full list)."""
    found = [i for i in issues if i.code == code]
    assert found, f"no {code} in {[(i.code, i.file, i.message) for i in issues]}"
    return found


@pytest.fixture
def folders_root(tmp_path):
    """cat: 3 images, dog: 2 images, bird: 1 image (a 48x32 one)."""
    root = tmp_path / "folders"
    for n in range(3):
        write_image(root / "cat" / f"c{n}.jpg")
    for n in range(2):
        write_image(root / "dog" / f"d{n}.png", color=(0, 0, 200))
    write_image(root / "bird" / "b0.bmp", size=(48, 32))
    return root


def coco_doc():
    """Two labels (cat id 1, dog id 7), three images, four boxes; image 3 is 48x32."""
    return {
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": 32, "height": 32},
            {"id": 2, "file_name": "b.png", "width": 32, "height": 32},
            {"id": 3, "file_name": "sub/c.jpg", "width": 48, "height": 32},
        ],
        "categories": [{"id": 7, "name": "dog"}, {"id": 1, "name": "cat"}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "bbox": [2, 2, 10, 10],
             "segmentation": [[2, 2, 12, 2, 12, 12, 2, 12]], "iscrowd": 0},
            {"id": 11, "image_id": 1, "category_id": 7, "bbox": [20, 20, 12, 12],
             "segmentation": [[20, 20, 32, 20, 32, 32]], "iscrowd": 0},
            {"id": 12, "image_id": 2, "category_id": 1, "bbox": [0, 0, 32, 32],
             "segmentation": {"size": [32, 32], "counts": [0, 1024]}, "iscrowd": 1},
            {"id": 13, "image_id": 3, "category_id": 1, "bbox": [40, 0, 8, 8],
             "segmentation": [[40, 0, 48, 0, 48, 8, 40, 8]], "iscrowd": 0},
        ],
    }


def write_coco(root: Path, doc) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    text = doc if isinstance(doc, str | bytes) else json.dumps(doc, indent=1)
    mode = "wb" if isinstance(text, bytes) else "w"
    with open(root / "annotations.json", mode) as fh:
        fh.write(text)
    return root


@pytest.fixture
def coco_root(tmp_path):
    root = tmp_path / "coco"
    for entry in coco_doc()["images"]:
        write_image(root / "images" / entry["file_name"], size=(entry["width"], entry["height"]))
    return write_coco(root, coco_doc())


VOC_XML = """<annotation>
  <filename>{filename}</filename>
  <size><width>{width}</width><height>{height}</height><depth>3</depth></size>
{objects}</annotation>
"""
VOC_OBJECT = """  <object>
    <name>{name}</name>
    <bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox>
  </object>
"""


def voc_xml(filename, objects, width=32, height=32):
    body = "".join(VOC_OBJECT.format(name=n, x0=b[0], y0=b[1], x1=b[2], y1=b[3])
                   for n, b in objects)
    return VOC_XML.format(filename=filename, width=width, height=height, objects=body)


def write_voc(root: Path, stem: str, objects, size=(32, 32), xml=None) -> None:
    write_image(root / "JPEGImages" / f"{stem}.jpg", size=size)
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    text = xml if xml is not None else voc_xml(f"{stem}.jpg", objects, *size)
    (root / "Annotations" / f"{stem}.xml").write_text(text)


@pytest.fixture
def voc_root(tmp_path):
    """person: 2 objects in 2 images, car: 1 object."""
    root = tmp_path / "voc"
    write_voc(root, "0001", [("person", (1, 2, 10, 20)), ("car", (12, 12, 30, 30))])
    write_voc(root, "0002", [("person", (5, 5, 15, 15))], size=(48, 32))
    return root
