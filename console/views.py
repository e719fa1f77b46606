"""HTML shells of the console, and the session's sign-in, sign-out and tenant choice.

The pages hold no data: their scripts read it from the public REST API (with the session cookie
and the CSRF header) and follow the tenant's websocket. The session keeps the chosen tenant as
`tenant_id`, which is where `accounts.authentication.SessionAuthentication` and the websocket's
session authentication read it.
"""

import uuid

from django.contrib.auth import login, logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from accounts import api as accounts
from accounts.api import access_for_session_user
from console import nav
from core.errors import InvalidCredentials, Throttled
from core.tenancy import TenantAccess
from core.throttling import AnonymousRateThrottle

SESSION_TENANT = "tenant_id"


def _access(request: HttpRequest) -> TenantAccess | None:
    if not request.user.is_authenticated:
        return None
    return access_for_session_user(request.user, request.session.get(SESSION_TENANT))


def _tenants(user: object) -> list[dict]:
    return [{"id": str(m.tenant_id), "name": m.tenant_name, "role": m.role}
            for m in accounts.memberships_of(user.pk)]


def _to_signin(request: HttpRequest) -> HttpResponseRedirect:
    return redirect(f"{reverse('console:signin')}?next={request.get_full_path()}")


def _safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target.startswith("/console/") and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return default


def home(request: HttpRequest) -> HttpResponse:
    access = _access(request)
    if access is None:
        return _to_signin(request)
    landing = nav.first_page(access.role)
    return redirect(f"console:{landing}") if landing else _to_signin(request)


@require_http_methods(["GET", "POST"])
def sign_in(request: HttpRequest) -> HttpResponse:
    """Email and password; the session starts in the user's first tenant."""
    error = ""
    email = ""
    if request.method == "POST":
        # Password guesses share the per-address budget of the API's anonymous calls.
        throttle = AnonymousRateThrottle()
        if not throttle.allow_request(request, None):
            wait = int(throttle.wait() or 60) + 1
            response = render(request, "console/signin.html", {
                "error": f"Too many sign-in attempts from this address; try again in {wait} s.",
                "email": request.POST.get("email", ""), "next": _safe_next(request, "")},
                status=429)
            response["Retry-After"] = str(wait)
            return response
        email = request.POST.get("email", "").strip()
        try:
            # The API's per-account limit on failed sign-ins, counted together with it.
            user = accounts.verify_sign_in(email, request.POST.get("password", ""), request)
        except Throttled as locked:
            response = render(request, "console/signin.html", {
                "error": locked.message, "email": email, "next": _safe_next(request, "")},
                status=429)
            response["Retry-After"] = locked.headers["Retry-After"]
            return response
        except InvalidCredentials:
            user = None
        access = access_for_session_user(user) if user is not None else None
        if user is None:
            error = "That email and password do not match an account. Check both and try again."
        elif access is None:
            error = "This account belongs to no tenant yet; ask an owner to add you."
        else:
            login(request, user)  # a new session key: nothing of the anonymous one carries over
            request.session[SESSION_TENANT] = str(access.tenant_id)
            return redirect(_safe_next(request, reverse("console:home")))
    status = 401 if error else 200
    return render(request, "console/signin.html",
                  {"error": error, "email": email, "next": _safe_next(request, "")},
                  status=status)


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    user_id = request.user.pk
    logout(request)  # flushes the session, the tenant choice with it
    if user_id is not None:
        accounts.signed_out(user_id)  # its websockets check now and close (4401)
    return redirect("console:signin")


@require_POST
def switch_tenant(request: HttpRequest) -> HttpResponse:
    """Act in another tenant the user belongs to; any other id is refused as unknown."""
    if not request.user.is_authenticated:
        return _to_signin(request)
    try:
        tenant_id = uuid.UUID(request.POST.get("tenant", ""))
    except ValueError:
        tenant_id = None
    if tenant_id is None or not accounts.is_member(tenant_id, request.user.pk):
        return render(request, "console/error.html", _shell(request, _access(request), None) | {
            "status": 404, "message": "That tenant does not exist or you are not a member."},
            status=404)
    request.session[SESSION_TENANT] = str(tenant_id)
    return redirect(_safe_next(request, reverse("console:home")))


def _shell(request: HttpRequest, access: TenantAccess | None, page: nav.Page | None) -> dict:
    tenant = accounts.tenant(access.tenant_id) if access else None
    return {
        "access": access,
        "role": access.role if access else "",
        "tenant": tenant,
        "tenants": _tenants(request.user) if access else [],
        "navigation": nav.navigation(access.role) if access else [],
        "actions": " ".join(nav.allowed_actions(access.role)) if access else "",
        "page": page,
    }


def page(request: HttpRequest, name: str, pk: uuid.UUID | None = None) -> HttpResponse:
    """One page's shell; its script fills it from the API."""
    access = _access(request)
    if access is None:
        return _to_signin(request)
    shown = nav.PAGES[name]
    context = _shell(request, access, shown) | {"object_id": str(pk) if pk else ""}
    if not nav.may_open(access.role, name):
        return render(request, "console/error.html", context | {
            "status": 403, "message": f"The {access.role} role cannot open {shown.title}."},
            status=403)
    return render(request, f"console/{name}.html", context)
