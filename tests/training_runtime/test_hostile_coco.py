"""Whatever annotations.json holds, the COCO reader reports; it never raises."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from training_runtime.data import read_dataset

from .conftest import write_image

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = (st.none() | st.booleans() | st.integers(-2**40, 2**40)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
           | st.sampled_from(["a.jpg", "../x.jpg", "/etc/passwd", "b.png", "images/a.jpg"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=5), max_leaves=25)
ids = st.integers(-2, 4) | st.text(max_size=3) | json_values
numbers = st.integers(-50, 80) | st.floats(-1e6, 1e6, allow_nan=False) | json_values
file_names = st.sampled_from(["a.jpg", "b.png", "zz.jpg", "../a.jpg"]) | json_values
images = st.fixed_dictionaries({"id": ids, "file_name": file_names},
                               optional={"width": numbers, "height": numbers})
annotations = st.fixed_dictionaries(
    {"id": ids, "image_id": ids, "category_id": ids},
    optional={"bbox": st.lists(numbers, max_size=5) | json_values,
              "segmentation": st.lists(st.lists(numbers, max_size=9), max_size=2)
              | st.fixed_dictionaries({"size": st.lists(numbers, max_size=3),
                                       "counts": st.text(max_size=8) | st.lists(numbers)})
              | json_values,
              "iscrowd": json_values})
categories = st.fixed_dictionaries({"id": ids, "name": st.text(max_size=6) | json_values})
coco_shaped = st.fixed_dictionaries({}, optional={
    "images": st.lists(images | json_values, max_size=4),
    "annotations": st.lists(annotations | json_values, max_size=6),
    "categories": st.lists(categories | json_values, max_size=3)})


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    write_image(root / "images" / "a.jpg")
    write_image(root / "images" / "b.png", size=(48, 32))
    return root


def read_text(root, data: bytes):
    (root / "annotations.json").write_bytes(data)
    for kind in ("detection", "segmentation"):
        index, report = read_dataset(root, kind, "coco")
        assert (index is None) == (not report.ok)
        json.dumps(report.as_dict())  # the report itself is always serialisable


@SETTINGS
@given(data=st.binary(max_size=300))
def test_random_bytes_never_raise(root, data):
    read_text(root, data)


@SETTINGS
@given(doc=json_values)
def test_random_json_never_raises(root, doc):
    read_text(root, json.dumps(doc).encode())


@SETTINGS
@given(doc=coco_shaped)
def test_coco_shaped_garbage_never_raises(root, doc):
    read_text(root, json.dumps(doc).encode())
