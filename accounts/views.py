"""HTTP for accounts: signup, tokens, /me/, websocket tickets, members and projects."""

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import generics, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import commands
from accounts.models import ApiToken, Membership, Project, Tenant
from accounts.permissions import RoleAllows, tenant_access
from accounts.roles import ROLES
from core import preconditions
from core.errors import InvalidCredentials, LastOwner, ProjectIsArchived, VersionConflict
from core.query_params import bool_param
from core.request_body import valid

# --- serializers -------------------------------------------------------------------------------


class SignupIn(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, write_only=True)
    tenant = serializers.CharField(max_length=100, help_text="Name of the new tenant.")

    def validate_password(self, value: str) -> str:
        try:
            validate_password(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(list(exc.messages)) from exc
        return value

    def validate_tenant(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("A tenant name is required.")
        return value.strip()


class TokenIn(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, write_only=True)
    tenant = serializers.UUIDField(required=False, allow_null=True)


class UserOut(serializers.Serializer):
    id = serializers.UUIDField()
    email = serializers.EmailField()


class TenantOut(serializers.ModelSerializer):
    class Meta:
        model = Tenant
        fields = ["id", "name"]


class ApiTokenOut(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at"]


class ApiTokenIn(serializers.Serializer):
    name = serializers.CharField(max_length=100, default="default")


class WebsocketTicketIn(serializers.Serializer):
    """No fields; a body, when sent, must still be a JSON object."""


class MembershipOut(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email")

    class Meta:
        model = Membership
        fields = ["id", "email", "role", "created_at"]


class MembershipIn(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=ROLES)


class MembershipPatch(serializers.Serializer):
    role = serializers.ChoiceField(choices=ROLES)


class ProjectOut(serializers.ModelSerializer):
    class Meta:
        model = Project
        fields = ["id", "name", "description", "created_at", "updated_at", "archived_at",
                  "created_by", "version"]


class ProjectIn(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(max_length=5000, required=False, allow_blank=True,
                                        default="")

    def validate_name(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("A name is required.")
        return value.strip()


class ProjectPatch(ProjectIn):
    name = serializers.CharField(max_length=100, required=False)
    description = serializers.CharField(max_length=5000, required=False, allow_blank=True)


# --- views -------------------------------------------------------------------------------------


class SignupView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(request=SignupIn, responses={201: inline_serializer("Signup", {
        "token": serializers.CharField(), "user": UserOut(), "tenant": TenantOut()})})
    def post(self, request: Request) -> Response:
        data = valid(SignupIn, request)
        user, tenant, issued = commands.sign_up(data["email"], data["password"], data["tenant"])
        return Response({"token": issued.secret, "user": {"id": str(user.id), "email": user.email},
                         "tenant": {"id": str(tenant.id), "name": tenant.name}},
                        status=status.HTTP_201_CREATED)


class TokenView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    refuses = (InvalidCredentials,)

    @extend_schema(request=TokenIn, responses={
        200: inline_serializer("Token", {"token": serializers.CharField()}),
        401: OpenApiResponse(description="`invalid_credentials`: email or password is wrong."),
        429: OpenApiResponse(description=(
            "`throttled`, with `Retry-After` in seconds: too many attempts from this address, "
            "or too many failed sign-ins for this email from any address (SIGNIN_FAILURE_LIMIT "
            "within SIGNIN_LOCKOUT_S), which refuses even the right password until then."))})
    def post(self, request: Request) -> Response:
        data = valid(TokenIn, request)
        issued = commands.sign_in(data["email"], data["password"], data.get("tenant"))
        return Response({"token": issued.secret})


class MeView(APIView):
    @extend_schema(responses={200: inline_serializer("Me", {
        "user": UserOut(), "tenant": TenantOut(), "role": serializers.CharField()})})
    def get(self, request: Request) -> Response:
        access = tenant_access(request)
        tenant = Tenant.objects.get(pk=access.tenant_id)
        return Response({"user": {"id": str(request.user.id), "email": request.user.email},
                         "tenant": {"id": str(tenant.id), "name": tenant.name},
                         "role": access.role})


class ApiTokenListView(generics.ListCreateAPIView):
    """The caller's own tokens in this tenant; creating one shows its secret once."""

    resource = "token"
    permission_classes = [RoleAllows]
    serializer_class = ApiTokenOut

    def get_queryset(self):  # noqa: ANN201
        access = tenant_access(self.request)
        return ApiToken.objects.for_tenant(access.tenant_id).filter(user_id=access.user_id)

    @extend_schema(request=ApiTokenIn, responses={201: inline_serializer("NewToken", {
        "token": serializers.CharField(), "id": serializers.UUIDField()})})
    def post(self, request: Request) -> Response:
        data = valid(ApiTokenIn, request)
        access = tenant_access(request)
        issued = commands.issue_token(request.user, access.tenant_id, name=data["name"])
        return Response({"token": issued.secret, **ApiTokenOut(issued.token).data},
                        status=status.HTTP_201_CREATED)


class ApiTokenDetailView(APIView):
    resource = "token"
    permission_classes = [RoleAllows]

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: str) -> Response:
        commands.revoke_token(tenant_access(request), pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebsocketTicketView(APIView):
    resource = "event"
    permission_classes = [RoleAllows]
    action_names = {"POST": "view"}

    @extend_schema(request=None, responses={201: inline_serializer("WebsocketTicket", {
        "ticket": serializers.CharField(), "expires_at": serializers.DateTimeField()})})
    def post(self, request: Request) -> Response:
        valid(WebsocketTicketIn, request)
        secret, ticket = commands.issue_websocket_ticket(tenant_access(request),
                                                         request.session.session_key or "")
        return Response({"ticket": secret, "expires_at": ticket.expires_at},
                        status=status.HTTP_201_CREATED)


class MemberViews:
    """What the member routes share: the resource, the serializer and the tenant's rows."""

    resource = "member"
    permission_classes = [RoleAllows]
    serializer_class = MembershipOut

    def get_queryset(self):  # noqa: ANN201
        return (Membership.objects.for_tenant(tenant_access(self.request).tenant_id)
                .select_related("user"))


class MemberListView(MemberViews, generics.ListCreateAPIView):
    @extend_schema(request=MembershipIn, responses={201: MembershipOut})
    def post(self, request: Request) -> Response:
        data = valid(MembershipIn, request)
        membership = commands.add_member(tenant_access(request), data["email"], data["role"])
        return Response(MembershipOut(membership).data, status=status.HTTP_201_CREATED)


class MemberDetailView(MemberViews, generics.RetrieveAPIView):
    refuses = {"PATCH": (LastOwner,), "DELETE": (LastOwner,)}

    @extend_schema(request=MembershipPatch, responses={200: MembershipOut})
    def patch(self, request: Request, pk: str) -> Response:
        self.get_object()
        data = valid(MembershipPatch, request)
        membership = commands.change_member_role(tenant_access(request), pk, data["role"])
        return Response(MembershipOut(membership).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: str) -> Response:
        self.get_object()
        commands.remove_member(tenant_access(request), pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProjectViews:
    """Active projects by default; `?archived=true` shows the archived (deleted) ones instead.

    DELETE archives: the project answers 404 like a deleted one, but its history stays in the
    log and it can still be read with `?archived=true`.
    """

    resource = "project"
    permission_classes = [RoleAllows]
    serializer_class = ProjectOut

    def get_queryset(self):  # noqa: ANN201
        projects = Project.objects.for_tenant(tenant_access(self.request).tenant_id)
        archived = bool_param(self.request, "archived", default=False)
        return projects.filter(archived_at__isnull=not archived)


@extend_schema_view(get=extend_schema(parameters=[OpenApiParameter(
    "archived", OpenApiTypes.BOOL, description="The archived (deleted) projects instead.")]))
class ProjectListView(ProjectViews, generics.ListCreateAPIView):

    @extend_schema(request=ProjectIn, responses={201: ProjectOut})
    def post(self, request: Request) -> Response:
        data = valid(ProjectIn, request)
        project = commands.create_project(tenant_access(request), data["name"],
                                          data["description"])
        return Response(ProjectOut(project).data, status=status.HTTP_201_CREATED)


class ProjectDetailView(ProjectViews, generics.RetrieveAPIView):
    # version_conflict: the project has moved past If-Match's version
    refuses = {"PATCH": (VersionConflict, ProjectIsArchived), "DELETE": (ProjectIsArchived,)}

    @extend_schema(parameters=[preconditions.ETAG])
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        project = self.get_object()
        return preconditions.with_etag(Response(ProjectOut(project).data), project.version)

    @extend_schema(request=ProjectPatch, parameters=[preconditions.IF_MATCH, preconditions.ETAG],
                   responses={200: ProjectOut})
    def patch(self, request: Request, pk: str) -> Response:
        self.get_object()
        expected_version = preconditions.if_match_version(request)
        data = valid(ProjectPatch, request)
        project = commands.update_project(tenant_access(request), pk, name=data.get("name"),
                                          description=data.get("description"),
                                          expected_version=expected_version)
        return preconditions.with_etag(Response(ProjectOut(project).data), project.version)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: str) -> Response:
        self.get_object()
        commands.archive_project(tenant_access(request), pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
