"""Detection and instance segmentation as COCO JSON (T1)."""

import os

import pytest

from training_runtime.data import read_dataset

from .conftest import coco_doc, find, write_coco, write_image


def read(root, kind="detection"):
    return read_dataset(root, kind, "coco")


def errors_after(root, change, kind="detection"):
    doc = coco_doc()
    change(doc)
    write_coco(root, doc)
    index, report = read(root, kind)
    assert index is None and not report.ok
    return report.errors


def test_a_valid_coco_dataset_reads_labels_objects_shares_and_sizes(coco_root):
    index, report = read(coco_root)

    assert report.ok, report.errors
    assert index.labels == ["cat", "dog"]  # in category-id order: cat 1, dog 7
    assert index.label_distribution() == [
        {"name": "cat", "count": 3, "share": pytest.approx(0.75), "image_count": 3},
        {"name": "dog", "count": 1, "share": pytest.approx(0.25), "image_count": 1},
    ]
    first = index.samples[0]
    assert (first.path, first.width, first.height) == ("images/a.jpg", 32, 32)
    assert first.boxes == [(2.0, 2.0, 12.0, 12.0), (20.0, 20.0, 32.0, 32.0)]
    assert first.box_labels == [0, 1]
    assert [s.path for s in index.samples][-1] == "images/sub/c.jpg"
    assert index.samples[1].iscrowd == [True]


def test_segmentation_keeps_polygons_and_rle(coco_root):
    index, report = read(coco_root, "segmentation")

    assert report.ok, report.errors
    assert index.samples[1].segmentations == [{"size": [32, 32], "counts": [0, 1024]}]


def test_a_box_outside_the_image_names_its_annotation(coco_root):
    def change(doc):
        doc["annotations"][3]["bbox"] = [40, 0, 10, 8]  # image 3 is 48 wide: 50 > 48 + 1
    issue = find(errors_after(coco_root, change), "box_outside_image")[0]

    assert (issue.file, issue.annotation_id) == ("annotations.json", 13)
    assert "48x32" in issue.message


def test_a_box_one_pixel_over_is_tolerated(coco_root):
    doc = coco_doc()
    doc["annotations"][3]["bbox"] = [40, 0, 9, 8]
    write_coco(coco_root, doc)

    assert read(coco_root)[1].ok


@pytest.mark.parametrize("bbox", [[2, 2, 0, 5], [2, 2, 5, -1]])
def test_a_zero_or_negative_area_box_is_an_error(coco_root, bbox):
    def change(doc):
        doc["annotations"][0]["bbox"] = bbox
    issue = find(errors_after(coco_root, change), "empty_box")[0]

    assert issue.annotation_id == 10


def test_unknown_and_missing_categories_are_errors(coco_root):
    def change(doc):
        doc["annotations"][0]["category_id"] = 99
        del doc["annotations"][1]["category_id"]
    errors = errors_after(coco_root, change)

    assert find(errors, "unknown_label")[0].annotation_id == 10
    assert find(errors, "missing_label")[0].annotation_id == 11


def test_duplicate_image_and_annotation_ids_are_errors(coco_root):
    def change(doc):
        doc["images"].append({"id": 2, "file_name": "a.jpg", "width": 32, "height": 32})
        doc["annotations"][1]["id"] = 10
    errors = errors_after(coco_root, change)

    assert "image id 2 is used twice" in find(errors, "duplicate_image_id")[0].message
    assert find(errors, "duplicate_annotation_id")[0].annotation_id == 10


def test_an_annotation_on_an_undeclared_image_is_an_error(coco_root):
    def change(doc):
        doc["annotations"][0]["image_id"] = 404
    assert find(errors_after(coco_root, change), "unknown_image_id")[0].annotation_id == 10


def test_a_size_mismatch_between_json_and_file_is_an_error(coco_root):
    def change(doc):
        doc["images"][2]["width"] = 64
    issue = find(errors_after(coco_root, change), "size_mismatch")[0]

    assert issue.file == "annotations.json"
    assert "64x32" in issue.message and "48x32" in issue.message


def test_a_missing_image_file_is_an_error_with_its_path(coco_root):
    (coco_root / "images" / "b.png").unlink()

    _, report = read(coco_root)

    assert find(report.errors, "missing_image_file")[0].file == "images/b.png"


def test_a_declared_label_with_no_annotations_is_an_error(coco_root):
    def change(doc):
        doc["categories"].append({"id": 3, "name": "horse"})
    issue = find(errors_after(coco_root, change), "label_without_images")[0]

    assert "'horse' has no images" in issue.message


