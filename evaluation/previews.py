"""Short-lived signed links to the images of an evaluation's test set (badcases, image detail).

Previews cost storage reads, so a report only carries a link when asked (`?preview=true`). The
link is a signed token (evaluation id, file name) valid EVALUATION_PREVIEW_TTL_S seconds: like
an S3 presigned URL it needs no credentials, and a bad or expired one is a 404 that says so.
"""

import mimetypes
from pathlib import Path

from django.conf import settings
from django.core import signing

from core.errors import NotFound
from evaluation.models import Evaluation

SALT = "evaluation.preview"


def ttl_s() -> int:
    """How long a preview link stays valid."""
    return int(settings.EVALUATION_PREVIEW_TTL_S)


def preview_path(evaluation: Evaluation, file_name: str) -> str:
    """The signed path of one test image of the evaluation."""
    token = signing.dumps({"e": str(evaluation.id), "f": file_name}, salt=SALT, compress=True)
    return f"/api/v1/evaluation-previews/{token}/"


def _within(root: Path, relative: str) -> Path | None:
    candidate = (root / relative).resolve()
    if candidate.is_file() and candidate.is_relative_to(root.resolve()):
        return candidate
    return None


def image_bytes(evaluation: Evaluation, file_name: str) -> bytes:
    """The image as stored in the evaluated dataset (a report's `file_name`)."""
    from datasets import api as datasets

    dataset = datasets.get_unscoped(evaluation.dataset_id)
    if dataset is None:
        raise NotFound("The evaluated dataset no longer exists.")
    with datasets.materialize(dataset) as root:
        # reports name COCO images relative to images/, as the annotation file does
        for relative in (file_name, f"images/{file_name}"):
            path = _within(root, relative)
            if path is not None:
                return path.read_bytes()
    raise NotFound("The image is no longer in the evaluated dataset.")


def open_preview(token: str) -> tuple[bytes, str]:
    """The image bytes and content type of a valid token; 404 when bad or expired."""
    try:
        claims = signing.loads(token, salt=SALT, max_age=ttl_s())
    except signing.SignatureExpired:
        raise NotFound("The preview link has expired; ask for the image again.") from None
    except signing.BadSignature:
        raise NotFound("The preview link is not valid.") from None
    evaluation = Evaluation.objects.unscoped().filter(id=claims["e"]).first()
    if evaluation is None:
        raise NotFound("The evaluation no longer exists.")
    content_type = mimetypes.guess_type(claims["f"])[0] or "application/octet-stream"
    return image_bytes(evaluation, claims["f"]), content_type
