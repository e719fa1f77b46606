"""Request bodies, validated in one place: a serializer's validated data or a 400.

A field the operation does not take is a 400 naming it, never silently dropped: a client that
misspells a field, or sends one another operation takes, learns so instead of getting the
default it did not ask for.
"""

from collections.abc import Iterable

from rest_framework import serializers
from rest_framework.request import Request

from core.errors import ValidationFailed

UNKNOWN = "This operation takes no such field."


def refuse_unknown(request: Request, known: Iterable[str]) -> None:
    """400 `invalid` naming every field of the body that is not one of `known`."""
    data = request.data
    if not hasattr(data, "keys"):
        return  # not an object: the serializer (or the view) says what is wrong with it
    allowed = set(known)
    unknown = sorted(str(name) for name in data if name not in allowed)
    if unknown:
        raise ValidationFailed(f"Unknown fields: {', '.join(unknown)}.",
                               fields={name: [UNKNOWN] for name in unknown})


def writable_fields(serializer: serializers.Serializer) -> list[str]:
    """The names a client may send to this serializer."""
    return [name for name, field in serializer.fields.items() if not field.read_only]


def valid(serializer_class: type[serializers.Serializer], request: Request,
          **kwargs: object) -> dict:
    """Validated input or a 400 with `fields` (raised by DRF, shaped by our handler); a field
    the serializer does not take is a 400 too."""
    serializer = serializer_class(data=request.data, **kwargs)
    refuse_unknown(request, writable_fields(serializer))
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
