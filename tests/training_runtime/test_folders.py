"""Classification as one folder per label (T1)."""

import pytest

from training_runtime.data import dataset_fields, read_dataset
from training_runtime.data.report import MAX_ISSUES

from .conftest import find, write_image


def test_a_valid_folder_dataset_reads_its_labels_counts_shares_and_sizes(folders_root):
    index, report = read_dataset(folders_root, "classification", "folders")

    assert report.ok, report.errors
    assert index.labels == ["bird", "cat", "dog"]
    assert index.image_count == 6
    assert index.label_distribution() == [
        {"name": "bird", "count": 1, "share": pytest.approx(1 / 6), "image_count": 1},
        {"name": "cat", "count": 3, "share": pytest.approx(3 / 6), "image_count": 3},
        {"name": "dog", "count": 2, "share": pytest.approx(2 / 6), "image_count": 2},
    ]
    assert sum(r["share"] for r in index.label_distribution()) == pytest.approx(1.0)
    bird = next(s for s in index.samples if s.path == "bird/b0.bmp")
    assert (bird.width, bird.height, bird.label) == (48, 32, 0)


def test_small_data_proceeds_with_warnings_for_reference_only_results(folders_root):
    _, report = read_dataset(folders_root, "classification", "folders")

    few = find(report.warnings, "few_images")[0]
    assert "reference only" in few.message
    assert find(report.warnings, "few_images_for_label")[0].file == "bird/"


def test_an_empty_label_folder_is_a_label_with_no_images(folders_root):
    (folders_root / "fish").mkdir()

    index, report = read_dataset(folders_root, "classification", "folders")

    assert index is None and not report.ok
    issue = find(report.errors, "label_without_images")[0]
    assert issue.file == "fish/"
    assert "'fish' has no images" in issue.message


def test_files_at_the_root_and_nested_folders_are_ignored_with_warnings(folders_root):
    write_image(folders_root / "stray.jpg")
    write_image(folders_root / "cat" / "kittens" / "k.jpg")
    (folders_root / "cat" / "notes.txt").write_text("hello")
    (folders_root / "cat" / ".DS_Store").write_bytes(b"\0\0")

    index, report = read_dataset(folders_root, "classification", "folders")

    assert report.ok
    assert index.image_count == 6
    assert find(report.warnings, "ignored_file")[0].file == "stray.jpg"
    assert find(report.warnings, "nested_folder")[0].file == "cat/kittens/"
    assert "cat/notes.txt" in [i.file for i in report.warnings]
    assert ".DS_Store" not in str(report.as_dict())


def test_an_empty_dataset_is_refused(tmp_path):
    index, report = read_dataset(tmp_path, "classification", "folders")

    assert index is None
    assert find(report.errors, "empty_dataset")[0].file == "."


def test_one_label_is_not_enough_for_a_classifier(tmp_path):
    write_image(tmp_path / "wrapper" / "cat" / "a.jpg")
    write_image(tmp_path / "wrapper" / "b.jpg")

    _, report = read_dataset(tmp_path, "classification", "folders")

    assert "zip the label folders themselves" in find(report.errors, "too_few_labels")[0].message


def test_a_bad_image_refuses_the_dataset_but_partial_keeps_the_rest(folders_root):
    (folders_root / "cat" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")

    index, report = read_dataset(folders_root, "classification", "folders", partial=True)

    assert not report.ok
    assert find(report.errors, "corrupt_image")[0].file == "cat/broken.jpg"
    assert index.image_count == 6


def test_the_report_is_capped_so_a_hostile_dataset_cannot_flood_it(tmp_path):
    write_image(tmp_path / "a" / "ok.png")
    write_image(tmp_path / "b" / "ok.png")
    for n in range(MAX_ISSUES + 5):
        (tmp_path / "a" / f"{n}.txt").write_bytes(b"")

    _, report = read_dataset(tmp_path, "classification", "folders")

    warnings = report.as_dict()["warnings"]
    assert len(warnings) == MAX_ISSUES + 1
    assert warnings[-1]["code"] == "too_many_issues"


def test_an_unsupported_kind_and_format_pair_is_an_error_not_a_crash(folders_root):
    index, report = read_dataset(folders_root, "segmentation", "voc")

    assert index is None
    assert "not supported" in find(report.errors, "unsupported_format")[0].message


def test_the_report_has_the_api_shape(folders_root):
    (folders_root / "fish").mkdir()
    _, report = read_dataset(folders_root, "classification", "folders")

    shape = report.as_dict()

    assert set(shape) == {"errors", "warnings"}
    assert {"file", "message", "code"} <= set(shape["errors"][0])


def test_dataset_fields_fill_the_api_resource(folders_root):
    fields = dataset_fields(*read_dataset(folders_root, "classification", "folders"))

    assert fields["image_count"] == 6
    assert [row["name"] for row in fields["labels"]] == ["bird", "cat", "dog"]
    assert fields["errors"] == [] and fields["warnings"]
