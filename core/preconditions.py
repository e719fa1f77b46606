"""Optimistic concurrency over HTTP: the version a client last read travels back as If-Match
and every representation carries its version as an ETag (an event-sourced object's version).
"""

import re

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request
from rest_framework.response import Response

from core.errors import ValidationFailed

# `"7"` as RFC 9110 writes an entity tag; also `W/"7"` (a proxy that compresses weakens tags,
# yet the version still names one exact state) and a bare `7` (friendlier by hand).
_VERSION_TAG = re.compile(r'(?:W/)?"(\d{1,9})"|(\d{1,9})')

IF_MATCH = OpenApiParameter(
    "If-Match", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
    description='The version you last read, as its ETag (`"3"`): the change applies only to '
                "that version, else 409 version_conflict. Without it (or with `*`) each field "
                "you send is applied to the object as it is now.")
ETAG = OpenApiParameter(
    "ETag", OpenApiTypes.STR, OpenApiParameter.HEADER, response=True,
    description='The version of the object returned, quoted (`"4"`); send it back as If-Match.')


def if_match_version(request: Request) -> int | None:
    """The version an `If-Match` header requires; None when absent or `*` (any version)."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    match = _VERSION_TAG.fullmatch(header.strip())
    if match is None:
        why = 'Send one version as the ETag read from this object, for example "3".'
        raise ValidationFailed("If-Match is not a version. " + why, fields={"If-Match": [why]})
    return int(match.group(1) or match.group(2))


def with_etag(response: Response, version: int) -> Response:
    """The response, carrying `version` as its ETag."""
    response["ETag"] = f'"{version}"'
    return response
