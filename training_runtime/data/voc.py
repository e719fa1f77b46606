"""Detection as Pascal VOC: `Annotations/*.xml` and the images under `JPEGImages/`.

Decisions: labels are the object names found, sorted, unless an optional `labels.txt` at the
root declares them (one per line) - then an undeclared name is an unknown label and a declared
label with no objects is an error. Coordinates are kept as written (VOC's 1-based pixels) as
xyxy; `difficult` objects are kept. An image with no XML is ignored with a warning; an XML whose
image is missing is an error. Instance segmentation is COCO only.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree.ElementTree import Element

from training_runtime.data import report as codes
from training_runtime.data.checks import check_index
from training_runtime.data.dataset import DatasetIndex, Sample
from training_runtime.data.geometry import check_box
from training_runtime.data.images import (
    DEFAULT_LIMITS,
    ImageLimits,
    has_image_extension,
    probe_image,
)
from training_runtime.data.paths import (
    FileTooLargeError,
    list_dir,
    read_bounded,
    regular_file_inside,
    relative,
    safe_member,
    why_unusable,
)
from training_runtime.data.report import ValidationReport
from training_runtime.data.xmlsafe import ForbiddenXmlError, ParsedXml, XmlSyntaxError, parse_xml

ANNOTATIONS_DIR = "Annotations"
IMAGES_DIR = "JPEGImages"
LABELS_FILE = "labels.txt"
MAX_XML_BYTES = 4 * 1024 * 1024
MAX_LABELS_BYTES = 1024 * 1024
LAYOUT_HINT = f"a VOC zip holds {ANNOTATIONS_DIR}/*.xml and the images under {IMAGES_DIR}/"


def _text(parent: Element | None, tag: str) -> str | None:
    child = parent.find(tag) if parent is not None else None
    if child is None or child.text is None:
        return None
    return child.text.strip()


def _number(parent: Element | None, tag: str) -> float | None:
    value = _text(parent, tag)
    try:
        number = float(value) if value is not None and len(value) < 32 else None
    except ValueError:
        return None
    return number if number is not None and abs(number) < 1e9 else None


def read_voc(root: Path, report: ValidationReport,
             limits: ImageLimits = DEFAULT_LIMITS) -> DatasetIndex | None:
    """Read and validate a VOC dataset; the index holds only the usable images and objects."""
    ann_dir, img_dir = root / ANNOTATIONS_DIR, root / IMAGES_DIR
    missing = [d for d in (ann_dir, img_dir) if not d.is_dir() or d.is_symlink()]
    for d in missing:
        report.error(d.name + "/", f"Folder {d.name}/ is missing; {LAYOUT_HINT}.",
                     code=codes.MISSING_FILE)
    if missing:
        return None
    declared = _read_labels_file(root, report)
    reader = _VocReader(root, report, limits, declared)
    for path in list_dir(root, ann_dir, report).files:
        rel = relative(root, path)
        if path.suffix.lower() != ".xml":
            report.warn(rel, "Not an .xml file; it was ignored.", code=codes.IGNORED_FILE)
            continue
        reader.read_xml(path, rel)
    for path in list_dir(root, img_dir, report).files:
        rel = relative(root, path)
        if rel not in reader.used_images:
            report.warn(rel, f"No annotation file in {ANNOTATIONS_DIR}/ refers to this image; it "
                        "was ignored. Add its XML or remove it.", code=codes.UNLISTED_IMAGE)
    labels = declared if declared is not None else sorted(reader.names)
    label_index = {name: i for i, name in enumerate(labels)}
    samples = sorted(reader.samples, key=lambda s: s.path)
    for sample, names in zip(samples, (reader.object_names[s.path] for s in samples),
                             strict=True):
        sample.box_labels = [label_index[n] for n in names]
    empty = sum(1 for s in samples if not s.boxes)
    if empty:
        report.warn(ANNOTATIONS_DIR + "/", f"{empty} image(s) have no objects; they are used as "
                    "background images. Annotate them if they contain objects.",
                    code=codes.UNANNOTATED_IMAGE)
    index = DatasetIndex(root, "detection", labels, samples)
    label_file = LABELS_FILE if declared is not None else ANNOTATIONS_DIR + "/"
    check_index(index, report, label_file=lambda _: label_file, data_file=ANNOTATIONS_DIR + "/")
    return index


def _read_labels_file(root: Path, report: ValidationReport) -> list[str] | None:
    path = root / LABELS_FILE
    if not path.exists() and not path.is_symlink():
        return None
    if not regular_file_inside(root, path):
        report.error(LABELS_FILE, "labels.txt must be a regular file inside the dataset.",
                     code=codes.UNSAFE_PATH)
        return None
    try:
        text = read_bounded(path, MAX_LABELS_BYTES).decode("utf-8-sig")
    except (FileTooLargeError, OSError, UnicodeDecodeError):
        report.error(LABELS_FILE, "labels.txt must be UTF-8 text under 1 MiB, one label a line.",
                     code=codes.UNREADABLE_FILE)
        return None
    labels: list[str] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        name = raw.strip()
        if not name:
            continue
        if name in labels:
            report.error(LABELS_FILE, f"Label {name!r} is listed twice; list each label once.",
                         code=codes.DUPLICATE_LABEL, line=n)
        else:
            labels.append(name)
    return labels


class _VocReader:
    def __init__(self, root: Path, report: ValidationReport, limits: ImageLimits,
                 declared: list[str] | None) -> None:
        self.root, self.report, self.limits = root, report, limits
        self.declared = set(declared) if declared is not None else None
        self.names: set[str] = set()
        self.samples: list[Sample] = []
        self.object_names: dict[str, list[str]] = {}
        self.used_images: dict[str, str] = {}  # image rel path -> the XML that claimed it

    def read_xml(self, path: Path, rel: str) -> None:
        try:
            doc = parse_xml(read_bounded(path, MAX_XML_BYTES))
        except FileTooLargeError:
            self.report.error(rel, f"The XML is over {MAX_XML_BYTES} bytes; an annotation file "
                              "is never that big. Export it again.", code=codes.FILE_TOO_LARGE)
            return
        except OSError as exc:
            self.report.error(rel, f"Cannot read the file ({exc.strerror}); upload it again.",
                              code=codes.UNREADABLE_FILE)
            return
        except ForbiddenXmlError as exc:
            self.report.error(rel, f"The XML contains a {exc.what}, which annotation files never "
                              "need and which is refused for safety; remove it.",
                              code=codes.FORBIDDEN_XML, line=exc.line)
            return
        except XmlSyntaxError as exc:
            self.report.error(rel, f"Invalid XML at line {exc.line}, column {exc.column}: "
                              f"{exc.message}; fix the file or export it again.",
                              code=codes.MALFORMED_XML, line=exc.line)
            return
        if doc.root.tag != "annotation":
            self.report.error(rel, "The root element must be <annotation>; export the file in "
                              "Pascal VOC format.", code=codes.INVALID_FIELD, line=1)
            return
        sample = self._image(doc, path, rel)
        if sample is not None:
            self._objects(doc, sample, rel)

    def _image(self, doc: ParsedXml, path: Path, rel: str) -> Sample | None:
        filename = _text(doc.root, "filename")
        img_dir = self.root / IMAGES_DIR
        if filename:
            image_path = safe_member(img_dir, filename)
            if image_path is None:
                self.report.error(rel, f"<filename> {filename[:200]!r} points outside "
                                  f"{IMAGES_DIR}/; use the bare file name.", code=codes.UNSAFE_PATH,
                                  line=doc.line_of(doc.root.find("filename")))
                return None
        else:
            candidates = [img_dir / (path.stem + ext) for ext in (".jpg", ".jpeg", ".png")]
            image_path = next((c for c in candidates if c.exists()), candidates[0])
        image_rel = relative(self.root, image_path)
        if not regular_file_inside(self.root, image_path):
            code, why = why_unusable(self.root, image_path)
            self.report.error(rel, f"Its image {image_rel} {why}; {LAYOUT_HINT}.", code=code,
                              line=doc.line_of(doc.root.find("filename")) or 1)
            return None
        if image_rel in self.used_images:
            self.report.error(rel, f"Its image {image_rel} is already annotated by "
                              f"{self.used_images[image_rel]}; keep one XML per image.",
                              code=codes.DUPLICATE_IMAGE, line=1)
            return None
        self.used_images[image_rel] = rel
        if not has_image_extension(image_path):
            self.report.error(image_rel, "Not a jpg, jpeg, png, bmp or webp file; convert it.",
                              code=codes.NOT_AN_IMAGE)
            return None
        info, issue = probe_image(image_path, image_rel, self.limits)
        if issue is not None:
            self.report.add(issue)
            return None
        assert info is not None
        size = doc.root.find("size")
        if size is not None:
            width, height = _number(size, "width"), _number(size, "height")
            if width is None or height is None:
                self.report.error(rel, "<size> needs numeric <width> and <height>; fix it or "
                                  "remove <size>.", code=codes.INVALID_FIELD,
                                  line=doc.line_of(size))
                return None
            if (width, height) != (info.width, info.height):
                self.report.error(rel, f"<size> says {width:g}x{height:g}, but {image_rel} is "
                                  f"{info.width}x{info.height}; fix <size> or re-export the "
                                  "annotations for this image.", code=codes.SIZE_MISMATCH,
                                  line=doc.line_of(size))
                return None
        return Sample(path=image_rel, width=info.width, height=info.height, source_id=rel)

    def _objects(self, doc: ParsedXml, sample: Sample, rel: str) -> None:
        names: list[str] = []
        for obj in doc.root.iter("object"):
            line = doc.line_of(obj)
            name = _text(obj, "name")
            if not name:
                self.report.error(rel, "An <object> has no <name>; give it its label.",
                                  code=codes.MISSING_LABEL, line=line)
                continue
            if len(name) > 128:
                self.report.error(rel, "A <name> is over 128 characters; shorten the label.",
                                  code=codes.INVALID_FIELD, line=line)
                continue
            if self.declared is not None and name not in self.declared:
                self.report.error(rel, f"Label {name!r} is not in {LABELS_FILE}; add it "
                                  "there or fix the name.", code=codes.UNKNOWN_LABEL, line=line)
                continue
            box = obj.find("bndbox")
            coords = [_number(box, t) for t in ("xmin", "ymin", "xmax", "ymax")]
            if box is None or any(c is None for c in coords):
                self.report.error(rel, f"Object {name!r} needs a <bndbox> with numeric "
                                  "xmin, ymin, xmax, ymax.", code=codes.MISSING_FIELD,
                                  line=doc.line_of(box) or line)
                continue
            x0, y0, x1, y1 = (float(c) for c in coords)  # type: ignore[arg-type]
            problem = check_box(x0, y0, x1, y1, sample.width, sample.height)
            if problem is not None:
                self.report.error(rel, f"Object {name!r}: {problem[1]}", code=problem[0],
                                  line=doc.line_of(box))
                continue
            sample.boxes.append((x0, y0, x1, y1))
            sample.iscrowd.append(False)
            names.append(name)
        self.names.update(names)
        self.samples.append(sample)
        self.object_names[sample.path] = names