def test_an_empty_dataset_is_refused(tmp_path):
    write_coco(tmp_path, {"images": [], "annotations": [], "categories": []})

    _, report = read(tmp_path)

    assert find(report.errors, "empty_dataset")[0].file == "annotations.json"


def test_malformed_json_reports_line_and_column(coco_root):
    write_coco(coco_root, '{\n  "images": [\n    {"id": 1,,}\n  ]\n}')

    index, report = read(coco_root)

    issue = find(report.errors, "malformed_json")[0]
    assert index is None
    assert issue.line == 3
    assert "line 3, column" in issue.message


@pytest.mark.parametrize("text", ['{"images": [NaN]}', "[" * 100_000, "\xff\xfe garbage"])
def test_hostile_json_is_a_report_not_a_crash(coco_root, text):
    write_coco(coco_root, text.encode("latin-1"))

    index, report = read(coco_root)

    assert index is None
    assert report.errors[0].code == "malformed_json"


def test_missing_top_level_keys_are_each_reported(coco_root):
    write_coco(coco_root, {"images": []})

    _, report = read(coco_root)

    assert len(find(report.errors, "missing_field")) == 2


def test_a_missing_annotations_file_explains_the_layout(tmp_path):
    _, report = read(tmp_path)

    assert "images under images/" in find(report.errors, "missing_file")[0].message


@pytest.mark.parametrize("segmentation", [
    [[1, 1, 5, 5]],                      # two points
    [[1, 1, 5, 5, 9]],                   # odd coordinate count
    [["a", 1, 5, 5, 9, 9]],              # not numbers
])
def test_bad_polygons_are_errors(coco_root, segmentation):
    def change(doc):
        doc["annotations"][0]["segmentation"] = segmentation
    issue = find(errors_after(coco_root, change, "segmentation"), "invalid_polygon")[0]

    assert issue.annotation_id == 10


@pytest.mark.parametrize(("rle", "code"), [
    ({"size": [16, 16], "counts": [0, 256]}, "size_mismatch"),
    ({"size": [32, 32], "counts": [0, 1000]}, "invalid_rle"),
    ({"size": [32, 32], "counts": "\x01\x02"}, "invalid_rle"),
])
def test_bad_rle_masks_are_errors(coco_root, rle, code):
    def change(doc):
        doc["annotations"][2]["segmentation"] = rle
    assert find(errors_after(coco_root, change, "segmentation"), code)[0].annotation_id == 12


def test_a_compressed_rle_string_is_checked_against_the_image(coco_root):
    import numpy as np
    from pycocotools import mask as mask_utils

    mask = np.zeros((32, 32), dtype=np.uint8, order="F")
    mask[4:9, 3:20] = 1
    counts = mask_utils.encode(mask)["counts"].decode()
    doc = coco_doc()
    doc["annotations"][2]["segmentation"] = {"size": [32, 32], "counts": counts}
    write_coco(coco_root, doc)

    assert read(coco_root, "segmentation")[1].ok


def test_segmentation_needs_a_mask_for_every_object(coco_root):
    def change(doc):
        del doc["annotations"][0]["segmentation"]
    assert find(errors_after(coco_root, change, "segmentation"), "missing_segmentation")


def test_file_names_cannot_leave_the_images_folder(coco_root):
    def change(doc):
        doc["images"][0]["file_name"] = "../../etc/passwd"
        doc["images"][1]["file_name"] = "/etc/passwd"
    assert len(find(errors_after(coco_root, change), "unsafe_path")) == 2


def test_a_symlinked_image_pointing_outside_is_never_read(tmp_path, coco_root):
    outside = write_image(tmp_path / "outside.jpg")
    (coco_root / "images" / "a.jpg").unlink()
    os.symlink(outside, coco_root / "images" / "a.jpg")

    _, report = read(coco_root)

    issue = find(report.errors, "unsafe_path")[0]
    assert issue.file == "images/a.jpg"
    assert "outside the dataset" in issue.message
    assert find(report.warnings, "symlink_ignored")[0].file == "images/a.jpg"


def test_unlisted_images_and_unannotated_images_are_warnings(coco_root):
    write_image(coco_root / "images" / "extra.jpg")
    doc = coco_doc()
    doc["images"].append({"id": 4, "file_name": "images/d.jpg", "width": 32, "height": 32})
    write_image(coco_root / "images" / "d.jpg")
    write_coco(coco_root, doc)

    index, report = read(coco_root)

    assert report.ok, report.errors
    assert find(report.warnings, "unlisted_image")[0].file == "images/extra.jpg"
    assert "1 image(s) have no annotations" in find(report.warnings, "unannotated_image")[0].message
    assert index.image_count == 4
