"""Detection as Pascal VOC XML (T1), including hostile XML."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from training_runtime.data import read_dataset

from .conftest import find, voc_xml, write_image, write_voc


def read(root):
    return read_dataset(root, "detection", "voc")


def test_a_valid_voc_dataset_reads_labels_objects_and_sizes(voc_root):
    index, report = read(voc_root)

    assert report.ok, report.errors
    assert index.labels == ["car", "person"]
    assert index.label_distribution() == [
        {"name": "car", "count": 1, "share": pytest.approx(1 / 3), "image_count": 1},
        {"name": "person", "count": 2, "share": pytest.approx(2 / 3), "image_count": 2},
    ]
    first, second = index.samples
    assert (first.path, first.boxes, first.box_labels) == (
        "JPEGImages/0001.jpg", [(1.0, 2.0, 10.0, 20.0), (12.0, 12.0, 30.0, 30.0)], [1, 0])
    assert (second.width, second.height) == (48, 32)


def test_a_box_outside_the_image_names_the_xml_and_line(voc_root):
    write_voc(voc_root, "0003", [("car", (1, 1, 5, 5)), ("person", (10, 10, 40, 20))])

    _, report = read(voc_root)

    issue = find(report.errors, "box_outside_image")[0]
    assert (issue.file, issue.line) == ("Annotations/0003.xml", 10)


def test_xmin_not_below_xmax_is_an_empty_box(voc_root):
    write_voc(voc_root, "0003", [("car", (9, 1, 9, 5))])

    _, report = read(voc_root)

    assert find(report.errors, "empty_box")[0].line == 6


def test_a_missing_name_is_a_missing_label(voc_root):
    write_voc(voc_root, "0003", [("", (1, 1, 5, 5))])

    _, report = read(voc_root)

    issue = find(report.errors, "missing_label")[0]
    assert (issue.file, issue.line) == ("Annotations/0003.xml", 4)


def test_labels_txt_declares_labels_unknown_names_and_unused_labels_are_errors(voc_root):
    (voc_root / "labels.txt").write_text("person\ncar\nbus\n")
    write_voc(voc_root, "0003", [("truck", (1, 1, 5, 5))])

    index, report = read_dataset(voc_root, "detection", "voc", partial=True)

    assert index.labels == ["person", "car", "bus"]
    assert find(report.errors, "unknown_label")[0].file == "Annotations/0003.xml"
    assert find(report.errors, "label_without_images")[0].file == "labels.txt"


def test_a_size_mismatch_names_the_size_line(voc_root):
    xml = voc_xml("0003.jpg", [("car", (1, 1, 5, 5))], width=64, height=32)
    write_voc(voc_root, "0003", [], xml=xml)

    _, report = read(voc_root)

    issue = find(report.errors, "size_mismatch")[0]
    assert (issue.file, issue.line) == ("Annotations/0003.xml", 3)


def test_a_syntax_error_reports_its_line(voc_root):
    write_voc(voc_root, "0003", [], xml="<annotation>\n  <filename>0003.jpg\n</annotation>\n")

    _, report = read(voc_root)

    issue = find(report.errors, "malformed_xml")[0]
    assert (issue.file, issue.line) == ("Annotations/0003.xml", 3)
    assert "line 3" in issue.message


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<annotation><filename>&lol9;</filename></annotation>
"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<annotation><filename>&xxe;</filename></annotation>
"""


@pytest.mark.parametrize("xml", [BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_doctype_and_entities_are_refused(voc_root, xml):
    write_voc(voc_root, "0003", [], xml=xml)

    index, report = read(voc_root)

    issue = find(report.errors, "forbidden_xml")[0]
    assert index is None
    assert (issue.file, issue.line) == ("Annotations/0003.xml", 2)
    assert "DOCTYPE" in issue.message


def test_an_xml_whose_image_is_missing_is_an_error(voc_root):
    (voc_root / "Annotations" / "0009.xml").write_text(voc_xml("0009.jpg", [("car", (1, 1, 5, 5))]))

    _, report = read(voc_root)

    issue = find(report.errors, "missing_image_file")[0]
    assert issue.file == "Annotations/0009.xml"
    assert "JPEGImages/0009.jpg" in issue.message


def test_an_image_without_xml_is_ignored_with_a_warning(voc_root):
    write_image(voc_root / "JPEGImages" / "lonely.jpg")

    index, report = read(voc_root)

    assert report.ok
    assert find(report.warnings, "unlisted_image")[0].file == "JPEGImages/lonely.jpg"
    assert index.image_count == 2


def test_missing_folders_explain_the_layout(tmp_path):
    _, report = read(tmp_path)

    assert {i.file for i in find(report.errors, "missing_file")} == {"Annotations/", "JPEGImages/"}


def test_an_empty_voc_dataset_is_refused(tmp_path):
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "JPEGImages").mkdir()

    _, report = read(tmp_path)

    assert find(report.errors, "empty_dataset")


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200) | st.text(max_size=200).map(str.encode)
       | st.sampled_from(["<annotation>", "<annotation><object><name>x</name><bndbox>"
                          "<xmin>1e400</xmin></bndbox></object></annotation>",
                          "<annotation><size><width>a</width></size></annotation>"])
       .map(str.encode))
def test_random_xml_never_raises(tmp_path, data):
    root = tmp_path / "fuzz"
    write_voc(root, "0001", [("car", (1, 1, 5, 5))])
    (root / "Annotations" / "0001.xml").write_bytes(data)

    index, report = read(root)

    assert (index is None) == (not report.ok)
