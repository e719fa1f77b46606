"""Request bodies, validated in one place: a serializer's validated data or a 400."""

from rest_framework import serializers
from rest_framework.request import Request


def valid(serializer_class: type[serializers.Serializer], request: Request,
          **kwargs: object) -> dict:
    """Validated input or a 400 with `fields` (raised by DRF, shaped by our handler)."""
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
