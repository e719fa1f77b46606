"""The schema's route: `GET /api/v1/schema/`.

Apart from core.openapi because drf-spectacular's views import the schema class that the
settings name (core.openapi.ErrorCodeSchema): one module holding both would import itself.
"""

from drf_spectacular.renderers import (
    OpenApiJsonRenderer,
    OpenApiJsonRenderer2,
    OpenApiYamlRenderer,
    OpenApiYamlRenderer2,
)
from drf_spectacular.views import SpectacularAPIView
from rest_framework.negotiation import DefaultContentNegotiation


class SchemaView(SpectacularAPIView):
    """OpenAPI 3 as JSON, or YAML when asked for (`?format=yaml`, or `Accept:
    application/yaml`)."""

    renderer_classes = [OpenApiJsonRenderer2, OpenApiJsonRenderer, OpenApiYamlRenderer,
                        OpenApiYamlRenderer2]
    # `?format=` names a renderer here (the API's own negotiation leaves it to the view).
    content_negotiation_class = DefaultContentNegotiation
