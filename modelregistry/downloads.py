"""GET /api/v1/models/{id}/download/?format=artifact|onnx|torchscript.

On S3-compatible storage the answer is a 302 to a presigned URL valid PRESIGNED_TTL_S seconds,
so the bytes never pass through the web process; on local disk the file is streamed.
"""

from django.core.files.storage import default_storage
from django.http import FileResponse, HttpResponseRedirect
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.api import RoleAllows, tenant_access
from core.errors import NotFound, ValidationFailed
from core.query_params import FormatParamNegotiation, format_param
from modelregistry import formats
from modelregistry.models import TrainedModel

PRESIGNED_TTL_S = 300
CONTENT_TYPES = {"artifact": "application/zip", "onnx": "application/octet-stream",
                 "torchscript": "application/octet-stream"}


def _presigned(key: str) -> str | None:
    """A short-lived URL of `key` when storage is S3-compatible; None on local disk."""
    if not hasattr(default_storage, "bucket_name"):
        return None
    return default_storage.url(key, parameters={
        "ResponseContentDisposition": f'attachment; filename="{key.rsplit("/", 1)[-1]}"'},
        expire=PRESIGNED_TTL_S)


class ModelDownloadView(APIView):
    """One format of the caller's tenant's model: a redirect on S3, the file on local disk."""

    resource = "model"
    permission_classes = [RoleAllows]
    content_negotiation_class = FormatParamNegotiation

    @extend_schema(
        parameters=[OpenApiParameter(
            "format", OpenApiTypes.STR, enum=list(formats.FORMATS),
            description="artifact (default): the platform's zip (manifest, weights, labels, "
                        "preprocessing, ONNX and TorchScript files); onnx; torchscript. The "
                        "model's `formats` say which it has and why any other is missing.")],
        responses={(200, "application/zip"): OpenApiTypes.BINARY,  # the artifact
                   (200, "application/octet-stream"): OpenApiTypes.BINARY,  # onnx, torchscript
                   302: OpenApiResponse(description="On S3-compatible storage: Location is a "
                                        f"presigned URL valid {PRESIGNED_TTL_S} s."),
                   404: OpenApiResponse(description="Also when the model lacks the format: "
                                        "the message names the formats it has.")})
    def get(self, request: Request, pk: str) -> FileResponse | HttpResponseRedirect:
        tenant_id = tenant_access(request).tenant_id
        fmt = format_param(request) or "artifact"
        if fmt not in formats.FORMATS:
            raise ValidationFailed("Unknown format.", fields={"format": [
                f"Use one of {', '.join(formats.FORMATS)}."]})
        model = TrainedModel.objects.for_tenant(tenant_id).filter(id=pk).first()
        if model is None:
            raise NotFound("Model not found.")
        entry = (model.formats or {}).get(fmt) or {}
        if "key" not in entry or not default_storage.exists(entry["key"]):
            has = [f for f in formats.available(model.formats or {})
                   if default_storage.exists(model.formats[f]["key"])]
            why = entry.get("unavailable") or "not stored"
            raise NotFound(f"This model has no {fmt} file ({why}); it has: "
                           f"{', '.join(has) or 'none'}.")
        url = _presigned(entry["key"])
        if url is not None:
            return HttpResponseRedirect(url)
        name = f"model-{model.id}{formats.SUFFIXES[fmt]}"
        return FileResponse(default_storage.open(entry["key"], "rb"), as_attachment=True,
                            filename=name, content_type=CONTENT_TYPES[fmt])
