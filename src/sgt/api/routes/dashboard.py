"""The dashboard (`GET /dashboard`): sign in with secret_id and secret_key, list the models one may
see, watch one train, and clear or delete one's own. Pages are rendered here; every read and
change goes through the same services and checks as the JSON API.

Sessions: a signed token (services/dashboard_sessions.py) in an HttpOnly, SameSite=Strict cookie
that expires. State-changing requests are POST forms carrying a CSRF token bound to the session,
and are refused when their Origin names another site.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from sgt.domain.training import TrainingStatus
from sgt.errors import AuthFailed, ModelNotFound
from sgt.services import dashboard, models, samples
from sgt.services import dashboard_sessions as sessions
from sgt.services.context import ServiceContext
from sgt.services.users import CurrentUser

router = APIRouter(prefix="/dashboard", include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent.parent / "templates")

COOKIE = "sgt_dashboard"
# The dashboard's forms hold a few short fields; anything longer is not one of them.
MAX_FORM_BYTES = 16 * 1024
# Everything the pages load comes from this server; nothing inline, nothing from elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@router.get("")
def home(request: Request) -> Response:
    user = _session_user(request)
    if user is None:
        return _page(request, "login.html", {"error": None})
    overviews = dashboard.list_visible_models(_ctx(request), user)
    return _page(request, "list.html", {"user": user, "rows": [_row(o) for o in overviews]})


@router.post("/login")
async def login(request: Request) -> Response:
    form = await _read_form(request)
    if not _is_same_origin(request):
        return _page(request, "login.html", {"error": "Refused: another site."}, 403)
    ctx = _ctx(request)
    try:
        # The key check is a deliberately slow hash: keep it off the event loop.
        token = await run_in_threadpool(
            sessions.sign_in, ctx, form.get("secret_id"), form.get("secret_key"), now=time.time()
        )
    except AuthFailed:
        return _page(request, "login.html", {"error": "Wrong secret_id or secret_key."}, 401)
    response = RedirectResponse("/dashboard", status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        max_age=sessions.SESSION_SECONDS,
        path="/dashboard",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await _read_form(request)
    # A forged sign-out is refused; one with a session already gone just clears the cookie.
    if _session_user(request) is not None and _checked_user(request, form.get("csrf")) is None:
        return _refused(request)
    response = RedirectResponse("/dashboard", status_code=303)
    response.delete_cookie(COOKIE, path="/dashboard", httponly=True, samesite="strict")
    return response


@router.get("/model")
def model_page(request: Request, owner: str = "", app_name: str = "", name: str = "") -> Response:
    user = _session_user(request)
    if user is None:
        return RedirectResponse("/dashboard", status_code=303)
    try:
        overview = dashboard.read_visible_model(
            _ctx(request), user, owner=owner, app_name=app_name, name=name
        )
    except ModelNotFound as error:
        return _page(request, "missing.html", {"user": user, "message": error.message}, 404)
    key = {"owner": owner, "app_name": app_name, "name": name}
    return _page(
        request,
        "model.html",
        {
            "user": user,
            "row": _row(overview),
            "is_own": overview.is_own,
            "status_url": "/dashboard/status?" + urlencode(key),
        },
    )


@router.get("/status")
def model_status(request: Request, owner: str = "", app_name: str = "", name: str = "") -> Response:
    """The model page polls this while the model trains."""
    user = _session_user(request)
    if user is None:
        return JSONResponse({"error": "not signed in"}, status_code=401)
    try:
        overview = dashboard.read_visible_model(
            _ctx(request), user, owner=owner, app_name=app_name, name=name
        )
    except ModelNotFound as error:
        return JSONResponse({"error": error.message}, status_code=404)
    return JSONResponse(status_fields(overview.status), headers={"Cache-Control": "no-store"})


@router.post("/clear")
async def clear_train_data(request: Request) -> Response:
    def model_page(user: CurrentUser, app_name: str, name: str) -> str:
        query = urlencode({"owner": user.secret_id, "app_name": app_name, "name": name})
        return f"/dashboard/model?{query}"

    return await _act_on_own_model(request, samples.clear_samples, then=model_page)


@router.post("/delete")
async def delete_model(request: Request) -> Response:
    return await _act_on_own_model(request, models.delete_model, then=lambda *_: "/dashboard")


async def _act_on_own_model(
    request: Request,
    action: Callable[..., object],
    *,
    then: Callable[[CurrentUser, str, str], str],
) -> Response:
    """A state-changing form (CSRF-checked) calling the owner-only service `action` on the
    model it names, then redirecting to `then(user, app_name, name)`."""
    form = await _read_form(request)
    user = _checked_user(request, form.get("csrf"))
    if user is None:
        return _refused(request)
    app_name, name = str(form.get("app_name", "")), str(form.get("name", ""))
    try:
        await run_in_threadpool(action, _ctx(request), user, app_name=app_name, name=name)
    except ModelNotFound as error:
        return _page(request, "missing.html", {"user": user, "message": error.message}, 404)
    return RedirectResponse(then(user, app_name, name), status_code=303)


def status_fields(status: TrainingStatus) -> dict[str, Any]:
    """Every field of the training status (error figures too, once the status has them)."""
    fields = dataclasses.asdict(status)
    fields["state"] = status.state.value
    if status.updated_at is not None:
        fields["updated_at"] = status.updated_at.strftime("%Y-%m-%d %H:%M:%S")
    return fields


def _row(overview: dashboard.ModelOverview) -> dict[str, Any]:
    record, status = overview.record, overview.status
    key = {"owner": record.key.owner, "app_name": record.key.app_name, "name": record.key.name}
    fields = status_fields(status)
    error_name, error_value = (
        ("validation MAE", fields["val_mae"])
        if fields.get("val_mae") is not None
        else ("validation loss", status.val_loss)
    )
    return {
        **key,
        "model_type": record.spec.model_type,
        "in_size": record.spec.in_size,
        "out_size": record.spec.out_size,
        "is_public": record.is_public,
        "is_own": overview.is_own,
        "state": status.state.value,
        "sample_count": status.sample_count,
        "steps": status.steps,
        "updated_at": fields["updated_at"],
        "error_name": error_name,
        "error_value": error_value,
        "url": "/dashboard/model?" + urlencode(key),
    }


async def _read_form(request: Request) -> dict[str, str]:
    """The fields of a URL-encoded form (what the pages send); empty for anything else."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def _session_user(request: Request) -> CurrentUser | None:
    try:
        return sessions.resume_session(_ctx(request), request.cookies.get(COOKIE), now=time.time())
    except AuthFailed:
        return None


def _checked_user(request: Request, csrf: object) -> CurrentUser | None:
    """The signed-in user of a state-changing request that passes the CSRF checks."""
    user = _session_user(request)
    token = request.cookies.get(COOKIE, "")
    if user is None or not _is_same_origin(request):
        return None
    return user if sessions.is_csrf_token_valid(_ctx(request), token, csrf) else None


def _is_same_origin(request: Request) -> bool:
    # Browsers send Origin on every cross-site POST; a missing one is a same-site form or a script.
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


def _refused(request: Request) -> Response:
    return _page(request, "login.html", {"error": "Refused: sign in again."}, 403)


def _page(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    token = request.cookies.get(COOKIE)
    csrf = sessions.csrf_token(_ctx(request), token) if token else ""
    return templates.TemplateResponse(
        request,
        f"dashboard/{template}",
        {**context, "csrf": csrf},
        status_code=status_code,
        headers=SECURITY_HEADERS,
    )
