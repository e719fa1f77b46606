"""How our authentication classes appear in the OpenAPI schema (drf-spectacular extensions)."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict:
        return build_bearer_security_scheme_object(header_name="Authorization",
                                                   token_prefix="Bearer")  # noqa: S106


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.SessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema: Any) -> dict:
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}


class ServiceKeyScheme(OpenApiAuthenticationExtension):
    target_class = "serving.keys.ServiceKeyAuthentication"
    name = "serviceKeyAuth"

    def get_security_definition(self, auto_schema: Any) -> dict:
        scheme = build_bearer_security_scheme_object(header_name="Authorization",
                                                     token_prefix="Bearer")  # noqa: S106
        scheme["description"] = "A prediction service's own key (svk_...), for its predict route."
        return scheme
